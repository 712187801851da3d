package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/stephub/stephub/hub"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// history is an in-memory event log standing in for storage, whose own suite
// runs on real databases.
type history struct {
	mu     sync.Mutex
	events map[int64][]*hub.Event
}

func newHistory() *history { return &history{events: make(map[int64][]*hub.Event)} }

func (h *history) EventsAfter(_ context.Context, videoID, after int64) ([]*hub.Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*hub.Event
	for _, e := range h.events[videoID] {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	return out, nil
}

// store appends the next event of a video, as storage does before publishing.
func (h *history) store(videoID int64, terminal bool) *hub.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	seq := int64(len(h.events[videoID]) + 1)
	e := &hub.Event{VideoID: videoID, Seq: seq, Data: []byte(fmt.Sprintf(`{"id":%d}`, seq)), Terminal: terminal}
	h.events[videoID] = append(h.events[videoID], e)
	return e
}

type drops struct{ n atomic.Int64 }

func (d *drops) SubscriberDropped(string) { d.n.Add(1) }

// receive reads what a transport would send next: the ordered events for
// each live event until n have arrived.
func receive(t *testing.T, sub *hub.Subscription, got []int64, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	for len(got) < n {
		e, ok := <-sub.C()
		if !ok {
			t.Fatalf("subscription ended early: %v; got %v", sub.Err(), got)
		}
		batch, err := sub.Accept(ctx, nil, e)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batch {
			got = append(got, b.Seq)
		}
	}
	return got
}

func seqs(events []*hub.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

func equal(a, b []int64) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestBacklogThenLiveWithoutRepeats(t *testing.T) {
	hist := newHistory()
	h := hub.New(hub.Options{History: hist})
	defer h.Close()
	for range 3 {
		h.Publish(hist.store(1, false))
	}
	sub, err := h.Subscribe(context.Background(), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := seqs(sub.Backlog())
	if want := []int64{2, 3}; !equal(got, want) {
		t.Fatalf("backlog = %v; want %v", got, want)
	}
	// An event already in the backlog arrives live again (published
	// twice): it must be skipped.
	h.Publish(hist.events[1][2])
	h.Publish(hist.store(1, false))
	h.Publish(hist.store(1, true))
	got = receive(t, sub, got, 4)
	if want := []int64{2, 3, 4, 5}; !equal(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
}

func TestGapIsFilledFromHistory(t *testing.T) {
	hist := newHistory()
	h := hub.New(hub.Options{History: hist})
	defer h.Close()
	sub, err := h.Subscribe(context.Background(), 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Events 1 and 2 are stored, but only 2 is published first, as when two
	// writers commit in order and publish out of order.
	e1, e2 := hist.store(7, false), hist.store(7, false)
	h.Publish(e2)
	h.Publish(e1)
	h.Publish(hist.store(7, false))
	got := receive(t, sub, nil, 3)
	if want := []int64{1, 2, 3}; !equal(got, want) {
		t.Fatalf("got %v; want %v", got, want)
	}
}

func TestSlowConsumerIsDroppedAndOthersGoOn(t *testing.T) {
	hist := newHistory()
	obs := &drops{}
	h := hub.New(hub.Options{History: hist, Observer: obs, Buffer: 2})
	defer h.Close()
	ctx := context.Background()
	slow, err := h.Subscribe(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := h.Subscribe(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()

	var got []int64
	for range 5 {
		h.Publish(hist.store(1, false))
		got = receive(t, fast, got, len(got)+1)
	}
	if want := []int64{1, 2, 3, 4, 5}; !equal(got, want) {
		t.Fatalf("fast subscriber got %v; want %v", got, want)
	}
	for range slow.C() {
	}
	if !errors.Is(slow.Err(), hub.ErrSlowConsumer) {
		t.Fatalf("slow.Err() = %v; want ErrSlowConsumer", slow.Err())
	}
	if n := obs.n.Load(); n != 1 {
		t.Fatalf("drops = %d; want 1", n)
	}
	if n := h.Subscribers(1); n != 1 {
		t.Fatalf("subscribers = %d; want 1", n)
	}
	// The dropped reader resumes from storage and misses nothing.
	again, err := h.Subscribe(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got, want := seqs(again.Backlog()), []int64{1, 2, 3, 4, 5}; !equal(got, want) {
		t.Fatalf("resumed backlog = %v; want %v", got, want)
	}
}

func TestCloseEndsEverySubscription(t *testing.T) {
	h := hub.New(hub.Options{History: newHistory()})
	ctx := context.Background()
	var subs []*hub.Subscription
	for id := range int64(100) {
		sub, err := h.Subscribe(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	h.Close()
	h.Close()
	for _, sub := range subs {
		if _, ok := <-sub.C(); ok {
			t.Fatal("channel still open after Close")
		}
		if !errors.Is(sub.Err(), hub.ErrClosed) {
			t.Fatalf("Err() = %v; want ErrClosed", sub.Err())
		}
		sub.Close()
	}
	if _, err := h.Subscribe(ctx, 1, 0); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Subscribe after Close: err = %v; want ErrClosed", err)
	}
}

func TestSubscriptionCloseUnregisters(t *testing.T) {
	h := hub.New(hub.Options{History: newHistory()})
	defer h.Close()
	var subs []*hub.Subscription
	for range 5 {
		sub, err := h.Subscribe(context.Background(), 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	// Remove from the middle, the end and the start, twice each.
	for _, i := range []int{2, 4, 0, 2, 1, 3} {
		subs[i].Close()
	}
	if n := h.Subscribers(3); n != 0 {
		t.Fatalf("subscribers = %d; want 0", n)
	}
	if err := subs[0].Err(); err != nil {
		t.Fatalf("Err() after Close = %v; want nil", err)
	}
}

// TestConcurrentPublishSubscribe runs publishers and subscribers that come
// and go on a few videos at once; under -race it checks the locking, and
// every subscriber that saw the terminal event must have seen all before it.
func TestConcurrentPublishSubscribe(t *testing.T) {
	hist := newHistory()
	h := hub.New(hub.Options{History: hist, Buffer: 1024})
	defer h.Close()
	const videos, events, readers = 4, 200, 8
	var wg sync.WaitGroup
	for v := range int64(videos) {
		for r := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sub, err := h.Subscribe(context.Background(), v, int64(r*10))
				if err != nil {
					t.Error(err)
					return
				}
				defer sub.Close()
				want := int64(r * 10)
				check := func(batch []*hub.Event) bool {
					for _, e := range batch {
						if want++; e.Seq != want {
							t.Errorf("video %d reader %d: got seq %d; want %d", v, r, e.Seq, want)
						}
						if e.Terminal {
							return true
						}
					}
					return false
				}
				if check(sub.Backlog()) {
					return
				}
				for e := range sub.C() {
					batch, err := sub.Accept(context.Background(), nil, e)
					if err != nil {
						t.Error(err)
						return
					}
					if check(batch) {
						return
					}
				}
				t.Errorf("video %d reader %d ended early: %v", v, r, sub.Err())
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= events; i++ {
				h.Publish(hist.store(v, i == events))
			}
		}()
	}
	wg.Wait()
}
