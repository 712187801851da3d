package storage_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/storage"
)

// TestClaimOrderAndStates claims the oldest pending video first, leases it,
// and never hands out videos that are running or finished.
func TestClaimOrderAndStates(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url, storage.WithLease(time.Minute))
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		done := mustVideo(t, s, "u1")
		mustAppend(t, s, done.ID, stephub.Step{Step: 9, Message: "m", Progress: 100, Status: stephub.StatusCompleted, VideoURL: ptr("/v.mp4")})
		first, second := mustVideo(t, s, "u1"), mustVideo(t, s, "u1")

		before := time.Now()
		got, err := s.Claim(ctx)
		if err != nil || got.ID != first.ID {
			t.Fatalf("Claim = %d, %v; want the oldest pending, %d", got.ID, err, first.ID)
		}
		if got.Status != stephub.StatusProcessing || got.Attempts != 1 || got.LeaseExpiresAt == nil ||
			got.LeaseExpiresAt.Before(before.Add(59*time.Second)) {
			t.Errorf("claimed video: status %s, attempts %d, lease %v; want processing, 1, a minute from now", got.Status, got.Attempts, got.LeaseExpiresAt)
		}
		if got, err := s.Claim(ctx); err != nil || got.ID != second.ID {
			t.Fatalf("second Claim = %d, %v; want %d", got.ID, err, second.ID)
		}
		if _, err := s.Claim(ctx); !errors.Is(err, stephub.ErrNotFound) {
			t.Errorf("Claim with nothing pending: %v; want ErrNotFound", err)
		}
	})
}

// TestClaimRace lets ten claimers race over twenty videos: each video is
// claimed exactly once.
func TestClaimRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url, storage.WithLease(time.Minute))
		mustUser(t, s, "u1", 10_000)
		const videos = 20
		for range videos {
			mustVideo(t, s, "u1")
		}
		var mu sync.Mutex
		claimed := map[int64]int{}
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				for {
					v, err := s.Claim(context.Background())
					if errors.Is(err, stephub.ErrNotFound) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					claimed[v.ID]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(claimed) != videos {
			t.Errorf("%d videos claimed; want %d", len(claimed), videos)
		}
		for id, n := range claimed {
			if n != 1 {
				t.Errorf("video %d claimed %d times; want once", id, n)
			}
		}
	})
}

// TestLeaseExpiry lets a claimed video's lease run out again and again: it
// is requeued with an event each time, then fails and is refunded once its
// attempts are used up. Posts and renewals keep a lease alive; a release
// gives the video back without using an attempt.
func TestLeaseExpiry(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		const lease = 50 * time.Millisecond
		s := mustOpen(t, url, storage.WithLease(lease))
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")
		expire := func() []storage.Expired {
			t.Helper()
			time.Sleep(2 * lease)
			out, err := s.ExpireLeases(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}

		// A post to a pending video claims it.
		mustAppend(t, s, v.ID, stephub.Step{Step: 2, Message: "m", Progress: 20})
		got, _ := s.Video(ctx, v.ID)
		if got.Attempts != 1 || got.LeaseExpiresAt == nil {
			t.Fatalf("after a post to a pending video: attempts %d, lease %v; want 1 and a lease", got.Attempts, got.LeaseExpiresAt)
		}
		// Renewing keeps it.
		for range 3 {
			time.Sleep(lease / 2)
			if err := s.RenewLease(ctx, v.ID); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := s.ExpireLeases(ctx, 2); err != nil || len(out) != 0 {
			t.Fatalf("ExpireLeases of a renewed lease = %v, %v; want none", out, err)
		}

		out := expire()
		if len(out) != 1 || out[0].VideoID != v.ID || out[0].Event.Status != stephub.StatusPending ||
			out[0].Event.Step != 2 || out[0].Event.Progress != 20 || out[0].Event.ID != 2 {
			t.Fatalf("first expiry = %+v; want video %d requeued by event 2 at step 2, 20%%", out, v.ID)
		}
		if err := s.RenewLease(ctx, v.ID); !errors.Is(err, storage.ErrLeaseLost) {
			t.Errorf("RenewLease after expiry: %v; want ErrLeaseLost", err)
		}

		// A release gives the video back without using an attempt.
		if _, err := s.Claim(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseLease(ctx, v.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Video(ctx, v.ID); got.Status != stephub.StatusPending || got.Attempts != 1 {
			t.Errorf("after release: %s with %d attempts; want pending with 1", got.Status, got.Attempts)
		}

		// The second claim is the last attempt: its expiry fails the job.
		if _, err := s.Claim(ctx); err != nil {
			t.Fatal(err)
		}
		balance := credits(t, s, "u1")
		out = expire()
		if len(out) != 1 || out[0].Event.Status != stephub.StatusFailed || out[0].Event.Error == nil {
			t.Fatalf("last expiry = %+v; want the job failed with an error", out)
		}
		if got := credits(t, s, "u1"); got != balance+100 {
			t.Errorf("credits = %d; want %d: refunded once", got, balance+100)
		}
		if out := expire(); len(out) != 0 {
			t.Errorf("expiry after the failure = %+v; want nothing", out)
		}
		evs := mustEvents(t, s, v.ID, 0)
		if len(evs) != 3 || !evs[2].Terminal {
			t.Errorf("%d events, last terminal %v; want 3 ending with the failure", len(evs), len(evs) > 0 && evs[len(evs)-1].Terminal)
		}
	})
}
