package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/pipeline"
	"github.com/stephub/stephub/storage"
)

// runBuiltinWorker claims videos, as an external worker would, and runs
// each on a goroutine of its own, until ctx ends.
func (s *Service) runBuiltinWorker(ctx context.Context) {
	var failing pipeline.Backoff
	for ctx.Err() == nil {
		v, err := s.claim(ctx, time.Hour)
		switch {
		case err == nil:
			s.startMock(v)
			failing.Reset()
		case errors.Is(err, stephub.ErrNotFound), ctx.Err() != nil:
		default:
			wait := failing.Next()
			s.logger.Error("built-in worker cannot claim", "err", err, "retry_in_s", wait.Seconds())
			pipeline.Sleep(ctx, wait)
		}
	}
}

// startMock runs v's remaining steps on a goroutine of its own, unless the
// service is closing, or one runs them here already: claimed again after
// its lease ran out, the job goes on where that goroutine is.
func (s *Service) startMock(v stephub.Video) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock() // release waits on the database: not under s.mu
		s.release(v.ID)
		return
	}
	if _, running := s.running[v.ID]; running {
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.running[v.ID] = cancel
	s.goOwned(func() {
		defer s.stopMock(v.ID)
		if !s.runMock(ctx, v) {
			// Stopped, not finished: back to the queue, for the next
			// run or node to go on with.
			s.release(v.ID)
		}
	})
	s.mu.Unlock()
}

// release gives a video the service holds back to the queue.
func (s *Service) release(videoID int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.ReleaseLease(ctx, videoID); err != nil {
		s.logger.Warn("cannot release a job; it goes back to the queue when its lease expires", "video_id", videoID, "err", err)
	}
}

// stopMock ends v's goroutine, if it runs.
func (s *Service) stopMock(videoID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cancel, ok := s.running[videoID]; ok {
		cancel()
		delete(s.running, videoID)
	}
}

// runMock posts the steps after v's last stored one, pausing before each
// but the first, until the job finishes or is taken from it. It reports
// whether the job is over (finished, cancelled, or lost to another runner)
// rather than stopped by ctx.
func (s *Service) runMock(ctx context.Context, v stephub.Video) (over bool) {
	for n := v.Step + 1; n <= stephub.TotalSteps+1; n++ {
		if n > 1 {
			if err := s.holdLease(ctx, v.ID, s.delay.Next()); err != nil {
				return !errors.Is(err, context.Canceled)
			}
		}
		if !s.postMockStep(ctx, v.ID, pipeline.Step(n)) {
			return ctx.Err() == nil
		}
	}
	return true
}

// holdLease waits for d, renewing the video's lease on the way so that a
// long pause does not look like a dead runner. It fails with ctx's error,
// or storage.ErrLeaseLost when the video is no longer this runner's.
func (s *Service) holdLease(ctx context.Context, videoID int64, d time.Duration) error {
	renewEvery := s.lease / 3
	for d > 0 {
		step := min(d, renewEvery)
		if !pipeline.Sleep(ctx, step) {
			return ctx.Err()
		}
		d -= step
		if d > 0 {
			if err := s.store.RenewLease(ctx, videoID); errors.Is(err, storage.ErrLeaseLost) {
				return err
			} else if err != nil {
				s.logger.Warn("cannot renew a lease", "video_id", videoID, "err", err)
			}
		}
	}
	return ctx.Err()
}

// postMockStep stores and broadcasts one step, retrying while the store
// fails. It reports whether the job should go on: not once the store refuses
// the step, since a refusal does not pass with time. The video is finished
// or cancelled, or another runner took it over and further after this one's
// lease ran out.
func (s *Service) postMockStep(ctx context.Context, videoID int64, step stephub.Step) bool {
	var failing pipeline.Backoff
	for {
		_, err := s.Post(ctx, videoID, step)
		var refused *stephub.Error
		switch {
		case err == nil:
			return true
		case errors.As(err, &refused):
			if refused.Code == stephub.CodeValidation {
				s.logger.Warn("mock job stopped: its step was refused", "video_id", videoID, "step", step.Step, "err", err)
			}
			return false
		case ctx.Err() != nil:
			return false
		}
		wait := failing.Next()
		s.logger.Warn("mock step not stored; retrying", "video_id", videoID, "step", step.Step, "err", err, "retry_in_s", wait.Seconds())
		if !pipeline.Sleep(ctx, wait) {
			return false
		}
	}
}
