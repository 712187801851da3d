package storage_test

import (
	"context"
	"errors"
	"strings"
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
		l, err := s.Claim(ctx, false)
		got := l.Video
		if err != nil || got.ID != first.ID {
			t.Fatalf("Claim = %d, %v; want the oldest pending, %d", got.ID, err, first.ID)
		}
		if got.Status != stephub.StatusProcessing || got.Attempts != 1 || got.LeaseExpiresAt == nil ||
			got.LeaseExpiresAt.Before(before.Add(59*time.Second)) {
			t.Errorf("claimed video: status %s, attempts %d, lease %v; want processing, 1, a minute from now", got.Status, got.Attempts, got.LeaseExpiresAt)
		}
		if got, err := s.Claim(ctx, false); err != nil || got.Video.ID != second.ID {
			t.Fatalf("second Claim = %d, %v; want %d", got.Video.ID, err, second.ID)
		}
		if _, err := s.Claim(ctx, false); !errors.Is(err, stephub.ErrNotFound) {
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
					l, err := s.Claim(context.Background(), false)
					if errors.Is(err, stephub.ErrNotFound) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					claimed[l.Video.ID]++
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
		token := mustAppended(t, s, v.ID, stephub.Step{Step: 2, Message: "m", Progress: 20}).LeaseToken
		got, _ := s.Video(ctx, v.ID)
		if got.Attempts != 1 || got.LeaseExpiresAt == nil {
			t.Fatalf("after a post to a pending video: attempts %d, lease %v; want 1 and a lease", got.Attempts, got.LeaseExpiresAt)
		}
		// Renewing keeps it.
		for range 3 {
			time.Sleep(lease / 2)
			if err := s.RenewLease(ctx, v.ID, token); err != nil {
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
		if err := s.RenewLease(ctx, v.ID, token); !errors.Is(err, stephub.ErrLeaseLost) {
			t.Errorf("RenewLease after expiry: %v; want ErrLeaseLost", err)
		}

		// A release gives the video back without using an attempt.
		l, err := s.Claim(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseLease(ctx, v.ID, l.Token); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Video(ctx, v.ID); got.Status != stephub.StatusPending || got.Attempts != 1 {
			t.Errorf("after release: %s with %d attempts; want pending with 1", got.Status, got.Attempts)
		}

		// The second claim is the last attempt: its expiry fails the job.
		if _, err := s.Claim(ctx, false); err != nil {
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

// TestLeaseFencing runs a video through the leases of three runners and
// checks which steps each lease takes, as AppendEvent writes and as
// CheckPost and ForecastPost foretell: a token that is not the lease's is
// lease_lost, no token against a fenced lease lease_held, and a refused
// step stores nothing.
func TestLeaseFencing(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		const lease = 50 * time.Millisecond
		s := mustOpen(t, url, storage.WithLease(lease))
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")
		stepWith := func(n int, token, key string) stephub.Step {
			st := step(n)
			st.LeaseToken, st.IdempotencyKey = token, key
			return st
		}
		// check posts a step with token and wants err from AppendEvent,
		// CheckPost and ForecastPost, and nothing stored if it is refused.
		check := func(what string, st stephub.Step, want error) {
			t.Helper()
			for name, check := range map[string]func(context.Context, int64, string, string) error{
				"CheckPost": s.CheckPost, "ForecastPost": s.ForecastPost,
			} {
				if err := check(ctx, v.ID, st.IdempotencyKey, st.LeaseToken); !errors.Is(err, want) && (want != nil || err != nil) {
					t.Errorf("%s: %s = %v; want %v", what, name, err, want)
				}
			}
			before := len(mustEvents(t, s, v.ID, 0))
			_, err := s.AppendEvent(ctx, v.ID, st)
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Errorf("%s: AppendEvent = %v; want %v", what, err, want)
			}
			if after := len(mustEvents(t, s, v.ID, 0)); want != nil && after != before {
				t.Errorf("%s: %d events stored by a refused step", what, after-before)
			}
		}

		// A worker's lease takes steps without its token until one
		// carries it.
		a, err := s.Claim(ctx, false)
		if err != nil || a.Token == "" {
			t.Fatalf("Claim = %q, %v; want a lease token", a.Token, err)
		}
		check("no token, unfenced", stepWith(1, "", ""), nil)
		check("A's token", stepWith(1, a.Token, ""), nil)
		check("no token, fenced", stepWith(2, "", ""), stephub.ErrLeaseHeld)
		check("another token", stepWith(2, "forged", ""), stephub.ErrLeaseLost)
		check("another token and a going back", stepWith(0, "forged", ""), stephub.ErrLeaseLost)
		check("A's keyed step", stepWith(2, a.Token, "a2"), nil)

		// A's lease runs out: its token no longer takes steps nor renews.
		time.Sleep(2 * lease)
		if out, err := s.ExpireLeases(ctx, 5); err != nil || len(out) != 1 {
			t.Fatalf("ExpireLeases = %+v, %v; want the video queued again", out, err)
		}
		check("A's token on the queued video", stepWith(3, a.Token, ""), stephub.ErrLeaseLost)
		check("A's stored step retried", stepWith(2, a.Token, "a2"), nil)
		if err := s.RenewLease(ctx, v.ID, a.Token); !errors.Is(err, stephub.ErrLeaseLost) {
			t.Errorf("RenewLease with A's token = %v; want lease_lost", err)
		}

		// The built-in pipeline's lease is fenced from its claim; A cannot
		// release it.
		b, err := s.Claim(ctx, true)
		if err != nil || b.Token == "" || b.Token == a.Token {
			t.Fatalf("Claim = %q, %v; want a new lease token", b.Token, err)
		}
		check("no token, fenced from the claim", stepWith(3, "", ""), stephub.ErrLeaseHeld)
		check("A's token under B's lease", stepWith(3, a.Token, ""), stephub.ErrLeaseLost)
		if err := s.ReleaseLease(ctx, v.ID, a.Token); err != nil {
			t.Fatal(err)
		}
		if err := s.RenewLease(ctx, v.ID, b.Token); err != nil {
			t.Errorf("RenewLease with B's token after A's release = %v; want the lease still B's", err)
		}
		check("B's token", stepWith(3, b.Token, ""), nil)
		if err := s.ReleaseLease(ctx, v.ID, b.Token); err != nil {
			t.Fatal(err)
		}

		// A step without a token to the pending video claims it, and its
		// new lease's token comes back.
		claimed := mustAppended(t, s, v.ID, stepWith(4, "", "c4"))
		if claimed.LeaseToken == "" || claimed.LeaseToken == b.Token {
			t.Fatalf("a step to a pending video took lease %q; want a new token", claimed.LeaseToken)
		}
		if got, _ := s.Video(ctx, v.ID); got.Status != stephub.StatusProcessing || got.Attempts != 2 {
			t.Errorf("after the claiming step: %s, %d attempts; want processing, 2 (B's was released)", got.Status, got.Attempts)
		}
		if again := mustAppended(t, s, v.ID, stepWith(4, "", "c4")); !again.Repeat || again.LeaseToken != "" {
			t.Errorf("the claiming step retried: repeat %t, lease %q; want the first answer, without a token", again.Repeat, again.LeaseToken)
		}
		check("B's token under C's lease", stepWith(5, b.Token, ""), stephub.ErrLeaseLost)
		check("C's token", stepWith(5, claimed.LeaseToken, ""), nil)

		// A finished video says so first, whatever the token.
		done := stepWith(stephub.TotalSteps+1, claimed.LeaseToken, "")
		done.Status, done.Progress, done.VideoURL = stephub.StatusCompleted, 100, ptr("/v.mp4")
		check("C's last step", done, nil)
		check("C's token after the end", stepWith(9, claimed.LeaseToken, ""), stephub.ErrVideoFinished)
		check("A's token after the end", stepWith(9, a.Token, "new"), stephub.ErrVideoFinished)
		check("no token after the end", stepWith(9, "", ""), stephub.ErrVideoFinished)
		check("C's stored step retried after the end", stepWith(4, "", "c4"), nil)
		if err := s.CheckPost(ctx, 424242, "", ""); !errors.Is(err, stephub.ErrNotFound) {
			t.Errorf("CheckPost of an unknown video = %v; want not_found", err)
		}
	})
}

// TestLeaseFencingRace lets a runner post on while its lease is taken from
// it: none of its steps lands after the next runner's claim, since the
// lease is checked as each step is written.
func TestLeaseFencingRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url, storage.WithLease(time.Minute))
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")
		a, err := s.Claim(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		var stored sync.WaitGroup
		stored.Add(1)
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				deadline := time.Now().Add(10 * time.Second)
				for time.Now().Before(deadline) {
					_, err := s.AppendEvent(context.Background(), v.ID,
						stephub.Step{Step: 1, Message: "A", Progress: 10, LeaseToken: a.Token})
					switch {
					case errors.Is(err, stephub.ErrLeaseLost):
						return
					case err != nil:
						t.Error(err)
						return
					case i == 0:
						stored.Done()
						i = -1
					}
				}
				t.Error("A's steps were taken for 10 s after its lease was lost")
			})
		}
		stored.Wait()
		if err := s.ReleaseLease(ctx, v.ID, a.Token); err != nil {
			t.Fatal(err)
		}
		// On PostgreSQL a claim passes over the video while one of A's
		// steps has it locked, as it would any video another claim has.
		b, err := s.Claim(ctx, true)
		for deadline := time.Now().Add(10 * time.Second); errors.Is(err, stephub.ErrNotFound) && time.Now().Before(deadline); {
			b, err = s.Claim(ctx, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		mustAppend(t, s, v.ID, stephub.Step{Step: 2, Message: "B", Progress: 20, LeaseToken: b.Token})
		evs := mustEvents(t, s, v.ID, b.Video.LastSeq)
		if len(evs) != 1 || !strings.Contains(string(evs[0].Data), `"message":"B"`) || b.Video.LastSeq == 0 {
			t.Errorf("%d events after B's claim at event %d; want B's only, after some of A's", len(evs), b.Video.LastSeq)
		}
	})
}
