package jobs

import (
	"context"
	"time"

	"github.com/stephub/stephub"
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

// mockStep returns the mock pipeline's step n, 1..TotalSteps+1; the last
// one completes the job.
func mockStep(n int) stephub.Step {
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

// startMock runs v's remaining steps on a goroutine of its own, unless the
// service is closing or v already runs.
func (s *Service) startMock(v stephub.Video) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.running[v.ID]; ok || s.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.running[v.ID] = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.stopMock(v.ID)
		s.runMock(ctx, v)
	}()
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
// but the first, until the job finishes, is cancelled or ctx ends.
func (s *Service) runMock(ctx context.Context, v stephub.Video) {
	for n := v.Step + 1; n <= stephub.TotalSteps+1; n++ {
		if n > 1 && !sleep(ctx, s.delay.Next()) {
			return
		}
		if !s.postMockStep(ctx, v.ID, mockStep(n)) {
			return
		}
	}
}

// postMockStep stores and broadcasts one step, retrying while the store
// fails. It reports whether the job should go on.
func (s *Service) postMockStep(ctx context.Context, videoID int64, step stephub.Step) bool {
	for wait := firstRetry; ; wait = min(2*wait, lastRetry) {
		_, err := s.Post(ctx, videoID, step)
		switch {
		case err == nil:
			return true
		case isFinished(err):
			return false
		case ctx.Err() != nil:
			return false
		}
		s.logger.Warn("mock step not stored; retrying", "video_id", videoID, "step", step.Step, "err", err, "retry_in", wait)
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
