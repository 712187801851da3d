package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stephub/stephub/hub"
)

// noHistory is a hub's history with no stored events.
type noHistory struct{}

func (noHistory) EventsAfter(context.Context, int64, int64) ([]*hub.Event, error) { return nil, nil }

// TestOrderedPublisher: events stored here that finish out of order reach
// the hub in sequence, and one whose predecessor never comes is published
// after maxHold.
func TestOrderedPublisher(t *testing.T) {
	h := hub.New(hub.Options{History: noHistory{}})
	defer h.Close()
	sub, err := h.Subscribe(t.Context(), 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var emitted []int64 // videos, in the order of their events' emits
	o := newOrderedPublisher(h, func(e *hub.Event) {
		emitted = append(emitted, e.VideoID)
		h.Publish(e)
	})
	event := func(seq int64) *hub.Event { return &hub.Event{VideoID: 7, Seq: seq} }
	next := func() int64 {
		t.Helper()
		select {
		case e := <-sub.C():
			return e.Seq
		case <-time.After(5 * time.Second):
			t.Fatal("no event published in 5s")
			return 0
		}
	}

	o.publish(event(3))
	o.publish(event(2))
	if len(sub.C()) != 0 {
		t.Fatal("events 2 and 3 were published before event 1")
	}
	o.publish(event(1))
	for want := int64(1); want <= 3; want++ {
		if got := next(); got != want {
			t.Fatalf("published event %d; want %d", got, want)
		}
	}

	start := time.Now()
	o.publish(event(5)) // 4 is stored elsewhere, or never published here
	if got := next(); got != 5 {
		t.Fatalf("published event %d; want 5", got)
	}
	if waited := time.Since(start); waited < maxHold {
		t.Errorf("event 5 was published after %v; want it held %v for event 4", waited, maxHold)
	}

	// Nobody watches video 9: its events go at once, in any order.
	o.publish(&hub.Event{VideoID: 9, Seq: 2})
	if last := emitted[len(emitted)-1]; last != 9 {
		t.Errorf("an event of an unwatched video was held")
	}
}
