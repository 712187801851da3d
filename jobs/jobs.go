// Package jobs runs video-generation jobs: it creates them against the user's
// credits, records every step they report, stores it and then broadcasts it,
// and, with the mock pipeline, produces those steps itself. Each step it
// stores carries an estimate of the time the job has left, learned from the
// steps of earlier jobs.
package jobs

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/eta"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/pipeline"
	"github.com/stephub/stephub/storage"
)

// workerStepPrior is what the ETA assumes each step of a worker's job takes
// until it has seen one finish: a guess of the right order for a step of a
// real pipeline, corrected by the first job.
const workerStepPrior = 5 * time.Second

// Publisher broadcasts stored events; the hub implements it.
type Publisher interface {
	Publish(e *hub.Event)
	// LastPublished and Videos tell what the local subscribers have been
	// given, so that events stored by other nodes can be caught up.
	LastPublished(videoID int64) (seq int64, watched bool)
	Videos() []int64
}

// Observer is told what happens to jobs; metrics implements it.
type Observer interface {
	EventPublished()
	JobFinished(status string)
	// StepDuration is told how long a step ran, once per step that a job
	// moved past (see storage.StepTiming).
	StepDuration(step int, d time.Duration)
	// RetentionDeleted is told how many rows of a kind, "events" or
	// "videos", retention deleted.
	RetentionDeleted(kind string, n int)
}

// Store is the database the Service runs jobs on; storage.Store
// implements it. Its methods are storage.Store's, documented there.
type Store interface {
	CreateVideo(ctx context.Context, userID string, v stephub.Video) (stephub.Video, error)
	Cancel(ctx context.Context, userID string, videoID int64, message string) (stephub.Video, storage.Appended, error)
	AppendEvent(ctx context.Context, videoID int64, st stephub.Step) (storage.Appended, error)
	Claim(ctx context.Context, fenced bool) (storage.Lease, error)
	RenewLease(ctx context.Context, videoID int64, token string) error
	ReleaseLease(ctx context.Context, videoID int64, token string) error
	ExpireLeases(ctx context.Context, maxAttempts int) ([]storage.Expired, error)
	DeleteEventsBefore(ctx context.Context, t time.Time) (storage.Deleted, error)
	DeleteVideosBefore(ctx context.Context, t time.Time) (storage.Deleted, error)
	// EventsAfter is read to catch up with the events of other nodes.
	hub.History
}

// ClusterObserver is told what the node hears from the other nodes
// through its Broker; metrics implements it, one per engine.
type ClusterObserver interface {
	// NoticeHeard counts a notice of another node.
	NoticeHeard()
	// NoticeDropped counts a message of the broker that could not be read.
	NoticeDropped()
	// Reconnected counts a time the node may have missed notices (a
	// reconnect of the broker, a retry after it failed, messages it
	// dropped), after which every watched video is caught up.
	Reconnected()
	// CatchUpRead counts a read of the events table to catch up a video.
	CatchUpRead()
	// GapFilled counts n events published from such a read.
	GapFilled(n int)
	// PayloadPublished counts an event published from a notice's payload,
	// without reading the database.
	PayloadPublished()
}

// Options configure a Service.
type Options struct {
	Store     Store
	Publisher Publisher
	// Observer, if set, counts events, finished jobs and step durations.
	Observer Observer
	// Broker, if set, tells the other nodes sharing the database of the
	// events stored here, and this node of theirs. Nil for a node alone
	// on its database, such as SQLite's: a no-op engine would only run
	// goroutines that do nothing.
	Broker Broker
	// ClusterObserver, if set, counts what the Broker delivers.
	ClusterObserver ClusterObserver
	Logger          *slog.Logger
	// Mock makes the service run every job through the built-in 8-step
	// pipeline; otherwise steps come from workers through Post.
	Mock bool
	// StepDelay is the mock pipeline's pause between steps. Its mean is
	// also what the ETA assumes a mock step takes until it has seen one.
	StepDelay pipeline.Delay
	// Lease is how long a video stays with whoever runs it without a new
	// event (the Store's lease); the mock pipeline renews it while it
	// waits between steps. 0 means storage.DefaultLease.
	Lease time.Duration
	// MaxAttempts is how many claims a video gets before a lost lease
	// fails it; 0 means 3.
	MaxAttempts int
	// EventRetention, above 0, is how long the events of a finished video
	// are kept; the video stays. VideoRetention, above 0, is how long a
	// finished video is kept, with its events. 0 keeps them forever.
	EventRetention, VideoRetention time.Duration
}

// Service creates, advances and cancels jobs. It is safe for concurrent use.
//
// Start runs its goroutines: one that deals with expired leases; with a
// retention set, one that deletes old data; on a database other nodes may
// share, one that follows their events and one that tells them of this
// node's; and, with the mock pipeline, a built-in worker that claims videos
// like any worker and runs each on a goroutine of its own. Close stops them
// all and waits.
type Service struct {
	store       Store
	publisher   Publisher
	observer    Observer
	broker      Broker
	follower    *follower // nil without a broker
	logger      *slog.Logger
	mock        bool
	delay       pipeline.Delay
	lease       time.Duration
	maxAttempts int
	retention   retention
	eta         *eta.Estimator
	hints       *hintQueue // nil without a broker
	ordered     *orderedPublisher

	mu      sync.Mutex
	closed  bool
	running map[int64]*mockRun // mock jobs
	pending chan struct{}      // closed when a video may be waiting for a claim
	stop    context.CancelFunc // ends Start's goroutines
	wg      sync.WaitGroup
	// sendHints stops after the rest, so that the events stored by the
	// jobs Close stops reach the other nodes too.
	stopHints context.CancelFunc
	hintsSent sync.WaitGroup
}

