// Package brokertest checks that an engine implements jobs.Broker as the
// follower expects: every notice of another node arrives once, in order,
// and a node never hears its own. Each engine's tests run it against the
// real engine.
package brokertest

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stephub/stephub/jobs"
)

// Recorder is a jobs.Follower that records what it is given. Heard never
// blocks: its buffer is far larger than any test sends.
type Recorder struct {
	Notices chan jobs.Notice
	missed  atomic.Int64
	dropped atomic.Int64
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{Notices: make(chan jobs.Notice, 100_000)} }

// Heard implements jobs.Follower.
func (r *Recorder) Heard(n jobs.Notice) {
	select {
	case r.Notices <- n:
	default:
		panic("brokertest: Recorder full")
	}
}

// Missed implements jobs.Follower.
func (r *Recorder) Missed() { r.missed.Add(1) }

// Dropped implements jobs.Follower.
func (r *Recorder) Dropped() { r.dropped.Add(1) }

// MissedCount returns how many times Missed was called.
func (r *Recorder) MissedCount() int64 { return r.missed.Load() }

// DroppedCount returns how many times Dropped was called.
func (r *Recorder) DroppedCount() int64 { return r.dropped.Load() }

// Follow runs b.Follow(f) until the test ends, and fails the test if it
// returns an error.
func Follow(t *testing.T, b jobs.Broker, f jobs.Follower) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Follow(ctx, f) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Follow: %v", err)
		}
	})
}

// probeVideo is the video of the notices Run sends until the follower is
// listening.
const probeVideo = 1

// Run checks two nodes of one cluster, a and b: what a announces reaches
// b once each and in order, with its payload when carriesPayload, and a
// hears none of its own notices.
func Run(t *testing.T, a, b jobs.Broker, carriesPayload bool) {
	t.Helper()
	atA, atB := NewRecorder(), NewRecorder()
	Follow(t, a, atA)
	Follow(t, b, atB)

	// The subscription may not be in place yet: announce until the first
	// notice arrives.
	probe := []jobs.Notice{{VideoID: probeVideo, Seq: 1}}
	deadline := time.Now().Add(10 * time.Second)
	for len(atB.Notices) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no notice reached the other node in 10s")
		}
		if err := a.Announce(t.Context(), probe); err != nil {
			t.Fatalf("Announce: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	var sent []jobs.Notice
	for i := range 600 {
		sent = append(sent, jobs.Notice{VideoID: int64(1000000 + i%7), Seq: int64(1 + i), Terminal: i == 599,
			Payload: fmt.Appendf(nil, `{"id":%d}`, 1+i)})
	}
	if err := a.Announce(t.Context(), sent); err != nil {
		t.Fatalf("Announce(%d notices): %v", len(sent), err)
	}
	timeout := time.After(10 * time.Second)
	for i := 0; i < len(sent); {
		select {
		case n := <-atB.Notices:
			if n.VideoID == probeVideo {
				continue
			}
			want := sent[i]
			if !carriesPayload {
				want.Payload = nil
			}
			if n.VideoID != want.VideoID || n.Seq != want.Seq || n.Terminal != want.Terminal || !bytes.Equal(n.Payload, want.Payload) {
				t.Fatalf("notice %d = %+v; want %+v (in order, each once)", i, n, want)
			}
			i++
		case <-timeout:
			t.Fatalf("received %d of %d notices", i, len(sent))
		}
	}
	// Nothing more comes: no notice twice, at the end either.
	time.Sleep(200 * time.Millisecond)
	for len(atB.Notices) > 0 {
		if n := <-atB.Notices; n.VideoID != probeVideo {
			t.Errorf("after the last notice, %+v came again", n)
		}
	}
	if n := len(atA.Notices); n > 0 {
		t.Errorf("the announcing node heard %d notices of its own, first %+v", n, <-atA.Notices)
	}
	if n := atB.DroppedCount(); n > 0 {
		t.Errorf("%d messages dropped as unreadable", n)
	}
}
