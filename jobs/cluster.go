package jobs

import (
	"context"

	"github.com/stephub/stephub/storage"
)

// followOtherNodes catches the local subscribers up with the events other
// nodes store, as their hints arrive, until ctx ends. A terminal event also
// stops the video's mock job if it runs here: a cancel sent to another node
// reaches it at once.
func (s *Service) followOtherNodes(ctx context.Context) {
	err := s.store.Listen(ctx, s.logger, func(h storage.Hint) {
		if h.Terminal {
			s.stopMock(h.VideoID)
		}
		s.catchUp(h.VideoID)
	}, func() {
		s.logger.Info("event hints reconnected; catching up every watched video")
		for _, id := range s.publisher.Videos() {
			s.catchUp(id)
		}
	})
	if err != nil && ctx.Err() == nil {
		s.logger.Error("cannot follow the other nodes' events", "err", err)
	}
}

// catchUp publishes the stored events of a video that its local
// subscribers have not been given yet; nothing if nobody here watches it.
func (s *Service) catchUp(videoID int64) {
	unlock := s.lockVideo(videoID)
	defer unlock()
	last, watched := s.publisher.LastPublished(videoID)
	if !watched {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), hintTimeout)
	defer cancel()
	events, err := s.store.EventsAfter(ctx, videoID, last)
	if err != nil {
		s.logger.Warn("cannot catch up a video; its watchers fill the gap at its next event", "video_id", videoID, "err", err)
		return
	}
	for _, e := range events {
		s.publisher.Publish(e)
	}
}
