package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/pipeline"
	"github.com/stephub/stephub/storage"
)

// mockRun is the goroutine that runs one mock job; its pointer tells it
// from a later run of the same video.
type mockRun struct {
	cancel context.CancelFunc
}

// runBuiltinWorker claims videos, as an external worker would, and runs
// each on a goroutine of its own, until ctx ends. Its leases are fenced from
// the claim: no worker posts into a job that the built-in pipeline runs.
func (s *Service) runBuiltinWorker(ctx context.Context) {
	var failing pipeline.Backoff
	for ctx.Err() == nil {
		l, err := s.claim(ctx, time.Hour, true)
		switch {
		case err == nil:
			s.startMock(l)
			failing.Reset()
		case errors.Is(err, stephub.ErrNotFound), ctx.Err() != nil:
		default:
			wait := failing.Next()
			s.logger.Error("built-in worker cannot claim", "err", err, "retry_in_s", wait.Seconds())
			pipeline.Sleep(ctx, wait)
		}
	}
}

// startMock runs the remaining steps of l's video on a goroutine of its
// own, unless the service is closing. A goroutine that runs the video
// already, claimed again after its lease ran out, is stopped: that lease is
// lost, and the new one goes on from the last stored step.
func (s *Service) startMock(l storage.Lease) {
	id := l.Video.ID
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock() // release waits on the database: not under s.mu
		s.release(l)
		return
	}
	if old, ok := s.running[id]; ok {
		old.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &mockRun{cancel: cancel}
	s.running[id] = run
	s.goOwned(func() {
		defer s.endMock(id, run)
		if !s.runMock(ctx, l) {
			// Stopped, not finished: back to the queue, for the next
			// run or node to go on with.
			s.release(l)
		}
	})
	s.mu.Unlock()
}

// release gives a video the service holds under l back to the queue, and
// wakes the claims waiting for one.
func (s *Service) release(l storage.Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.ReleaseLease(ctx, l.Video.ID, l.Token); err != nil {
		s.logger.Warn("cannot release a job; it goes back to the queue when its lease expires", "video_id", l.Video.ID, "err", err)
		return
	}
	s.logger.Debug("lease released", "video_id", l.Video.ID)
	s.wakeClaimers()
}

// stopMock ends the goroutine that runs the video, if one does.
func (s *Service) stopMock(videoID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if run, ok := s.running[videoID]; ok {
		run.cancel()
		delete(s.running, videoID)
	}
}

// endMock forgets run as it returns, unless a later run of the video took
// its place.
func (s *Service) endMock(videoID int64, run *mockRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	run.cancel()
	if s.running[videoID] == run {
		delete(s.running, videoID)
	}
}

// runMock posts the steps after the last stored one of l's video, pausing
// before each but the first, until the job finishes or is taken from it.
// It reports whether the job is over (finished, cancelled, or lost to
// another runner) rather than stopped by ctx.
func (s *Service) runMock(ctx context.Context, l storage.Lease) (over bool) {
	for n := l.Video.Step + 1; n <= stephub.TotalSteps+1; n++ {
		var err error
		if n > 1 {
			err = s.holdLease(ctx, l, s.delay.Next())
		}
		if err == nil {
			// A video another runner took further keeps its progress:
			// neither goes backwards.
			step := pipeline.Step(n)
			step.Progress = max(step.Progress, l.Video.Progress)
			err = s.postMockStep(ctx, l, step)
		}
		var refused *stephub.Error
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil || !errors.As(err, &refused):
			return false
		}
		// A refusal does not pass with time: the video is finished or
		// cancelled, or another runner holds it now.
		switch refused.Code {
		case stephub.CodeValidation:
			s.logger.Warn("mock job stopped: its step was refused", "video_id", l.Video.ID, "step", n, "err", err)
		case stephub.CodeLeaseLost:
			s.logger.Warn("mock job stopped: its lease was lost", "video_id", l.Video.ID, "step", n)
		}
		return true
	}
	return true
}

// holdLease waits for d, renewing l on the way so that a long pause does
// not look like a dead runner. It fails with ctx's error, or
// stephub.ErrLeaseLost when the video is no longer this runner's.
func (s *Service) holdLease(ctx context.Context, l storage.Lease, d time.Duration) error {
	renewEvery := s.lease / 3
	for d > 0 {
		step := min(d, renewEvery)
		if !pipeline.Sleep(ctx, step) {
			return ctx.Err()
		}
		d -= step
		if d > 0 {
			switch err := s.store.RenewLease(ctx, l.Video.ID, l.Token); {
			case errors.Is(err, stephub.ErrLeaseLost):
				return err
			case err != nil:
				s.logger.Warn("cannot renew a lease", "video_id", l.Video.ID, "err", err)
			default:
				s.logger.Debug("lease renewed", "video_id", l.Video.ID)
			}
		}
	}
	return ctx.Err()
}

// postMockStep stores and broadcasts one step under l, retrying while the
// store fails. It returns the store's refusal, a *stephub.Error, or ctx's
// error.
func (s *Service) postMockStep(ctx context.Context, l storage.Lease, step stephub.Step) error {
	step.LeaseToken = l.Token
	var failing pipeline.Backoff
	for {
		_, _, err := s.Post(ctx, l.Video.ID, step)
		var refused *stephub.Error
		switch {
		case err == nil, errors.As(err, &refused):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		}
		wait := failing.Next()
		s.logger.Warn("mock step not stored; retrying", "video_id", l.Video.ID, "step", step.Step, "err", err, "retry_in_s", wait.Seconds())
		if !pipeline.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}
