package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/storage"
)

// MockVideoURL is where the mock pipeline's finished videos point.
const MockVideoURL = "/uploads/videos/mock-video.mp4"

// mockMessages are the mock pipeline's working steps, 1 to TotalSteps.
var mockMessages = [stephub.TotalSteps]string{
	"🔍 Validating request parameters...",
	"📸 Processing reference image...",
	"🤖 Calling Sora 2 API...",
	"⏳ Waiting for AI processing (this may take 2-5 minutes)...",
	"🎬 Rendering video frames...",
	"🎞️ Encoding video...",
	"☁️ Uploading video to storage...",
	"✨ Finalizing...",
}

// MockStep returns the mock pipeline's step n, 1..TotalSteps+1; the last
// one completes the job. The reference worker posts the same steps.
func MockStep(n int) stephub.Step {
	if n > stephub.TotalSteps {
		url := MockVideoURL
		return stephub.Step{Step: n, Message: "🎉 Video ready!", Progress: 100, Status: stephub.StatusCompleted, VideoURL: &url}
	}
	return stephub.Step{Step: n, Message: mockMessages[n-1], Progress: 100 * n / (stephub.TotalSteps + 1), Status: stephub.StatusProcessing}
}

// Retry pauses of a mock step whose store failed (the database may be
// restarting): doubling from the first to the last, then staying there.
const (
	firstRetry = 100 * time.Millisecond
	lastRetry  = 5 * time.Second
)

// runBuiltinWorker claims videos, as an external worker would, and runs
// each on a goroutine of its own, until ctx ends.
func (s *Service) runBuiltinWorker(ctx context.Context) {
	for wait := firstRetry; ctx.Err() == nil; {
		v, err := s.claim(ctx, time.Hour)
		switch {
		case err == nil:
			s.startMock(v)
			wait = firstRetry
		case errors.Is(err, stephub.ErrNotFound), ctx.Err() != nil:
		default:
			s.logger.Error("built-in worker cannot claim", "err", err, "retry_in_s", wait.Seconds())
			sleep(ctx, wait)
			wait = min(2*wait, lastRetry)
		}
	}
}

// startMock runs v's remaining steps on a goroutine of its own, unless the
// service is closing.
func (s *Service) startMock(v stephub.Video) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.release(v.ID)
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
		if !s.postMockStep(ctx, v.ID, MockStep(n)) {
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
		if !sleep(ctx, step) {
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
	for wait := firstRetry; ; wait = min(2*wait, lastRetry) {
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
		s.logger.Warn("mock step not stored; retrying", "video_id", videoID, "step", step.Step, "err", err, "retry_in_s", wait.Seconds())
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// sleep waits for d or until ctx ends, and reports whether it waited it out.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
