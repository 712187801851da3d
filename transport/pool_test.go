package transport_test

import (
	"bufio"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/transport"
)

// TestSSEFillsGapFromStorage publishes an event whose predecessor was
// stored but never published, as when events come from another node out of
// order: the stream reads the missing one from storage and sends both, in
// order.
func TestSSEFillsGapFromStorage(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{})
	f.appendStep(t, 1, 10, stephub.StatusProcessing)
	resp := f.open(t, "")
	r := bufio.NewReader(resp.Body)
	if got := ids(t, r, 1); len(got) != 1 || got[0] != 1 {
		t.Fatalf("first: %v; want [1]", got)
	}
	if _, err := f.store.AppendEvent(context.Background(), f.videoID, stephub.Step{Step: 2, Message: "stored only", Status: stephub.StatusProcessing}); err != nil {
		t.Fatal(err)
	}
	f.appendStep(t, 3, 10, stephub.StatusCompleted)
	if got := ids(t, r, 3); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("after the gap: %v; want [2 3]", got)
	}
	if err := <-f.ended; err != nil {
		t.Errorf("stream ended with %v; want nil after the terminal event", err)
	}
}

// TestSSEWritesAfterDeadlinePassed leaves a stream idle past the write
// deadline its first writes set: the next event must still go out, since a
// deadline bounds a write, not the stream's life.
func TestSSEWritesAfterDeadlinePassed(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{WriteTimeout: 50 * time.Millisecond, PingInterval: time.Hour})
	f.appendStep(t, 1, 10, stephub.StatusProcessing)
	resp := f.open(t, "")
	r := bufio.NewReader(resp.Body)
	if got := ids(t, r, 1); len(got) != 1 {
		t.Fatalf("backlog: %v; want [1]", got)
	}
	time.Sleep(200 * time.Millisecond)
	f.appendStep(t, 2, 10, stephub.StatusCompleted)
	if got := ids(t, r, 1); len(got) != 1 || got[0] != 2 {
		t.Fatalf("after idling: %v; want [2]", got)
	}
	if err := <-f.ended; err != nil {
		t.Errorf("stream ended with %v; want nil", err)
	}
}

// TestSSEManyEventsInOrder publishes faster than one write per event, to
// many streams at once: each gets every event once, in order, whatever
// mix of batched, partial and waiting writes carried them.
func TestSSEManyEventsInOrder(t *testing.T) {
	f := newFixture(t, hub.Options{Buffer: 4096}, transport.Config{})
	const streams, events = 50, 500
	readers := make([]*bufio.Reader, streams)
	for i := range readers {
		readers[i] = bufio.NewReader(f.open(t, "").Body)
	}
	got := make(chan []int64, streams)
	for _, r := range readers {
		go func() { got <- ids(t, r, 0) }()
	}
	for i := 1; i <= events; i++ {
		status := stephub.StatusProcessing
		if i == events {
			status = stephub.StatusCompleted
		}
		// Some frames larger than a socket buffer, most small.
		size := 20
		if i%100 == 0 {
			size = 1 << 20
		}
		f.appendStep(t, 1, size, status)
	}
	for range streams {
		ids := <-got
		if len(ids) != events {
			t.Fatalf("a stream got %d events; want %d", len(ids), events)
		}
		for i, id := range ids {
			if id != int64(i+1) {
				t.Fatalf("a stream got id %d at %d; want %d", id, i, i+1)
			}
		}
	}
	for range streams {
		if err := <-f.ended; err != nil {
			t.Errorf("stream ended with %v; want nil after the terminal event", err)
		}
	}
}

// TestSSEEndsWhenHubClosesBehindEvents closes the hub right behind a few
// events, while the stream waits for its turn to write them: it writes
// them, then ends, rather than waiting for events that cannot come.
func TestSSEEndsWhenHubClosesBehindEvents(t *testing.T) {
	for range 20 {
		f := newFixture(t, hub.Options{}, transport.Config{})
		r := bufio.NewReader(f.open(t, "").Body)
		if line, err := r.ReadString('\n'); err != nil || line != "retry: 3000\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		for range 3 {
			f.appendStep(t, 1, 10, stephub.StatusProcessing)
		}
		f.hub.Close()
		got := make(chan []int64, 1)
		go func() { got <- ids(t, r, 0) }()
		select {
		case ids := <-got:
			// Shutdown flushes what was queued before it ends the stream.
			if len(ids) != 3 || ids[0] != 1 || ids[2] != 3 {
				t.Fatalf("got %v; want [1 2 3]", ids)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the stream did not end after the hub closed")
		}
		if err := <-f.ended; !errors.Is(err, hub.ErrClosed) {
			t.Errorf("stream ended with %v; want hub.ErrClosed", err)
		}
	}
}
