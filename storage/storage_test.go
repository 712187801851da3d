package storage_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/storage"
)

// Every test that touches a database runs through testdb.ForEach, once on
// SQLite and once on PostgreSQL, each time on a fresh database.

// mustOpen opens url with opts, migrates it and closes it when the test
// ends.
func mustOpen(t *testing.T, url string, opts ...storage.Option) *storage.Store {
	t.Helper()
	s, err := storage.Open(t.Context(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func mustUser(t *testing.T, s *storage.Store, id string, credits int64) stephub.User {
	t.Helper()
	u, err := s.EnsureUser(t.Context(), id, id+"@example.com", credits)
	if err != nil {
		t.Fatalf("EnsureUser(%q): %v", id, err)
	}
	return u
}

func newVideo() stephub.Video {
	return stephub.Video{Prompt: "a cat surfing a wave at sunset", Model: "sora-2", Cost: stephub.GenerateCost}
}

func mustVideo(t *testing.T, s *storage.Store, userID string) stephub.Video {
	t.Helper()
	v, err := s.CreateVideo(t.Context(), userID, newVideo())
	if err != nil {
		t.Fatalf("CreateVideo(%q): %v", userID, err)
	}
	return v
}

func step(n int) stephub.Step {
	return stephub.Step{Step: n, Message: "step", Progress: 100 * n / 9, Status: stephub.StatusProcessing}
}

func mustAppend(t *testing.T, s *storage.Store, videoID int64, st stephub.Step) stephub.Event {
	t.Helper()
	return mustAppended(t, s, videoID, st).Event
}

func mustAppended(t *testing.T, s *storage.Store, videoID int64, st stephub.Step) storage.Appended {
	t.Helper()
	a, err := s.AppendEvent(t.Context(), videoID, st)
	if err != nil {
		t.Fatalf("AppendEvent(%d, step %d %s): %v", videoID, st.Step, st.Status, err)
	}
	return a
}

func credits(t *testing.T, s *storage.Store, userID string) int64 {
	t.Helper()
	u, err := s.User(t.Context(), userID)
	if err != nil {
		t.Fatalf("User(%q): %v", userID, err)
	}
	return u.Credits
}

func mustEvents(t *testing.T, s *storage.Store, videoID, after int64) []*hub.Event {
	t.Helper()
	evs, err := s.EventsAfter(t.Context(), videoID, after)
	if err != nil {
		t.Fatalf("EventsAfter(%d, %d): %v", videoID, after, err)
	}
	return evs
}

func ptr[T any](v T) *T { return &v }

func TestOpenRefusesBadURLs(t *testing.T) {
	for _, url := range []string{
		"",
		"./data/stephub.db",
		"mysql://root@localhost/stephub",
		"sqlite://",
		"sqlite://:memory:",
		"sqlite://?_pragma=foreign_keys(1)",
	} {
		s, err := storage.Open(t.Context(), url)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) = nil error; want an error", url)
		}
	}
}

func TestOpenRedactsUnknownURL(t *testing.T) {
	_, err := storage.Open(t.Context(), "mysql://root:hunter2@localhost/db")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open error = %v; want an error without the password", err)
	}
}

// TestOpenMissingPostgresDatabase: a database that does not exist on the
// server is an error that says how to create it.
func TestOpenMissingPostgresDatabase(t *testing.T) {
	u, err := url.Parse(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = u.Path + "_missing"
	s, err := storage.Open(t.Context(), u.String())
	if err == nil {
		s.Close()
		t.Fatal("Open of a database that does not exist succeeded")
	}
	want := "create it first (createdb -h " + u.Hostname() + " -p " + u.Port() + " -U " + u.User.Username() + " " + strings.TrimPrefix(u.Path, "/") + ")"
	if !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), want) {
		t.Errorf("Open error = %v; want it to say the database does not exist and %q", err, want)
	}
}

func TestOpenSQLiteCreatesFolder(t *testing.T) {
	t.Run("absolute", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "a", "b", "x.db")
		mustOpen(t, "sqlite://"+file)
		if _, err := os.Stat(file); err != nil {
			t.Errorf("database file: %v", err)
		}
	})
	t.Run("relative", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		mustOpen(t, "sqlite://./data/x.db?_pragma=synchronous(NORMAL)")
		if _, err := os.Stat(filepath.Join(dir, "data", "x.db")); err != nil {
			t.Errorf("database file: %v", err)
		}
	})
}

// TestSQLiteJournal checks the mode that lets readers run beside the writer;
// it is a property of the file, so a plain connection sees it.
func TestSQLiteJournal(t *testing.T) {
	url := testdb.SQLite(t)
	mustOpen(t, url)
	db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q; want wal", mode)
	}
}

func TestDialect(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		if got, want := s.Dialect(), t.Name()[strings.LastIndex(t.Name(), "/")+1:]; got != want {
			t.Errorf("Dialect() = %q; want %q", got, want)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

func TestMigrate(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url) // migrates once
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		mustUser(t, s, "u1", 100)
	})
}

