package storage

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/stephub/stephub"
)

// CheckPost returns what AppendEvent would refuse a runner's step to the
// video videoID with, whatever the step says, as the video is now: an
// unknown video is stephub.ErrNotFound, a finished one
// stephub.ErrVideoCancelled or stephub.ErrVideoFinished, and one whose
// lease does not take the step stephub.ErrLeaseLost or
// stephub.ErrLeaseHeld (see AppendEvent), unless idempotencyKey is stored
// for the video: the retry of a stored step is answered as the first time.
// It writes nothing, and the video may change before AppendEvent, which
// checks again as it writes.
func (s *Store) CheckPost(ctx context.Context, videoID int64, idempotencyKey, leaseToken string) error {
	v, err := videoByID(ctx, s.db, videoID)
	if err != nil {
		return fmt.Errorf("check a post to video %d: %w", videoID, err)
	}
	s.remember(v)
	refusal := checkRunner(v, leaseToken)
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
// wrong nil costs only the body's read: a video that this Store remembers
// (see recentVideos) and that would take the step is not read again. Its
// refusals are CheckPost's.
func (s *Store) ForecastPost(ctx context.Context, videoID int64, idempotencyKey, leaseToken string) error {
	if v, ok := s.recent.get(videoID); ok && checkRunner(v, leaseToken) == nil {
		return nil
	}
	return s.CheckPost(ctx, videoID, idempotencyKey, leaseToken)
}

// checkRunner returns why v takes no step from a runner holding the lease
// token leaseToken (none if empty): a finished video takes none; a token
// that is not v's lease's lost its lease; and without a token, a fenced
// lease holds the video against the post. A step without a token to a
// pending video claims it, and one to an unfenced lease is taken: that
// runner cannot be told from the one that holds the lease.
func checkRunner(v stephub.Video, leaseToken string) error {
	if err := finishedError(v); err != nil {
		return err
	}
	switch {
	case leaseToken != "":
		if v.LeaseTokenHash == nil ||
			subtle.ConstantTimeCompare([]byte(*v.LeaseTokenHash), []byte(hashLeaseToken(leaseToken))) != 1 {
			return stephub.ErrLeaseLost
		}
	case v.Status == stephub.StatusProcessing && v.LeaseFenced:
		return stephub.ErrLeaseHeld
	}
	return nil
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
