package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stephub/stephub"
)

// TestStreamCounterWaitsBriefly fills a user's one slot: a few streams wait
// for it and one of them gets it when it is freed, the rest are refused
// after slotWait; one more than maxSlotWaiters is refused at once; another
// user's streams neither wait nor wake anyone.
func TestStreamCounterWaitsBriefly(t *testing.T) {
	c := newStreamCounter(1)
	ctx := context.Background()
	release, err := c.acquire(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		release func()
		err     error
	}
	results := make(chan result, maxSlotWaiters)
	for range maxSlotWaiters {
		go func() {
			r, err := c.acquire(ctx, "alice")
			results <- result{r, err}
		}()
	}
	for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		waiting := c.users["alice"].waiting
		c.mu.Unlock()
		if waiting == maxSlotWaiters {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d streams wait; want %d", waiting, maxSlotWaiters)
		}
	}
	start := time.Now()
	if _, err := c.acquire(ctx, "alice"); !errors.Is(err, stephub.ErrTooManyStreams) || time.Since(start) > slotWait/2 {
		t.Errorf("one waiter too many: %v after %v; want too_many_streams at once", err, time.Since(start))
	}
	bob, err := c.acquire(ctx, "bob")
	if err != nil {
		t.Fatalf("another user: %v", err)
	}
	bob()
	release()
	got := <-results // the freed slot goes to one waiter
	if got.err != nil {
		t.Fatalf("a waiter after the slot was freed: %v", got.err)
	}
	for range maxSlotWaiters - 1 {
		if r := <-results; !errors.Is(r.err, stephub.ErrTooManyStreams) {
			t.Errorf("a waiter while the slot stays taken: %v; want too_many_streams", r.err)
		}
	}
	got.release()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.users) != 0 {
		t.Errorf("counts left after every stream ended: %+v", c.users)
	}
}