func TestMigrateConcurrently(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		const n = 4
		stores := make([]*storage.Store, n)
		for i := range stores {
			s, err := storage.Open(t.Context(), url)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate #%d: %v", i, err)
			}
		}
		mustUser(t, stores[0], "u1", 100)
	})
}

func TestEnsureUser(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()

		steps := []struct {
			email   string
			credits int64
			want    stephub.User
		}{
			{"", 1000, stephub.User{ID: "u1", Email: "", Credits: 1000, SubscriptionStatus: stephub.SubscriptionActive}},
			// Known: the credits stay, an empty email is filled in.
			{"a@example.com", 5, stephub.User{ID: "u1", Email: "a@example.com", Credits: 1000, SubscriptionStatus: stephub.SubscriptionActive}},
			// A stored email is never replaced.
			{"b@example.com", 5, stephub.User{ID: "u1", Email: "a@example.com", Credits: 1000, SubscriptionStatus: stephub.SubscriptionActive}},
			{"", 5, stephub.User{ID: "u1", Email: "a@example.com", Credits: 1000, SubscriptionStatus: stephub.SubscriptionActive}},
		}
		for i, st := range steps {
			got, err := s.EnsureUser(ctx, "u1", st.email, st.credits)
			if err != nil {
				t.Fatalf("call %d: EnsureUser: %v", i, err)
			}
			if got != st.want {
				t.Errorf("call %d: EnsureUser(%q, %d) = %+v; want %+v", i, st.email, st.credits, got, st.want)
			}
			if got, err := s.User(ctx, "u1"); err != nil || got != st.want {
				t.Errorf("call %d: User = %+v, %v; want %+v", i, got, err, st.want)
			}
		}

		// A user created with an email keeps it.
		got, err := s.EnsureUser(ctx, "u2", "u2@example.com", 7)
		if want := (stephub.User{ID: "u2", Email: "u2@example.com", Credits: 7, SubscriptionStatus: stephub.SubscriptionActive}); err != nil || got != want {
			t.Errorf("EnsureUser(u2) = %+v, %v; want %+v", got, err, want)
		}
	})
}

func TestEnsureUserConcurrently(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Go(func() {
				if _, err := s.EnsureUser(t.Context(), "u1", "u1@example.com", 1000); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("EnsureUser: %v", err)
		}
		if got := credits(t, s, "u1"); got != 1000 {
			t.Errorf("credits = %d; want 1000", got)
		}
	})
}

func TestUserNotFound(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		if _, err := s.User(t.Context(), "nobody"); !errors.Is(err, stephub.ErrNotFound) {
			t.Errorf("User(nobody) error = %v; want ErrNotFound", err)
		}
	})
}

func TestUpdateUser(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		inactive, active := stephub.SubscriptionInactive, stephub.SubscriptionActive
		tests := []struct {
			name    string
			credits *int64
			sub     *stephub.SubscriptionStatus
			want    stephub.User
		}{
			{"unknown user is created, then changed", nil, &inactive,
				stephub.User{ID: "u1", Credits: 1000, SubscriptionStatus: stephub.SubscriptionInactive}},
			{"credits only", ptr(int64(0)), nil,
				stephub.User{ID: "u1", Credits: 0, SubscriptionStatus: stephub.SubscriptionInactive}},
			{"both", ptr(int64(250)), &active,
				stephub.User{ID: "u1", Credits: 250, SubscriptionStatus: stephub.SubscriptionActive}},
			{"neither", nil, nil,
				stephub.User{ID: "u1", Credits: 250, SubscriptionStatus: stephub.SubscriptionActive}},
		}
		for _, tt := range tests {
			got, err := s.UpdateUser(t.Context(), "u1", tt.credits, tt.sub, 1000)
			if err != nil {
				t.Fatalf("%s: UpdateUser: %v", tt.name, err)
			}
			if got != tt.want {
				t.Errorf("%s: UpdateUser = %+v; want %+v", tt.name, got, tt.want)
			}
		}

		got, err := s.UpdateUser(t.Context(), "u2", ptr(int64(5)), nil, 1000)
		if want := (stephub.User{ID: "u2", Credits: 5, SubscriptionStatus: stephub.SubscriptionActive}); err != nil || got != want {
			t.Errorf("UpdateUser(u2, credits 5) = %+v, %v; want %+v", got, err, want)
		}
		// The schema still refuses negative credits.
		if _, err := s.UpdateUser(t.Context(), "u2", ptr(int64(-1)), nil, 1000); err == nil {
			t.Errorf("UpdateUser(credits -1) = nil error; want an error")
		}
	})
}

