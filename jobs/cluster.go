package jobs

import (
	"context"
	"sync"

	"github.com/stephub/stephub/storage"
)

// catchUpWorkers is how many videos a node catches up with at once, each
// a read of the events table; one at a time, hints queued behind each
// other's reads.
const catchUpWorkers = 8

// followOtherNodes catches the local subscribers up with the events other
// nodes store, as their hints arrive, until ctx ends. A terminal event also
// stops the video's mock job if it runs here: a cancel sent to another node
// reaches it at once.
//
// The hints of one video go to one worker, in order, so a video is caught
// up once at a time.
func (s *Service) followOtherNodes(ctx context.Context) {
	var workers sync.WaitGroup
	queues := make([]chan storage.Hint, catchUpWorkers)
	for i := range queues {
		queues[i] = make(chan storage.Hint, 256)
		workers.Go(func() {
			for h := range queues[i] {
				s.catchUp(h.VideoID, h.Seq)
			}
		})
	}
	defer func() {
		for _, q := range queues {
			close(q)
		}
		workers.Wait()
	}()
	queue := func(h storage.Hint) {
		queues[uint64(h.VideoID)%catchUpWorkers] <- h
	}
	err := s.store.Listen(ctx, s.logger, func(h storage.Hint) {
		s.logger.Debug("hint received", "video_id", h.VideoID, "seq", h.Seq)
		if h.Terminal {
			s.stopMock(h.VideoID)
		}
		queue(h)
	}, func() {
		s.logger.Info("event hints reconnected; catching up every watched video")
		for _, id := range s.publisher.Videos() {
			queue(storage.Hint{VideoID: id}) // no seq: whatever there is
		}
	})
	if err != nil && ctx.Err() == nil {
		s.logger.Error("cannot follow the other nodes' events", "err", err)
	}
}

// catchUp publishes the stored events of a video that its local
// subscribers have not been given yet, if they may lack event seq (0:
// whatever there is); nothing if nobody here watches it.
func (s *Service) catchUp(videoID, seq int64) {
	unlock := s.lockVideo(videoID)
	defer unlock()
	last, watched := s.publisher.LastPublished(videoID)
	if !watched || (seq > 0 && seq <= last) {
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
