package storage

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestTurnsPanic: a group whose run panics fails everyone else in it,
// raises the panic in its leader's goroutine, and leaves the turn free for
// the next group.
func TestTurnsPanic(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	tr := &turns[int]{max: 10, run: func(items []int) []error {
		switch {
		case slices.Contains(items, 1):
			<-release // hold the turn until the others queue
		case slices.Contains(items, 13):
			panic("unlucky")
		}
		return make([]error, len(items))
	}}
	first := make(chan error)
	go func() { first <- tr.do(ctx, 1) }()
	waitTurns(t, tr, 0, true)

	panicked, second := make(chan any), make(chan error)
	go func() {
		defer func() { panicked <- recover() }()
		tr.do(ctx, 13)
	}()
	waitTurns(t, tr, 1, true)
	go func() { second <- tr.do(ctx, 2) }()
	waitTurns(t, tr, 2, true)
	close(release)

	if err := <-first; err != nil {
		t.Errorf("the group before: %v", err)
	}
	if p := <-panicked; p != "unlucky" {
		t.Errorf("the leader of the group that panicked recovered %v", p)
	}
	if err := <-second; err == nil {
		t.Error("the other item of the group that panicked succeeded")
	}
	after, cancel := context.WithTimeout(ctx, 10*time.Second) // a stuck turn would never come
	defer cancel()
	if err := tr.do(after, 3); err != nil {
		t.Errorf("a group after the panic: %v", err)
	}
	waitTurns(t, tr, 0, false)
}

// waitTurns waits until n callers wait for tr's turn and a group is
// running or not.
func waitTurns[T any](t *testing.T, tr *turns[T], n int, running bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr.mu.Lock()
		queued, run := len(tr.queue), tr.running
		tr.mu.Unlock()
		if queued == n && run == running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers queued, running %t; want %d, %t", queued, run, n, running)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTurnsLeaveWhenContextEnds: a caller whose context ends before its
// group starts gets its context's error, and its item never runs.
func TestTurnsLeaveWhenContextEnds(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	var ran []int
	tr := &turns[int]{max: 10, run: func(items []int) []error {
		if slices.Contains(items, 1) {
			<-release
		}
		ran = append(ran, items...)
		return make([]error, len(items))
	}}
	first := make(chan error)
	go func() { first <- tr.do(ctx, 1) }()
	waitTurns(t, tr, 0, true)

	gone, leave := context.WithCancel(ctx)
	left, stayed := make(chan error), make(chan error)
	go func() { left <- tr.do(gone, 2) }()
	waitTurns(t, tr, 1, true)
	go func() { stayed <- tr.do(ctx, 3) }()
	waitTurns(t, tr, 2, true)
	leave()
	close(release)

	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Errorf("the caller that left: %v, want context.Canceled", err)
	}
	if err := <-first; err != nil {
		t.Errorf("the first caller: %v", err)
	}
	if err := <-stayed; err != nil {
		t.Errorf("the caller that stayed: %v", err)
	}
	if !slices.Equal(ran, []int{1, 3}) {
		t.Errorf("ran %v, want [1 3]", ran)
	}
}
