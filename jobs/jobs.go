// Package jobs runs video-generation jobs: it creates them against the user's
// credits, records every step they report, stores it and then broadcasts it,
// and, with the mock pipeline, produces those steps itself.
package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/storage"
)

// Publisher broadcasts stored events; the hub implements it.
type Publisher interface {
	Publish(e *hub.Event)
}

// Observer is told what happens to jobs; metrics implements it.
type Observer interface {
	EventPublished()
	JobFinished(status string)
}

// Options configure a Service.
type Options struct {
	Store     *storage.Store
	Publisher Publisher
	// Observer, if set, counts events and finished jobs.
	Observer Observer
	Logger   *slog.Logger
	// Mock makes the service run every job through the built-in 8-step
	// pipeline; otherwise steps come from workers through Post.
	Mock bool
	// StepDelay is the mock pipeline's pause between steps.
	StepDelay Delay
}

// Service creates, advances and cancels jobs. It is safe for concurrent use.
// With the mock pipeline it owns one goroutine per running job; Close stops
// them and waits.
type Service struct {
	store     *storage.Store
	publisher Publisher
	observer  Observer
	logger    *slog.Logger
	mock      bool
	delay     Delay

	mu      sync.Mutex
	closed  bool
	running map[int64]context.CancelFunc
	wg      sync.WaitGroup
}

// New returns a Service; call Start before serving requests.
func New(opts Options) *Service {
	s := &Service{
		store:     opts.Store,
		publisher: opts.Publisher,
		observer:  opts.Observer,
		logger:    opts.Logger,
		mock:      opts.Mock,
		delay:     opts.StepDelay,
		running:   make(map[int64]context.CancelFunc),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s
}

// Start resumes, with the mock pipeline, every job that a previous run left
// pending or processing, from its last stored step.
func (s *Service) Start(ctx context.Context) error {
	if !s.mock {
		return nil
	}
	videos, err := s.store.UnfinishedVideos(ctx)
	if err != nil {
		return err
	}
	for _, v := range videos {
		s.logger.Info("resuming job", "video_id", v.ID, "step", v.Step)
		s.startMock(v)
	}
	return nil
}

// Close stops the mock jobs and waits for them. Their state stays stored, so
// the next Start continues them.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	for _, cancel := range s.running {
		cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Generate creates a video for the user, taking its cost from their credits
// in the same transaction, and starts the job.
func (s *Service) Generate(ctx context.Context, userID, prompt, model string, referenceImageURL *string) (stephub.Video, error) {
	v, err := s.store.CreateVideo(ctx, userID, stephub.Video{
		Prompt:            prompt,
		Model:             model,
		ReferenceImageURL: referenceImageURL,
		Cost:              stephub.GenerateCost,
	})
	if err != nil {
		return stephub.Video{}, err
	}
	if s.mock {
		s.startMock(v)
	}
	return v, nil
}

// Cancel stops the user's video, ends its stream with a cancelled event and
// gives the credits back.
func (s *Service) Cancel(ctx context.Context, userID string, videoID int64) (stephub.Video, error) {
	v, a, err := s.store.Cancel(ctx, userID, videoID, "🛑 Cancelled by user")
	if err != nil {
		return stephub.Video{}, err
	}
	s.stopMock(videoID)
	s.publish(videoID, a)
	return v, nil
}

// Post stores the next step of a video and then broadcasts it. It returns the
// stored event; a repeated IdempotencyKey returns the first one's.
func (s *Service) Post(ctx context.Context, videoID int64, step stephub.Step) (stephub.Event, error) {
	a, err := s.store.AppendEvent(ctx, videoID, step)
	if err != nil {
		return stephub.Event{}, err
	}
	s.publish(videoID, a)
	return a.Event, nil
}

// publish hands a stored event to the hub. A repeated idempotent post is
// published again, in case the first publish never happened (the process
// stopped in between); subscriptions skip what they have. It is counted once.
func (s *Service) publish(videoID int64, a storage.Appended) {
	ev := a.Event
	s.publisher.Publish(&hub.Event{VideoID: videoID, Seq: ev.ID, Data: a.Payload, Terminal: ev.Status.Terminal()})
	if s.observer == nil || a.Repeat {
		return
	}
	s.observer.EventPublished()
	if ev.Status.Terminal() {
		s.observer.JobFinished(string(ev.Status))
	}
}

// isFinished reports whether err says the video can take no more steps.
func isFinished(err error) bool {
	return errors.Is(err, stephub.ErrVideoCancelled) || errors.Is(err, stephub.ErrVideoFinished)
}