func TestCreateVideo(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)

		before := time.Now().UTC().Truncate(time.Microsecond)
		in := newVideo()
		in.ReferenceImageURL = ptr("https://example.com/cat.png")
		v, err := s.CreateVideo(ctx, "u1", in)
		after := time.Now().UTC()
		if err != nil {
			t.Fatalf("CreateVideo: %v", err)
		}
		if got := credits(t, s, "u1"); got != 900 {
			t.Errorf("credits after CreateVideo = %d; want 900", got)
		}
		if v.ID <= 0 {
			t.Errorf("ID = %d; want > 0", v.ID)
		}
		want := stephub.Video{
			ID: v.ID, UserID: "u1", Status: stephub.StatusPending,
			Prompt: in.Prompt, Model: in.Model, ReferenceImageURL: in.ReferenceImageURL,
			Cost: stephub.GenerateCost, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
		}
		if !videosEqual(v, want) {
			t.Errorf("CreateVideo = %+v; want %+v", v, want)
		}
		if v.CreatedAt.Before(before) || v.CreatedAt.After(after) {
			t.Errorf("CreatedAt = %v; want within [%v, %v]", v.CreatedAt, before, after)
		}
		if v.CreatedAt.Location() != time.UTC || v.CreatedAt != v.CreatedAt.Truncate(time.Microsecond) {
			t.Errorf("CreatedAt = %v; want UTC, whole microseconds", v.CreatedAt)
		}

		// What is read back is what CreateVideo returned, times included.
		got, err := s.Video(ctx, v.ID)
		if err != nil {
			t.Fatalf("Video: %v", err)
		}
		if !videosEqual(got, v) || got.CreatedAt != v.CreatedAt || got.UpdatedAt != v.UpdatedAt {
			t.Errorf("Video(%d) = %+v; want %+v", v.ID, got, v)
		}

		v2 := mustVideo(t, s, "u1")
		if v2.ID <= v.ID || v2.ReferenceImageURL != nil {
			t.Errorf("second video: ID %d, ReferenceImageURL %v; want ID > %d and no reference image", v2.ID, v2.ReferenceImageURL, v.ID)
		}
	})
}

// videosEqual compares videos field by field, pointers by what they point
// to and times with Equal.
func videosEqual(a, b stephub.Video) bool {
	strEq := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.ID == b.ID && a.UserID == b.UserID && a.Status == b.Status && a.Prompt == b.Prompt &&
		a.Model == b.Model && strEq(a.ReferenceImageURL, b.ReferenceImageURL) && a.Step == b.Step &&
		a.Progress == b.Progress && strEq(a.VideoURL, b.VideoURL) && strEq(a.Error, b.Error) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.LastSeq == b.LastSeq && a.Cost == b.Cost
}

func TestCreateVideoRefused(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		inactive := stephub.SubscriptionInactive
		tests := []struct {
			name    string
			user    string
			credits int64
			sub     *stephub.SubscriptionStatus
			want    error
		}{
			{"inactive, no credits", "inactive-poor", 0, &inactive, stephub.ErrSubscriptionInactive},
			{"inactive, rich", "inactive-rich", 1000, &inactive, stephub.ErrSubscriptionInactive},
			{"no credits", "poor", 0, nil, stephub.ErrInsufficientCredits},
			{"too few credits", "almost", 99, nil, stephub.ErrInsufficientCredits},
			{"unknown user", "", 0, nil, stephub.ErrNotFound},
		}
		for _, tt := range tests {
			user := tt.user
			if user != "" {
				if _, err := s.UpdateUser(ctx, user, &tt.credits, tt.sub, 0); err != nil {
					t.Fatalf("%s: UpdateUser: %v", tt.name, err)
				}
			} else {
				user = "nobody"
			}
			_, err := s.CreateVideo(ctx, user, newVideo())
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: CreateVideo error = %v; want %v", tt.name, err, tt.want)
			}
			if tt.user == "" {
				continue
			}
			if got := credits(t, s, user); got != tt.credits {
				t.Errorf("%s: credits = %d; want %d (unchanged)", tt.name, got, tt.credits)
			}
			if vs, err := s.ListVideos(ctx, user, 0, 100); err != nil || len(vs) != 0 {
				t.Errorf("%s: ListVideos = %d videos, %v; want none", tt.name, len(vs), err)
			}
		}
	})
}

// TestCreateVideoRace is the credits guarantee: racing generates never spend
// the same credits.
func TestCreateVideoRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		const (
			rounds  = 5
			racers  = 10
			balance = 3 * stephub.GenerateCost
		)
		for round := range rounds {
			user := "racer" + string(rune('a'+round))
			mustUser(t, s, user, balance)

			start := make(chan struct{})
			errs := make([]error, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					<-start
					_, errs[i] = s.CreateVideo(t.Context(), user, newVideo())
				})
			}
			close(start) // all at once, for the most contention
			wg.Wait()

			var ok, poor int
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, stephub.ErrInsufficientCredits):
					poor++
				default:
					t.Errorf("round %d: CreateVideo: %v", round, err)
				}
			}
			if ok != 3 || poor != 7 {
				t.Errorf("round %d: %d succeeded, %d insufficient; want 3 and 7", round, ok, poor)
			}
			if got := credits(t, s, user); got != 0 {
				t.Errorf("round %d: credits = %d; want 0", round, got)
			}
			vs, err := s.ListVideos(t.Context(), user, 0, 100)
			if err != nil {
				t.Fatalf("ListVideos: %v", err)
			}
			if len(vs) != 3 {
				t.Errorf("round %d: %d videos; want 3", round, len(vs))
			}
		}
	})
}

