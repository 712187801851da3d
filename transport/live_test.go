package transport

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestWaitCountsStreamsStartedWhileWaiting starts a stream's goroutine
// while Wait waits: Wait returns only once it has ended too. Under -race it
// also checks what a sync.WaitGroup forbids, and shutdown does: goroutines
// starting from none while Wait runs.
func TestWaitCountsStreamsStartedWhileWaiting(t *testing.T) {
	st := New(Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	first, second := make(chan struct{}), make(chan struct{})
	st.live.goLive(func() { <-first })
	waited := make(chan error, 1)
	go func() { waited <- st.Wait(ctx) }()
	st.live.goLive(func() { <-second })
	close(first)
	select {
	case err := <-waited:
		t.Fatalf("Wait returned %v with a stream still live", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(second)
	if err := <-waited; err != nil {
		t.Fatalf("Wait after the last stream ended: %v", err)
	}

	for range 100 {
		var wg sync.WaitGroup
		wg.Go(func() { st.live.goLive(func() {}) })
		wg.Go(func() {
			if err := st.Wait(ctx); err != nil {
				t.Errorf("Wait: %v", err)
			}
		})
		wg.Wait()
	}
	if err := st.Wait(ctx); err != nil {
		t.Fatalf("Wait at the end: %v", err)
	}
}
