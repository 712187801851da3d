package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/stephub/stephub"
)

// CheckPost returns what AppendEvent would refuse a runner's step to the
// video videoID with, whatever the step says, as the video is now: an
// unknown video is stephub.ErrNotFound, a finished one
// stephub.ErrVideoCancelled or stephub.ErrVideoFinished, unless
// idempotencyKey is stored for the video: the retry of a stored step is
// answered as the first time. It writes nothing, and the video may change
// before AppendEvent, which checks again as it writes.
func (s *Store) CheckPost(ctx context.Context, videoID int64, idempotencyKey string) error {
	v, err := videoByID(ctx, s.db, videoID)
	if err != nil {
		return fmt.Errorf("check a post to video %d: %w", videoID, err)
	}
	s.remember(v)
	refusal := finishedError(v)
	if refusal == nil || idempotencyKey == "" {
		return refusal
	}
	switch _, err := eventByKey(ctx, s.db, videoID, idempotencyKey); {
	case err == nil:
		return nil
	case errors.Is(err, stephub.ErrNotFound):
		return refusal
	default:
		return fmt.Errorf("check a post to video %d: %w", videoID, err)
	}
}

// ForecastPost is CheckPost for a post whose body has not come yet, when a
// wrong nil costs only the body's read: on PostgreSQL, a video that this
// Store remembers (see recentVideos) and that would take the step is not
// read again. Its refusals are CheckPost's.
func (s *Store) ForecastPost(ctx context.Context, videoID int64, idempotencyKey string) error {
	if s.recent != nil {
		if v, ok := s.recent.get(videoID); ok && finishedError(v) == nil {
			return nil
		}
	}
	return s.CheckPost(ctx, videoID, idempotencyKey)
}

// finishedError returns why a video in a terminal status takes no more
// steps, or nil for a live one.
func finishedError(v stephub.Video) error {
	switch {
	case v.Status == stephub.StatusCancelled:
		return stephub.ErrVideoCancelled
	case v.Status.Terminal():
		return stephub.ErrVideoFinished
	}
	return nil
}