func TestAppendEventSequence(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")

		for n := 1; n <= stephub.TotalSteps; n++ {
			st := step(n)
			st.ETASeconds = ptr(12.5)
			st.Data = json.RawMessage(`{ "frames" : [1, 2] }`)
			before := time.Now().UTC().Truncate(time.Microsecond)
			appended, err := s.AppendEvent(ctx, v.ID, st)
			ev, payload := appended.Event, appended.Payload
			if err != nil {
				t.Fatalf("AppendEvent(step %d): %v", n, err)
			}
			want := stephub.Event{
				ID: int64(n), Step: n, TotalSteps: stephub.TotalSteps, Message: "step",
				Progress: 100 * n / 9, Status: stephub.StatusProcessing, ETASeconds: ptr(12.5), At: ev.At,
			}
			if ev.ID != want.ID || ev.Step != want.Step || ev.TotalSteps != want.TotalSteps || ev.Message != want.Message ||
				ev.Progress != want.Progress || ev.Status != want.Status || *ev.ETASeconds != 12.5 {
				t.Errorf("event %d = %+v; want %+v", n, ev, want)
			}
			if ev.At.Before(before) || ev.At.Location() != time.UTC || ev.At != ev.At.Truncate(time.Microsecond) {
				t.Errorf("event %d: At = %v; want UTC, whole microseconds, not before %v", n, ev.At, before)
			}
			if bytes.ContainsAny(payload, "\n\r") {
				t.Errorf("event %d: payload %q spans lines; want one line", n, payload)
			}
			if !bytes.Contains(payload, []byte(`"data":{"frames":[1,2]}`)) {
				t.Errorf("event %d: payload %s; want the data as a compact object", n, payload)
			}
			var decoded stephub.Event
			if err := json.Unmarshal(payload, &decoded); err != nil {
				t.Fatalf("event %d: payload %s: %v", n, payload, err)
			}
			if decoded.ID != ev.ID || !decoded.At.Equal(ev.At) || decoded.Status != ev.Status {
				t.Errorf("event %d: payload %s does not match the event %+v", n, payload, ev)
			}

			got, err := s.Video(ctx, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != stephub.StatusProcessing || got.Step != n || got.Progress != st.Progress || got.LastSeq != int64(n) {
				t.Errorf("after step %d: video status %s, step %d, progress %d, last_seq %d; want processing, %d, %d, %d",
					n, got.Status, got.Step, got.Progress, got.LastSeq, n, st.Progress, n)
			}
			if !got.UpdatedAt.Equal(ev.At) {
				t.Errorf("after step %d: UpdatedAt = %v; want the event's time %v", n, got.UpdatedAt, ev.At)
			}
		}
		evs := mustEvents(t, s, v.ID, 0)
		for i, e := range evs {
			if e.Seq != int64(i+1) {
				t.Errorf("EventsAfter[%d].Seq = %d; want %d", i, e.Seq, i+1)
			}
		}
	})
}

func TestAppendEventStatusChanges(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")

		// An empty status counts as processing.
		ev := mustAppend(t, s, v.ID, stephub.Step{Step: 1, Message: "go", Progress: 11})
		if ev.Status != stephub.StatusProcessing {
			t.Errorf("event status = %q; want processing", ev.Status)
		}
		// A lost worker's job goes back to pending.
		mustAppend(t, s, v.ID, stephub.Step{Step: 1, Message: "requeued", Progress: 11, Status: stephub.StatusPending})
		if got, _ := s.Video(ctx, v.ID); got.Status != stephub.StatusPending {
			t.Errorf("video status = %q; want pending", got.Status)
		}
		if got, err := s.Claim(ctx, false); err != nil || got.Video.ID != v.ID {
			t.Errorf("Claim = %v, %v; want video %d back in the queue", got.Video.ID, err, v.ID)
		}
	})
}

func TestAppendEventConcurrently(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")

		const writers, each = 8, 10
		seqs := make(chan int64, writers*each)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				<-start
				for range each {
					// One step posted many times: steps may repeat,
					// never go backwards.
					appended, err := s.AppendEvent(t.Context(), v.ID, step(1))
					if err != nil {
						t.Errorf("writer %d: AppendEvent: %v", w, err)
						return
					}
					seqs <- appended.Event.ID
				}
			})
		}
		close(start)
		wg.Wait()
		close(seqs)

		got := slices.Sorted(func(yield func(int64) bool) {
			for s := range seqs {
				if !yield(s) {
					return
				}
			}
		})
		want := make([]int64, writers*each)
		for i := range want {
			want[i] = int64(i + 1)
		}
		if !slices.Equal(got, want) {
			t.Errorf("sequence numbers handed out = %v; want 1..%d, each once", got, len(want))
		}

		evs := mustEvents(t, s, v.ID, 0)
		if len(evs) != len(want) {
			t.Fatalf("EventsAfter(0) = %d events; want %d", len(evs), len(want))
		}
		for i, e := range evs {
			var decoded stephub.Event
			if err := json.Unmarshal(e.Data, &decoded); err != nil {
				t.Fatal(err)
			}
			if e.Seq != int64(i+1) || decoded.ID != e.Seq {
				t.Errorf("event %d: Seq %d, payload id %d; want %d", i, e.Seq, decoded.ID, i+1)
			}
		}
		if got, _ := s.Video(t.Context(), v.ID); got.LastSeq != int64(len(want)) {
			t.Errorf("LastSeq = %d; want %d", got.LastSeq, len(want))
		}
	})
}

