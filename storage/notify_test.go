package storage_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/storage"
)

// TestNotifyReachesOtherNodes sends more hints than fit one notification
// and checks that another store sharing the database gets each once, in
// order, and that a store ignores the hints it sent itself.
func TestNotifyReachesOtherNodes(t *testing.T) {
	url := testdb.Postgres(t)
	sender, listener := mustOpen(t, url), mustOpen(t, url)

	got := make(chan storage.Hint, 1000)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		done <- listener.Listen(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)),
			func(h storage.Hint) { got <- h }, func() {})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen: %v", err)
		}
	}()

	var sent []storage.Hint
	for i := range 600 { // about 15 bytes each: several notifications
		sent = append(sent, storage.Hint{VideoID: int64(1000000 + i%7), Seq: int64(1 + i), Terminal: i == 599})
	}
	// The LISTEN may not have started yet: send until the first hint
	// arrives, then the lot.
	probe := []storage.Hint{{VideoID: 1, Seq: 1}}
	for len(got) == 0 {
		if err := sender.Notify(t.Context(), probe); err != nil {
			t.Fatalf("Notify: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The listener's own hints are not passed back to it.
	if err := listener.Notify(t.Context(), []storage.Hint{{VideoID: 2, Seq: 2}}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if err := sender.Notify(t.Context(), sent); err != nil {
		t.Fatalf("Notify(%d hints): %v", len(sent), err)
	}
	var received []storage.Hint
	timeout := time.After(10 * time.Second)
	for len(received) < len(sent) {
		select {
		case h := <-got:
			switch h.VideoID {
			case 1: // a probe
			case 2:
				t.Fatalf("the listener was given its own hint %+v", h)
			default:
				received = append(received, h)
			}
		case <-timeout:
			t.Fatalf("received %d of %d hints", len(received), len(sent))
		}
	}
	if !slices.Equal(received, sent) {
		t.Errorf("hints arrived out of order or changed: first difference at %d", firstDifference(received, sent))
	}
}

func firstDifference[T comparable](a, b []T) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestNotifyOnSQLiteDoesNothing: one process holds a SQLite database, so
// there is nobody to tell.
func TestNotifyOnSQLiteDoesNothing(t *testing.T) {
	s := mustOpen(t, testdb.SQLite(t))
	if s.Shared() {
		t.Error("a SQLite store says other nodes may share it")
	}
	if err := s.Notify(t.Context(), []storage.Hint{{VideoID: 1, Seq: 1}}); err != nil {
		t.Errorf("Notify: %v", err)
	}
}