// Defaults of Options' zero fields.
const defaultMaxAttempts = 3

// New returns a Service; call Start before serving requests.
func New(opts Options) *Service {
	prior := workerStepPrior
	if opts.Mock {
		prior = opts.StepDelay.Mean()
	}
	s := &Service{
		store:       opts.Store,
		publisher:   opts.Publisher,
		observer:    opts.Observer,
		logger:      opts.Logger,
		mock:        opts.Mock,
		delay:       opts.StepDelay,
		eta:         eta.New(stephub.TotalSteps, prior),
		lease:       cmp.Or(opts.Lease, storage.DefaultLease),
		maxAttempts: cmp.Or(opts.MaxAttempts, defaultMaxAttempts),
		retention:   retention{events: opts.EventRetention, videos: opts.VideoRetention},
		running:     make(map[int64]*mockRun),
		pending:     make(chan struct{}),
		stop:        func() {},
		stopHints:   func() {},
		broker:      opts.Broker,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.ordered = newOrderedPublisher(s.publisher, s.emit)
	if s.broker != nil {
		s.hints = newHintQueue()
		s.follower = newFollower(s, opts.ClusterObserver)
	}
	return s
}

// Start runs the service's goroutines until Close (see Service). A job that a
// previous run stopped, here or on another node, is claimed again and goes
// on from its last stored step.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("jobs: Start after Close")
	}
	ctx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	s.goOwned(func() { s.expireLeases(ctx) })
	if s.retention.on() {
		s.goOwned(func() { s.applyRetention(ctx) })
	}
	if s.broker != nil {
		s.goOwned(func() { s.followOtherNodes(ctx) })
		var hintsCtx context.Context
		hintsCtx, s.stopHints = context.WithCancel(context.WithoutCancel(ctx))
		s.hintsSent.Go(func() { s.sendHints(hintsCtx) })
	}
	if s.mock {
		s.goOwned(func() { s.runBuiltinWorker(ctx) })
	}
	return nil
}

// Close stops the service's goroutines and the mock jobs, and waits for
// them. A stopped mock job is given back to the queue at its last stored
// step, for the next node or run to go on with.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.stop()
	for _, run := range s.running {
		run.cancel()
	}
	stopHints := s.stopHints
	s.mu.Unlock()
	s.wg.Wait()
	stopHints()
	s.hintsSent.Wait()
}

// goOwned runs f on a goroutine that Close waits for. The caller holds s.mu.
func (s *Service) goOwned(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
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
	s.wakeClaimers()
	return v, nil
}

// Cancel stops the user's video, ends its stream with a cancelled event and
// gives the credits back.
func (s *Service) Cancel(ctx context.Context, userID string, videoID int64) (stephub.Video, error) {
	v, a, err := s.store.Cancel(ctx, userID, videoID, "🛑 Cancelled by user")
	if err != nil {
		return stephub.Video{}, err
	}
	s.publish(videoID, a)
	s.stopMock(videoID)
	return v, nil
}

// Post stores the next step of a video and then broadcasts it. It returns the
// stored event (a repeated IdempotencyKey returns the first one's) and the
// token of the lease the post took when it claimed a pending video (empty
// otherwise). The step's lease token is checked as
// storage.Store.AppendEvent says.
//
// The event's ETA is the typical time of the steps still to run, this one
// included, as learned from recent jobs; the store gives a terminal event
// an ETA of 0 (a cancelled one too, which does not come through here).
func (s *Service) Post(ctx context.Context, videoID int64, step stephub.Step) (ev stephub.Event, leaseToken string, err error) {
	if !step.Status.Terminal() {
		step.ETASeconds = new(s.eta.Remaining(step.Step).Round(time.Millisecond).Seconds())
	}
	a, err := s.store.AppendEvent(ctx, videoID, step)
	if err != nil {
		return stephub.Event{}, "", err
	}
	s.publish(videoID, a)
	return a.Event, a.LeaseToken, nil
}

// publish records a stored event, then hands it to the hub. A repeated
// idempotent post is published again, in case the first publish never
// happened (the process stopped in between); subscriptions skip what they
// have. It is counted once, and learned from once.
//
// Recording comes first so that whoever has seen an event, a client or a
// test, also sees it counted in the metrics.
//
// No lock is held from storing to publishing: two events of one video
// stored at once finish in any order, and the ordered publisher puts the
// ones stored here back in sequence before the hub sees them. Whatever it
// cannot (a predecessor stored by another node), the hub's subscriptions
// put right (they skip what they have and read a gap from storage), and
// followers keep only the highest seq they heard.
func (s *Service) publish(videoID int64, a storage.Appended) {
	ev := a.Event
	if !a.Repeat {
		s.record(a)
	}
	s.ordered.publish(&hub.Event{VideoID: videoID, Seq: ev.ID, Data: a.Payload, Terminal: ev.Status.Terminal()})
}

// emit hands a stored event to the hub, then tells the other nodes of it.
func (s *Service) emit(e *hub.Event) {
	s.publisher.Publish(e)
	if s.hints != nil {
		s.hints.add(Notice{VideoID: e.VideoID, Seq: e.Seq, Terminal: e.Terminal, Payload: e.Data})
	}
}

// record feeds a newly stored event to the ETA and the observer.
func (s *Service) record(a storage.Appended) {
	if d := a.StepDone; d != nil {
		s.eta.Observe(d.Step, d.Duration)
	}
	if s.observer == nil {
		return
	}
	s.observer.EventPublished()
	if d := a.StepDone; d != nil {
		s.observer.StepDuration(d.Step, d.Duration)
	}
	if a.Event.Status.Terminal() {
		s.observer.JobFinished(string(a.Event.Status))
	}
}