func TestAppendEventRefusesGoingBackwards(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")
		mustAppend(t, s, v.ID, step(3))
		for _, tt := range []struct {
			name  string
			st    stephub.Step
			field string
		}{
			{"step", stephub.Step{Step: 2, Message: "m", Progress: 40}, "step"},
			{"progress", stephub.Step{Step: 3, Message: "m", Progress: 10}, "progress"},
		} {
			_, err := s.AppendEvent(t.Context(), v.ID, tt.st)
			var e *stephub.Error
			if !errors.As(err, &e) || e.Code != stephub.CodeValidation || e.Fields[tt.field] == "" {
				t.Errorf("%s backwards: error = %v; want a validation error on %q", tt.name, err, tt.field)
			}
		}
		if n := len(mustEvents(t, s, v.ID, 0)); n != 1 {
			t.Errorf("%d events stored; want 1: refused steps must leave nothing", n)
		}
		// The same step again, with more progress, is fine.
		if ev := mustAppend(t, s, v.ID, stephub.Step{Step: 3, Message: "m", Progress: 34}); ev.ID != 2 {
			t.Errorf("repeated step: id %d; want 2", ev.ID)
		}
	})
}

func TestAppendEventAfterTerminal(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)

		tests := []struct {
			name        string
			last        stephub.Step
			wantErr     error
			wantCredits int64 // after the video's 100 were taken
			wantURL     *string
			wantError   *string
		}{
			{
				name:        "completed",
				last:        stephub.Step{Step: 9, Message: "🎉 Video ready!", Progress: 100, Status: stephub.StatusCompleted, VideoURL: ptr("/uploads/videos/mock-video.mp4")},
				wantErr:     stephub.ErrVideoFinished,
				wantCredits: 0,
				wantURL:     ptr("/uploads/videos/mock-video.mp4"),
			},
			{
				name:        "failed refunds once",
				last:        stephub.Step{Step: 3, Message: "boom", Progress: 33, Status: stephub.StatusFailed, Error: ptr("the model refused")},
				wantErr:     stephub.ErrVideoFinished,
				wantCredits: 100,
				wantError:   ptr("the model refused"),
			},
			{
				name:        "cancelled by a worker",
				last:        stephub.Step{Step: 3, Message: "stop", Progress: 33, Status: stephub.StatusCancelled},
				wantErr:     stephub.ErrVideoCancelled,
				wantCredits: 100,
			},
		}
		for _, tt := range tests {
			before := credits(t, s, "u1")
			v := mustVideo(t, s, "u1")
			mustAppend(t, s, v.ID, step(1))
			mustAppend(t, s, v.ID, step(2))
			last := mustAppend(t, s, v.ID, tt.last)
			if last.ID != 3 || last.Status != tt.last.Status {
				t.Errorf("%s: terminal event id %d, status %s; want 3, %s", tt.name, last.ID, last.Status, tt.last.Status)
			}
			for range 2 { // the second try shows nothing changed with the first
				_, err := s.AppendEvent(ctx, v.ID, step(4))
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("%s: AppendEvent after the end: error = %v; want %v", tt.name, err, tt.wantErr)
				}
			}
			if got := credits(t, s, "u1") - (before - 100); got != tt.wantCredits {
				t.Errorf("%s: credits given back = %d; want %d", tt.name, got, tt.wantCredits)
			}
			got, err := s.Video(ctx, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := v
			want.Status, want.Step, want.Progress, want.LastSeq = tt.last.Status, tt.last.Step, tt.last.Progress, 3
			want.VideoURL, want.Error, want.UpdatedAt = tt.wantURL, tt.wantError, last.At
			if !videosEqual(got, want) {
				t.Errorf("%s: video = %+v; want %+v", tt.name, got, want)
			}
			evs := mustEvents(t, s, v.ID, 0)
			if len(evs) != 3 {
				t.Errorf("%s: %d events; want 3", tt.name, len(evs))
			}
		}
	})
}

func TestAppendEventUnknownVideo(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		if _, err := s.AppendEvent(t.Context(), 42, step(1)); !errors.Is(err, stephub.ErrNotFound) {
			t.Errorf("AppendEvent(42) error = %v; want ErrNotFound", err)
		}
	})
}

