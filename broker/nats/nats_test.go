package nats_test

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"

	"github.com/stephub/stephub/broker/brokertest"
	"github.com/stephub/stephub/broker/nats"
	"github.com/stephub/stephub/internal/leakcheck"
	"github.com/stephub/stephub/internal/testnats"
	"github.com/stephub/stephub/jobs"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func newBroker(t *testing.T, opts nats.Options) *nats.Broker {
	t.Helper()
	b, err := nats.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// TestBroker: two nodes on one subject hear each other's notices, with
// their payloads, once each and in order, and never their own.
func TestBroker(t *testing.T) {
	s := testnats.Start(t)
	opts := nats.Options{URL: s.URL, Subject: "stephub.events.test"}
	brokertest.Run(t, newBroker(t, opts), newBroker(t, opts), true)
}

// heardSoon announces n from a until r hears it, and returns it: a
// subscription is in place some time after Follow starts.
func heardSoon(t *testing.T, a jobs.Broker, r *brokertest.Recorder, n jobs.Notice) jobs.Notice {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := a.Announce(t.Context(), []jobs.Notice{n}); err != nil {
			t.Fatalf("Announce: %v", err)
		}
		select {
		case got := <-r.Notices:
			for len(r.Notices) > 0 {
				<-r.Notices
			}
			return got
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no notice heard in 10s")
		}
	}
}

// TestPayloadBound: an event over the bound goes as a bare notice, which
// the follower reads from the database; one at the bound goes whole.
func TestPayloadBound(t *testing.T) {
	s := testnats.Start(t)
	opts := nats.Options{URL: s.URL, MaxPayload: 100}
	a, b := newBroker(t, opts), newBroker(t, opts)
	r := brokertest.NewRecorder()
	brokertest.Follow(t, b, r)
	at := bytes.Repeat([]byte("x"), 100)
	if got := heardSoon(t, a, r, jobs.Notice{VideoID: 1, Seq: 1, Payload: at}); !bytes.Equal(got.Payload, at) {
		t.Errorf("a payload at the bound arrived as %d bytes; want 100", len(got.Payload))
	}
	if got := heardSoon(t, a, r, jobs.Notice{VideoID: 1, Seq: 2, Payload: append(at, 'x')}); got.Payload != nil || got.Seq != 2 {
		t.Errorf("a payload over the bound arrived as %+v; want seq 2 without its payload", got)
	}
}

// TestSubjectsApart: clusters on one NATS server hear only their own
// subject's notices.
func TestSubjectsApart(t *testing.T) {
	s := testnats.Start(t)
	a := newBroker(t, nats.Options{URL: s.URL, Subject: "stephub.events.one"})
	b := newBroker(t, nats.Options{URL: s.URL, Subject: "stephub.events.one"})
	other := newBroker(t, nats.Options{URL: s.URL, Subject: "stephub.events.two"})
	r := brokertest.NewRecorder()
	brokertest.Follow(t, b, r)
	heardSoon(t, a, r, jobs.Notice{VideoID: 1, Seq: 1})
	if err := other.Announce(t.Context(), []jobs.Notice{{VideoID: 2, Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	// A notice after the other cluster's arrives after it would have.
	if got := heardSoon(t, a, r, jobs.Notice{VideoID: 3, Seq: 1}); got.VideoID != 3 {
		t.Errorf("heard %+v of another cluster's subject", got)
	}
}

// TestRestartIsMissed: when the NATS server restarts, both nodes
// reconnect by themselves, the follower is told that notices may have been
// lost, and hears the next ones.
func TestRestartIsMissed(t *testing.T) {
	s := testnats.Start(t)
	opts := nats.Options{URL: s.URL}
	a, b := newBroker(t, opts), newBroker(t, opts)
	r := brokertest.NewRecorder()
	brokertest.Follow(t, b, r)
	heardSoon(t, a, r, jobs.Notice{VideoID: 1, Seq: 1})
	if n := r.MissedCount(); n != 0 {
		t.Fatalf("Missed %d times before any reconnect", n)
	}

	s.Stop(t)
	s.Start(t)
	deadline := time.Now().Add(10 * time.Second)
	for r.MissedCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the NATS server restarted, and Missed not called in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := heardSoon(t, a, r, jobs.Notice{VideoID: 1, Seq: 2, Payload: []byte("{}")}); got.VideoID != 1 || string(got.Payload) != "{}" {
		t.Errorf("after the restart, heard %+v", got)
	}
}

// TestUnreadableMessage: a message on the subject that no node sent is
// dropped and reported.
func TestUnreadableMessage(t *testing.T) {
	s := testnats.Start(t)
	b := newBroker(t, nats.Options{URL: s.URL})
	r := brokertest.NewRecorder()
	brokertest.Follow(t, b, r)
	conn, err := natsio.Connect(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for r.DroppedCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no unreadable message reported in 10s")
		}
		if err := conn.Publish(nats.DefaultSubject, []byte("not a notice")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stalling is a follower that takes no notice while stalled, so that the
// client drops what it cannot hold.
type stalling struct {
	*brokertest.Recorder
	stalled *atomic.Bool
}

func (s stalling) Heard(n jobs.Notice) {
	for s.stalled.Load() {
		time.Sleep(time.Millisecond)
	}
	s.Recorder.Heard(n)
}

// TestDroppedIsMissed: messages the client drops because the follower
// lags are reported as missed, the later ones of a long lag too, and not
// only the first (which is all the client's slow-consumer error tells).
func TestDroppedIsMissed(t *testing.T) {
	s := testnats.Start(t)
	a := newBroker(t, nats.Options{URL: s.URL})
	b := newBroker(t, nats.Options{URL: s.URL, MaxPending: 1})
	f := stalling{Recorder: brokertest.NewRecorder(), stalled: new(atomic.Bool)}
	f.stalled.Store(true)
	defer f.stalled.Store(false)
	brokertest.Follow(t, b, f)
	deadline := time.Now().Add(10 * time.Second)
	for seq := int64(1); f.MissedCount() < 2; seq++ {
		if time.Now().After(deadline) {
			t.Fatalf("the client kept dropping messages for 10s, and Missed was called %d times; want at least 2", f.MissedCount())
		}
		if err := a.Announce(t.Context(), []jobs.Notice{{VideoID: 1, Seq: seq}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
