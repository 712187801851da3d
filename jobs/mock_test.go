package jobs_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/internal/logbuf"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/jobs"
	"github.com/stephub/stephub/pipeline"
	"github.com/stephub/stephub/storage"
	_ "modernc.org/sqlite" // for the tests' own connection, which plays another runner
)

// mockService starts a mock-pipeline Service, whose steps come every
// delay, on a SQLite database with a user "u1". It returns the service,
// its store, a connection of the test's own to the same database, and the
// service's logs.
func mockService(t *testing.T, delay time.Duration) (*jobs.Service, *storage.Store, *sql.DB, *logbuf.Buffer) {
	t.Helper()
	url := testdb.SQLite(t)
	store, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureUser(t.Context(), "u1", "", 1000); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite://")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logs := &logbuf.Buffer{}
	h := hub.New(hub.Options{History: store})
	t.Cleanup(h.Close)
	svc := jobs.New(jobs.Options{Store: store, Publisher: h, Mock: true, StepDelay: pipeline.Delay{Min: delay, Max: delay},
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc, store, db, logs
}

// eventually polls cond until it holds, failing the test after a few
// seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// video reads a video from store or fails the test.
func video(t *testing.T, store *storage.Store, videoID int64) stephub.Video {
	t.Helper()
	v, err := store.Video(t.Context(), videoID)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMockStopsWhenItsLeaseIsLost: a mock job refuses posts without its
// lease's token, and when another runner takes its lease (as one that
// claimed the video after the lease ran out would), its runner's next step
// is refused and it stops, instead of retrying it for ever.
func TestMockStopsWhenItsLeaseIsLost(t *testing.T) {
	svc, store, db, logs := mockService(t, 100*time.Millisecond)
	v := newVideo(t, svc)
	eventually(t, "the first step", func() bool { return video(t, store, v.ID).Step >= 1 })
	if _, _, err := svc.Post(t.Context(), v.ID, stephub.Step{Step: 7, Message: "not mine", Progress: 77}); !errors.Is(err, stephub.ErrLeaseHeld) {
		t.Errorf("a post without the lease's token: %v; want lease_held", err)
	}

	if _, err := db.ExecContext(t.Context(), "UPDATE videos SET lease_token_hash = 'another runner' WHERE id = ?", v.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the runner to stop", func() bool { return strings.Contains(logs.String(), "mock job stopped: its lease was lost") })
	taken := video(t, store, v.ID)
	time.Sleep(300 * time.Millisecond) // a retrying runner would log again by now
	if n := strings.Count(logs.String(), "retrying"); n != 0 {
		t.Errorf("the runner retried a refused step %d times:\n%s", n, logs.String())
	}
	if got := video(t, store, v.ID); got.LastSeq != taken.LastSeq || got.Status != stephub.StatusProcessing {
		t.Errorf("video at event %d, %s; want %d, processing: the stopped runner posted nothing more", got.LastSeq, got.Status, taken.LastSeq)
	}
}

// TestMockGoesOnAfterItsLeaseRanOut lets a mock job's lease run out while
// its runner waits between steps: the built-in worker claims the video
// again, the runner of the lost lease stops, and the new one finishes the
// job, each step once.
func TestMockGoesOnAfterItsLeaseRanOut(t *testing.T) {
	svc, store, db, logs := mockService(t, 300*time.Millisecond)
	v := newVideo(t, svc)
	eventually(t, "the first step", func() bool { return video(t, store, v.ID).Step >= 1 })
	// Each step renews the lease: it is set to run out again and again,
	// until the service finds it run out.
	eventually(t, "the video claimed again", func() bool {
		if _, err := db.ExecContext(t.Context(), `UPDATE videos SET lease_expires_at = '2000-01-01 00:00:00+00:00'
			WHERE id = ? AND attempts = 1`, v.ID); err != nil {
			t.Fatal(err)
		}
		return video(t, store, v.ID).Attempts == 2
	})
	eventually(t, "the job to end", func() bool { return video(t, store, v.ID).Status.Terminal() })

	got := video(t, store, v.ID)
	if got.Status != stephub.StatusCompleted || got.Attempts != 2 {
		t.Errorf("video %s after %d claims; want completed after 2", got.Status, got.Attempts)
	}
	evs, err := store.EventsAfter(t.Context(), v.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	steps := map[int]int{}
	requeued := 0
	for _, e := range evs {
		var ev stephub.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Status == stephub.StatusPending {
			requeued++
			continue
		}
		steps[ev.Step]++
	}
	for n := 1; n <= stephub.TotalSteps+1; n++ {
		if steps[n] != 1 {
			t.Errorf("step %d posted %d times; want once:\n%s", n, steps[n], logs.String())
		}
	}
	if requeued != 1 {
		t.Errorf("%d requeue events; want 1", requeued)
	}
}

// TestMockGoesOnFromAnotherRunnersProgress claims again a video that
// another runner took to 90 %, after its lease ran out: the mock pipeline's
// own progress for the next steps is lower, and it goes on from 90 % rather
// than have its steps refused for going backwards.
func TestMockGoesOnFromAnotherRunnersProgress(t *testing.T) {
	svc, store, db, _ := mockService(t, 200*time.Millisecond)
	v := newVideo(t, svc)
	eventually(t, "the first step", func() bool { return video(t, store, v.ID).Step >= 1 })
	eventually(t, "the video claimed again", func() bool {
		if _, err := db.ExecContext(t.Context(), `UPDATE videos SET progress = 90, lease_expires_at = '2000-01-01 00:00:00+00:00'
			WHERE id = ? AND attempts = 1`, v.ID); err != nil {
			t.Fatal(err)
		}
		return video(t, store, v.ID).Attempts == 2
	})
	eventually(t, "the job to end", func() bool { return video(t, store, v.ID).Status.Terminal() })
	if got := video(t, store, v.ID); got.Status != stephub.StatusCompleted || got.Attempts != 2 {
		t.Errorf("video %s after %d claims; want completed after 2", got.Status, got.Attempts)
	}
}