func TestAppendEventIdempotency(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")
		other := mustVideo(t, s, "u1")

		st := step(1)
		st.IdempotencyKey = "k1"
		appended, err := s.AppendEvent(ctx, v.ID, st)
		first, firstPayload := appended.Event, appended.Payload
		if err != nil {
			t.Fatal(err)
		}
		// The retry differs, as a confused worker's might: the first wins.
		retry := step(2)
		retry.IdempotencyKey = "k1"
		appended, err = s.AppendEvent(ctx, v.ID, retry)
		again, againPayload := appended.Event, appended.Payload
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if !appended.Repeat {
			t.Errorf("retry: Repeat = false; want true")
		}
		if again.ID != first.ID || again.Step != first.Step || !again.At.Equal(first.At) || !bytes.Equal(againPayload, firstPayload) {
			t.Errorf("retry = %+v, %s; want %+v, %s", again, againPayload, first, firstPayload)
		}
		if n := len(mustEvents(t, s, v.ID, 0)); n != 1 {
			t.Errorf("%d events after a retry; want 1", n)
		}

		// Keys belong to one video; another key is another event.
		if ev := mustAppend(t, s, other.ID, st); ev.ID != 1 {
			t.Errorf("same key on another video: id %d; want 1", ev.ID)
		}
		st.IdempotencyKey = "k2"
		if ev := mustAppend(t, s, v.ID, st); ev.ID != 2 {
			t.Errorf("new key: id %d; want 2", ev.ID)
		}

		// A retried terminal post is answered as the first was, not with
		// ErrVideoFinished, and refunds nothing more.
		fail := stephub.Step{Step: 2, Message: "boom", Progress: 22, Status: stephub.StatusFailed, Error: ptr("x"), IdempotencyKey: "end"}
		end := mustAppend(t, s, v.ID, fail)
		balance := credits(t, s, "u1")
		appended, err = s.AppendEvent(ctx, v.ID, fail)
		endAgain := appended.Event
		if err != nil || endAgain.ID != end.ID || endAgain.Status != stephub.StatusFailed {
			t.Errorf("retried terminal post = %+v, %v; want %+v", endAgain, err, end)
		}
		if got := credits(t, s, "u1"); got != balance {
			t.Errorf("credits after the retry = %d; want %d", got, balance)
		}
		// An older key, retried after the end, still gets its answer.
		st.IdempotencyKey = "k1"
		if a, err := s.AppendEvent(ctx, v.ID, st); err != nil || a.Event.ID != 1 {
			t.Errorf("old key after the end = %+v, %v; want event 1", a.Event, err)
		}
		// A new key after the end is refused.
		st.IdempotencyKey = "k3"
		if _, err := s.AppendEvent(ctx, v.ID, st); !errors.Is(err, stephub.ErrVideoFinished) {
			t.Errorf("new key after the end: error = %v; want ErrVideoFinished", err)
		}
	})
}

func TestAppendEventIdempotencyConcurrently(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")

		const n = 8
		ids := make([]int64, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				st := step(1)
				st.IdempotencyKey = "same"
				var a storage.Appended
				a, errs[i] = s.AppendEvent(t.Context(), v.ID, st)
				ids[i] = a.Event.ID
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil || ids[i] != 1 {
				t.Errorf("post %d = id %d, %v; want id 1", i, ids[i], errs[i])
			}
		}
		if got := len(mustEvents(t, s, v.ID, 0)); got != 1 {
			t.Errorf("%d events stored; want 1", got)
		}
	})
}

