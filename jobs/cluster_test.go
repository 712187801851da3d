package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/jobs"
	"github.com/stephub/stephub/metrics"
	"github.com/stephub/stephub/pipeline"
	"github.com/stephub/stephub/storage"
)

// memCluster is an in-memory jobs.Broker shared by the nodes of a test:
// Announce hands each notice to every other node's follower on the
// announcing goroutine, so a follower that blocked would stall its sender.
type memCluster struct {
	payloads bool // carry the stored events, as NATS does; else hints only, as PostgreSQL
	mu       sync.Mutex
	down     bool // notices are lost, as while a connection is down
	refusing bool // Announce fails, as when the broker cannot take them
	holding  bool // notices wait in held until release, as in flight
	held     []heldNotice
	sent     int // notices announced, lost or not
	refused  int // Announce calls refused
	follow   map[*memBroker]jobs.Follower
}

// heldNotice is a notice in flight, and the node that sent it.
type heldNotice struct {
	from *memBroker
	n    jobs.Notice
}

var errRefused = errors.New("the broker refuses notices")

type memBroker struct{ c *memCluster }

func newMemCluster(payloads bool) *memCluster {
	return &memCluster{payloads: payloads, follow: make(map[*memBroker]jobs.Follower)}
}

func (c *memCluster) node() *memBroker { return &memBroker{c: c} }

func (c *memCluster) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

// reconnect tells every follower that notices may have been lost.
func (c *memCluster) reconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.follow {
		f.Missed()
	}
}

// set changes the cluster's state under its lock.
func (c *memCluster) set(f func(c *memCluster)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// release delivers the held notices and stops holding.
func (c *memCluster) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	for _, h := range c.held {
		c.deliver(h.from, h.n)
	}
	c.held = nil
}

func (b *memBroker) Announce(ctx context.Context, notices []jobs.Notice) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if b.c.refusing {
		b.c.refused++
		return errRefused
	}
	b.c.sent += len(notices)
	for _, n := range notices {
		switch {
		case b.c.down:
		case b.c.holding:
			b.c.held = append(b.c.held, heldNotice{from: b, n: n})
		default:
			b.c.deliver(b, n)
		}
	}
	return nil
}

// deliver hands n to every node's follower but the sender's. The caller
// holds c.mu.
func (c *memCluster) deliver(from *memBroker, n jobs.Notice) {
	if !c.payloads {
		n.Payload = nil
	}
	for other, f := range c.follow {
		if other != from {
			f.Heard(n)
		}
	}
}

func (b *memBroker) Follow(ctx context.Context, f jobs.Follower) error {
	b.c.mu.Lock()
	b.c.follow[b] = f
	b.c.mu.Unlock()
	<-ctx.Done()
	b.c.mu.Lock()
	delete(b.c.follow, b)
	b.c.mu.Unlock()
	return nil
}

// node is one stephub node of a test cluster: its Service and its hub.
type node struct {
	svc *jobs.Service
	hub *hub.Hub
	reg *prometheus.Registry
}

// startNode starts a node on store with the cluster's broker. The follower
// reads the events table through followStore; the hub's subscriptions
// read the store itself.
func startNode(t *testing.T, c *memCluster, store *storage.Store, followStore jobs.Store, opts jobs.Options) node {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	h := hub.New(hub.Options{History: store})
	t.Cleanup(h.Close)
	opts.Store, opts.Publisher, opts.Broker, opts.ClusterObserver = followStore, h, c.node(), m.Broker("nats")
	svc := jobs.New(opts)
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return node{svc: svc, hub: h, reg: reg}
}

// twoNodes starts two nodes on one store and a broker of their own, which
// carries payloads or not.
func twoNodes(t *testing.T, payloads bool) (c *memCluster, a, b node) {
	t.Helper()
	c, store := newMemCluster(payloads), sharedStore(t)
	return c, startNode(t, c, store, store, jobs.Options{}), startNode(t, c, store, store, jobs.Options{})
}

