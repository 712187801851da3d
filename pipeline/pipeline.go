// Package pipeline is what the runners of stephub's mock pipeline share:
// the built-in one (package jobs) and the reference worker (package
// worker). It holds the pipeline's steps, the pause between them, and how
// a runner waits and backs off. It imports nothing of stephub's but the
// domain types, so that a worker built on it links no database driver.
package pipeline

import (
	"context"
	"time"

	"github.com/stephub/stephub"
)

// messages are the working steps' messages, 1 to TotalSteps.
var messages = [stephub.TotalSteps]string{
	"🔍 Validating request parameters...",
	"📸 Processing reference image...",
	"🤖 Calling Sora 2 API...",
	"⏳ Waiting for AI processing (this may take 2-5 minutes)...",
	"🎬 Rendering video frames...",
	"🎞️ Encoding video...",
	"☁️ Uploading video to storage...",
	"✨ Finalizing...",
}

// Step returns the pipeline's step n, 1..TotalSteps+1; the last one
// completes the job.
func Step(n int) stephub.Step {
	if n > stephub.TotalSteps {
		url := stephub.MockVideoURL
		return stephub.Step{Step: n, Message: "🎉 Video ready!", Progress: 100, Status: stephub.StatusCompleted, VideoURL: &url}
	}
	return stephub.Step{Step: n, Message: messages[n-1], Progress: 100 * n / (stephub.TotalSteps + 1), Status: stephub.StatusProcessing}
}

// Sleep waits for d or until ctx ends, and reports whether it waited it
// out.
func Sleep(ctx context.Context, d time.Duration) bool {
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

// Pauses of a Backoff: doubling from the first to the last, then staying
// there.
const (
	firstRetry = 100 * time.Millisecond
	lastRetry  = 5 * time.Second
)

// Backoff paces the retries of something that keeps failing, such as a
// request to a database or a server that may be restarting. The zero value
// is ready to use.
type Backoff struct{ last time.Duration }

// Next returns the pause before the next retry: 100 ms, then twice the
// previous one, up to 5 s.
func (b *Backoff) Next() time.Duration {
	b.last = min(max(2*b.last, firstRetry), lastRetry)
	return b.last
}

// Reset starts the pauses over, after a success.
func (b *Backoff) Reset() { b.last = 0 }