func TestCancel(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		mustUser(t, s, "u2", 1000)
		v := mustVideo(t, s, "u1")
		mustAppend(t, s, v.ID, step(1))
		mustAppend(t, s, v.ID, step(2))

		if _, _, err := s.Cancel(ctx, "u2", v.ID, "not yours"); !errors.Is(err, stephub.ErrNotFound) {
			t.Errorf("Cancel by another user: error = %v; want ErrNotFound", err)
		}
		if _, _, err := s.Cancel(ctx, "u1", 4242, "no such video"); !errors.Is(err, stephub.ErrNotFound) {
			t.Errorf("Cancel of an unknown video: error = %v; want ErrNotFound", err)
		}

		got, appended, err := s.Cancel(ctx, "u1", v.ID, "🛑 Cancelled by user")
		ev, payload := appended.Event, appended.Payload
		if err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		wantEv := stephub.Event{ID: 3, Step: 2, TotalSteps: stephub.TotalSteps, Message: "🛑 Cancelled by user",
			Progress: step(2).Progress, Status: stephub.StatusCancelled, At: ev.At}
		if ev.ID != wantEv.ID || ev.Step != wantEv.Step || ev.Progress != wantEv.Progress || ev.Status != wantEv.Status ||
			ev.Message != wantEv.Message || ev.TotalSteps != wantEv.TotalSteps {
			t.Errorf("Cancel event = %+v; want %+v", ev, wantEv)
		}
		var decoded stephub.Event
		if err := json.Unmarshal(payload, &decoded); err != nil || decoded.ID != 3 || decoded.Status != stephub.StatusCancelled {
			t.Errorf("Cancel payload = %s (%v); want event 3, cancelled", payload, err)
		}
		if got.Status != stephub.StatusCancelled || got.Step != 2 || got.LastSeq != 3 || !got.UpdatedAt.Equal(ev.At) {
			t.Errorf("Cancel video = %+v; want cancelled at step 2, last_seq 3, updated at %v", got, ev.At)
		}
		if c := credits(t, s, "u1"); c != 1000 {
			t.Errorf("credits after cancel = %d; want 1000 (refunded)", c)
		}

		if _, _, err := s.Cancel(ctx, "u1", v.ID, "again"); !errors.Is(err, stephub.ErrVideoFinished) {
			t.Errorf("second Cancel: error = %v; want ErrVideoFinished", err)
		}
		if _, err := s.AppendEvent(ctx, v.ID, step(3)); !errors.Is(err, stephub.ErrVideoCancelled) {
			t.Errorf("AppendEvent after cancel: error = %v; want ErrVideoCancelled", err)
		}
		if c := credits(t, s, "u1"); c != 1000 {
			t.Errorf("credits after the refused calls = %d; want 1000 (refunded once)", c)
		}
		evs := mustEvents(t, s, v.ID, 0)
		if len(evs) != 3 || !evs[2].Terminal {
			t.Errorf("events = %+v; want 3, the last terminal", evs)
		}

		// A finished video cannot be cancelled, nor refunded.
		done := mustVideo(t, s, "u1")
		mustAppend(t, s, done.ID, stephub.Step{Step: 9, Progress: 100, Status: stephub.StatusCompleted})
		if _, _, err := s.Cancel(ctx, "u1", done.ID, "too late"); !errors.Is(err, stephub.ErrVideoFinished) {
			t.Errorf("Cancel of a completed video: error = %v; want ErrVideoFinished", err)
		}
		if c := credits(t, s, "u1"); c != 900 {
			t.Errorf("credits = %d; want 900", c)
		}

		// A pending video, with no event yet, can be cancelled too.
		pending := mustVideo(t, s, "u1")
		got, appended, err = s.Cancel(ctx, "u1", pending.ID, "never mind")
		ev = appended.Event
		if err != nil || ev.ID != 1 || ev.Step != 0 || got.Status != stephub.StatusCancelled {
			t.Errorf("Cancel of a pending video = %+v, %+v, %v; want event 1 at step 0, cancelled", got, ev, err)
		}
		if c := credits(t, s, "u1"); c != 900 {
			t.Errorf("credits = %d; want 900", c)
		}
	})
}

// TestRefundStopsAtMaxCredits checks that a refund takes no balance past
// stephub.MaxCredits, leaves one already above it as it is rather than
// overflow, and finishes the video either way.
func TestRefundStopsAtMaxCredits(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		setCredits := func(n int64) {
			t.Helper()
			if _, err := s.UpdateUser(ctx, "u1", &n, nil, 0); err != nil {
				t.Fatalf("UpdateUser(credits %d): %v", n, err)
			}
		}

		cancelled := mustVideo(t, s, "u1")
		setCredits(stephub.MaxCredits - 50)
		if v, _, err := s.Cancel(ctx, "u1", cancelled.ID, "stop"); err != nil || v.Status != stephub.StatusCancelled {
			t.Fatalf("Cancel = %+v, %v; want cancelled", v, err)
		}
		if c := credits(t, s, "u1"); c != stephub.MaxCredits {
			t.Errorf("credits after cancel = %d; want %d", c, stephub.MaxCredits)
		}

		// Storage takes any balance the schema allows; the API sets none
		// this high, but a database from before the maximum may hold one.
		failed := mustVideo(t, s, "u1")
		setCredits(math.MaxInt64)
		mustAppend(t, s, failed.ID, stephub.Step{Step: 1, Message: "boom", Status: stephub.StatusFailed, Error: ptr("out of memory")})
		if v, err := s.Video(ctx, failed.ID); err != nil || v.Status != stephub.StatusFailed {
			t.Errorf("video after the failure = %+v, %v; want failed", v, err)
		}
		if c := credits(t, s, "u1"); c != math.MaxInt64 {
			t.Errorf("credits after the failure = %d; want %d, unchanged", c, int64(math.MaxInt64))
		}
	})
}

func TestCancelRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		mustUser(t, s, "u1", 100)
		v := mustVideo(t, s, "u1")

		const n = 6
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				if i%2 == 0 {
					_, _, errs[i] = s.Cancel(t.Context(), "u1", v.ID, "stop")
				} else {
					_, errs[i] = s.AppendEvent(t.Context(), v.ID, stephub.Step{Step: 1, Status: stephub.StatusFailed})
				}
			})
		}
		close(start)
		wg.Wait()
		var ok int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, stephub.ErrVideoFinished), errors.Is(err, stephub.ErrVideoCancelled):
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d calls ended the video; want 1", ok)
		}
		if c := credits(t, s, "u1"); c != 100 {
			t.Errorf("credits = %d; want 100 (refunded exactly once)", c)
		}
	})
}