// sharedStore opens a SQLite database with a user "u1", for the nodes of a
// test to share as they would share a PostgreSQL one.
func sharedStore(t *testing.T) *storage.Store {
	t.Helper()
	store, err := storage.Open(t.Context(), testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureUser(t.Context(), "u1", "", 100_000); err != nil {
		t.Fatal(err)
	}
	return store
}

// watch subscribes to a video on n's hub.
func watch(t *testing.T, n node, videoID int64) *hub.Subscription {
	t.Helper()
	sub, err := n.hub.Subscribe(t.Context(), videoID, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	if b := sub.Backlog(); len(b) > 0 {
		t.Fatalf("video %d has %d events already", videoID, len(b))
	}
	return sub
}

// waitFor reads sub until it has been given event seq, in order, and fails
// the test after within.
func waitFor(t *testing.T, sub *hub.Subscription, seq int64, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	var got []*hub.Event
	for {
		select {
		case e, ok := <-sub.C():
			if !ok {
				t.Fatalf("video %d: subscription ended: %v", sub.VideoID(), sub.Err())
			}
			var err error
			if got, err = sub.Accept(t.Context(), got[:0], e); err != nil {
				t.Fatal(err)
			}
			for _, e := range got {
				if e.Seq == seq {
					return
				}
			}
		case <-timeout:
			t.Fatalf("video %d: event %d not given within %v", sub.VideoID(), seq, within)
		}
	}
}

func post(t *testing.T, svc *jobs.Service, videoID int64, n int) {
	t.Helper()
	if _, _, err := svc.Post(t.Context(), videoID, stephub.Step{Step: n, Message: fmt.Sprintf("step %d", n), Progress: 10 * n}); err != nil {
		t.Fatalf("Post(video %d, step %d): %v", videoID, n, err)
	}
}

// TestFollowerFansOut: the events one node stores reach the watchers of
// another, from the notices' payloads without a read when the broker
// carries them, and from the events table when it carries hints only.
func TestFollowerFansOut(t *testing.T) {
	for _, payloads := range []bool{true, false} {
		t.Run(fmt.Sprintf("payloads=%t", payloads), func(t *testing.T) {
			_, a, b := twoNodes(t, payloads)
			v := newVideo(t, a.svc)
			sub := watch(t, b, v.ID)
			const steps = 5
			for n := 1; n <= steps; n++ {
				post(t, a.svc, v.ID, n)
			}
			waitFor(t, sub, steps, 10*time.Second)

			heard := sampleCount(t, b.reg, "stephub_broker_notices_total", "engine", "nats")
			direct := sampleCount(t, b.reg, "stephub_broker_payload_events_total", "engine", "nats")
			reads := sampleCount(t, b.reg, "stephub_broker_catchup_reads_total", "engine", "nats")
			gap := sampleCount(t, b.reg, "stephub_broker_gap_events_total", "engine", "nats")
			if heard != steps {
				t.Errorf("notices heard = %v; want %d", heard, steps)
			}
			if payloads && (direct != steps || reads != 0) {
				t.Errorf("with payloads: %v events published from them, %v reads; want %d and none", direct, reads, steps)
			}
			if !payloads && (direct != 0 || reads < 1 || gap != steps) {
				t.Errorf("hints only: %v published from payloads, %v reads, %v events read; want 0, at least 1, %d", direct, reads, gap, steps)
			}
			if n := sampleCount(t, a.reg, "stephub_broker_notices_total", "engine", "nats"); n != 0 {
				t.Errorf("the storing node heard %v notices of its own", n)
			}
		})
	}
}

// TestCancelStopsMockElsewhere: a cancel on one node stops the mock job
// that runs on another at once, through the broker, though its next step
// is an hour away.
func TestCancelStopsMockElsewhere(t *testing.T) {
	c, store := newMemCluster(true), sharedStore(t)
	runner := startNode(t, c, store, store, jobs.Options{Mock: true, StepDelay: pipeline.Delay{Min: time.Hour, Max: time.Hour}})
	other := startNode(t, c, store, store, jobs.Options{})
	v := newVideo(t, other.svc)
	eventually(t, "the mock job to start on its node", func() bool { return runner.svc.MockRunning(v.ID) })
	if _, err := other.svc.Cancel(t.Context(), "u1", v.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the mock job to stop", func() bool { return !runner.svc.MockRunning(v.ID) })
}

// TestMissedCatchesUp: notices lost while the broker was down are made up
// for when it says so: every watched video is read from the events table.
func TestMissedCatchesUp(t *testing.T) {
	c, a, b := twoNodes(t, true)
	v := newVideo(t, a.svc)
	sub := watch(t, b, v.ID)
	c.setDown(true)
	post(t, a.svc, v.ID, 1)
	post(t, a.svc, v.ID, 2)
	eventually(t, "the notices to be announced", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sent == 2
	})
	c.setDown(false)
	if len(sub.C()) > 0 {
		t.Fatal("lost notices reached the other node")
	}
	c.reconnect()
	waitFor(t, sub, 2, 10*time.Second)
	if n := sampleCount(t, b.reg, "stephub_broker_reconnects_total", "engine", "nats"); n != 1 {
		t.Errorf("reconnects = %v; want 1", n)
	}
}

// slowStore makes the follower's reads of one video slow.
type slowStore struct {
	*storage.Store
	video int64
	delay time.Duration
}

func (s slowStore) EventsAfter(ctx context.Context, videoID, afterSeq int64) ([]*hub.Event, error) {
	if videoID == s.video {
		time.Sleep(s.delay)
	}
	return s.Store.EventsAfter(ctx, videoID, afterSeq)
}

// TestSlowReadStallsNoOtherVideo: while the follower's read of one video
// takes slowRead, the events of other videos (enough of them that one
// shares anything a fixed split by id would give the slow one) reach their
// watchers in a fraction of it, and the slow one's arrives after it.
func TestSlowReadStallsNoOtherVideo(t *testing.T) {
	const slowRead = 2 * time.Second
	c, store := newMemCluster(false), sharedStore(t)
	a := startNode(t, c, store, store, jobs.Options{})
	slow := newVideo(t, a.svc)
	b := startNode(t, c, store, slowStore{Store: store, video: slow.ID, delay: slowRead}, jobs.Options{})
	slowSub := watch(t, b, slow.ID)
	var fast []*hub.Subscription
	var fastIDs []int64
	for range 8 {
		v := newVideo(t, a.svc)
		fastIDs = append(fastIDs, v.ID)
		fast = append(fast, watch(t, b, v.ID))
	}

	start := time.Now()
	post(t, a.svc, slow.ID, 1)
	for _, id := range fastIDs {
		post(t, a.svc, id, 1)
	}
	for _, sub := range fast {
		waitFor(t, sub, 1, 10*time.Second)
	}
	fastTook := time.Since(start)
	waitFor(t, slowSub, 1, 10*time.Second)
	slowTook := time.Since(start)
	t.Logf("8 other videos' events in %v; the slow video's in %v", fastTook, slowTook)
	if fastTook > slowRead/4 {
		t.Errorf("the other videos' events took %v; want under %v, a quarter of the slow read", fastTook, slowRead/4)
	}
	if slowTook < slowRead {
		t.Errorf("the slow video's event came in %v, before its read of %v could end", slowTook, slowRead)
	}
}

// TestLateNoticeReachesEveryWatcher: a watcher that joins while a notice is
// in flight reads the event from history, and the notice, arriving after,
// still reaches the watcher that was there before.
func TestLateNoticeReachesEveryWatcher(t *testing.T) {
	for _, payloads := range []bool{true, false} {
		t.Run(fmt.Sprintf("payloads=%t", payloads), func(t *testing.T) {
			c, a, b := twoNodes(t, payloads)
			v := newVideo(t, a.svc)
			first := watch(t, b, v.ID)
			c.set(func(c *memCluster) { c.holding = true })
			post(t, a.svc, v.ID, 1)
			eventually(t, "the notice to be in flight", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.held) == 1 })
			late, err := b.hub.Subscribe(t.Context(), v.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer late.Close()
			if n := len(late.Backlog()); n != 1 {
				t.Fatalf("the late watcher's history has %d events; want 1", n)
			}
			c.release()
			waitFor(t, first, 1, 10*time.Second)
		})
	}
}

// TestRefusedNoticesSentAgain: notices the broker refused, a terminal one
// among them, reach the other node once it takes them again.
func TestRefusedNoticesSentAgain(t *testing.T) {
	c, a, b := twoNodes(t, true)
	v := newVideo(t, a.svc)
	sub := watch(t, b, v.ID)
	c.set(func(c *memCluster) { c.refusing = true })
	post(t, a.svc, v.ID, 1)
	cancelled, err := a.svc.Cancel(t.Context(), "u1", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broker to refuse twice", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.refused >= 2 })
	if len(sub.C()) > 0 {
		t.Fatal("a refused notice reached the other node")
	}
	c.set(func(c *memCluster) { c.refusing = false })
	waitFor(t, sub, cancelled.LastSeq, 10*time.Second)
}