func TestEventsAfter(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")
		var payloads [][]byte
		for n := 1; n <= 3; n++ {
			appended, err := s.AppendEvent(t.Context(), v.ID, step(n))
			p := appended.Payload
			if err != nil {
				t.Fatal(err)
			}
			payloads = append(payloads, p)
		}
		appended, err := s.AppendEvent(t.Context(), v.ID, stephub.Step{Step: 9, Progress: 100, Status: stephub.StatusCompleted})
		p := appended.Payload
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)

		tests := []struct {
			after    int64
			wantSeqs []int64
		}{
			{0, []int64{1, 2, 3, 4}},
			{2, []int64{3, 4}},
			{3, []int64{4}},
			{4, nil},
			{99, nil},
		}
		for _, tt := range tests {
			evs := mustEvents(t, s, v.ID, tt.after)
			var seqs []int64
			for _, e := range evs {
				seqs = append(seqs, e.Seq)
				if !bytes.Equal(e.Data, payloads[e.Seq-1]) {
					t.Errorf("after %d: event %d payload = %s; want %s", tt.after, e.Seq, e.Data, payloads[e.Seq-1])
				}
				if want := e.Seq == 4; e.Terminal != want {
					t.Errorf("after %d: event %d Terminal = %v; want %v", tt.after, e.Seq, e.Terminal, want)
				}
			}
			if !slices.Equal(seqs, tt.wantSeqs) {
				t.Errorf("EventsAfter(%d) seqs = %v; want %v", tt.after, seqs, tt.wantSeqs)
			}
		}
		if evs := mustEvents(t, s, 4242, 0); len(evs) != 0 {
			t.Errorf("EventsAfter(unknown video) = %v; want none", evs)
		}
	})
}

func TestVideoOwnership(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		mustUser(t, s, "u2", 1000)
		v := mustVideo(t, s, "u1")

		if got, err := s.UserVideo(ctx, "u1", v.ID); err != nil || !videosEqual(got, v) {
			t.Errorf("UserVideo(owner) = %+v, %v; want %+v", got, err, v)
		}
		tests := []struct {
			name string
			user string
			id   int64
		}{
			{"another user's video", "u2", v.ID},
			{"unknown video", "u1", v.ID + 1000},
			{"unknown user", "nobody", v.ID},
		}
		for _, tt := range tests {
			if _, err := s.UserVideo(ctx, tt.user, tt.id); !errors.Is(err, stephub.ErrNotFound) {
				t.Errorf("%s: UserVideo error = %v; want ErrNotFound", tt.name, err)
			}
		}
		if _, err := s.Video(ctx, v.ID+1000); !errors.Is(err, stephub.ErrNotFound) {
			t.Errorf("Video(unknown) error = %v; want ErrNotFound", err)
		}
	})
}

func TestListVideos(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		mustUser(t, s, "u2", 1000)
		var ids []int64 // of u1, oldest first
		for i := range 5 {
			ids = append(ids, mustVideo(t, s, "u1").ID)
			if i%2 == 0 {
				mustVideo(t, s, "u2") // interleaved, never listed for u1
			}
		}

		tests := []struct {
			before int64
			limit  int
			want   []int64
		}{
			{0, 2, []int64{ids[4], ids[3]}},
			{ids[3], 2, []int64{ids[2], ids[1]}},
			{ids[1], 2, []int64{ids[0]}},
			{ids[0], 2, nil},
			{0, 100, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		}
		for _, tt := range tests {
			vs, err := s.ListVideos(ctx, "u1", tt.before, tt.limit)
			if err != nil {
				t.Fatalf("ListVideos(before %d, limit %d): %v", tt.before, tt.limit, err)
			}
			var got []int64
			for _, v := range vs {
				got = append(got, v.ID)
				if v.UserID != "u1" {
					t.Errorf("ListVideos(u1) includes video %d of %q", v.ID, v.UserID)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ListVideos(before %d, limit %d) = %v; want %v", tt.before, tt.limit, got, tt.want)
			}
		}
		if vs, err := s.ListVideos(ctx, "nobody", 0, 10); err != nil || len(vs) != 0 {
			t.Errorf("ListVideos(nobody) = %v, %v; want none", vs, err)
		}
		if _, err := s.ListVideos(ctx, "u1", 0, 0); err == nil {
			t.Errorf("ListVideos(limit 0) = nil error; want an error")
		}
	})
}

// TestTimesRoundTrip checks that a time read back equals, with ==, the one
// written, on both databases: UTC, whole microseconds.
func TestTimesRoundTrip(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		ctx := t.Context()
		mustUser(t, s, "u1", 1000)
		created := mustVideo(t, s, "u1")
		ev := mustAppend(t, s, created.ID, step(1))

		read := []func() (stephub.Video, error){
			func() (stephub.Video, error) { return s.Video(ctx, created.ID) },
			func() (stephub.Video, error) { return s.UserVideo(ctx, "u1", created.ID) },
			func() (stephub.Video, error) {
				vs, err := s.ListVideos(ctx, "u1", 0, 1)
				if err != nil || len(vs) != 1 {
					return stephub.Video{}, errors.Join(err, errors.New("no video listed"))
				}
				return vs[0], nil
			},
		}
		for i, r := range read {
			got, err := r()
			if err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
			if got.CreatedAt != created.CreatedAt || got.UpdatedAt != ev.At {
				t.Errorf("read %d: CreatedAt %v, UpdatedAt %v; want %v and %v",
					i, got.CreatedAt, got.UpdatedAt, created.CreatedAt, ev.At)
			}
		}
	})
}
