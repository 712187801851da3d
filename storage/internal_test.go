package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/internal/testdb"
)

// TestStatementCache runs queries on one connection of each database: a
// statement with arguments is prepared once and reused; the same statement
// run again while its rows are still open runs uncached, and right; a
// script of several statements without arguments runs whole.
func TestStatementCache(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cached := func() map[string]*cachedStmt {
			var stmts map[string]*cachedStmt
			conn.Raw(func(dc any) error {
				stmts = dc.(*cachingConn).stmts
				return nil
			})
			return stmts
		}

		if _, err := conn.ExecContext(ctx, "CREATE TABLE t (n INTEGER); CREATE TABLE u (n INTEGER)"); err != nil {
			t.Fatalf("a script of two statements: %v", err)
		}
		insert := s.db.Rebind("INSERT INTO u (n) VALUES (?)")
		for n := range 3 {
			if _, err := conn.ExecContext(ctx, insert, n); err != nil {
				t.Fatal(err)
			}
		}
		if got := cached(); len(got) != 1 || got[insert] == nil {
			t.Fatalf("cache after three inserts: %v; want the insert alone", got)
		}
		first := cached()[insert]

		query := s.db.Rebind("SELECT n FROM u WHERE n >= ? ORDER BY n")
		rows, err := conn.QueryContext(ctx, query, 0)
		if err != nil {
			t.Fatal(err)
		}
		var outer, inner []int
		for rows.Next() {
			var n int
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			outer = append(outer, n)
			if n == 0 && s.Dialect() == DialectSQLite {
				// SQLite runs a second statement beside open rows:
				// the same one, uncached while the first is busy.
				inner = readInts(t, conn, query, 1)
			}
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		if len(outer) != 3 || outer[2] != 2 {
			t.Errorf("outer query: %v; want [0 1 2]", outer)
		}
		if s.Dialect() == DialectSQLite && (len(inner) != 2 || inner[0] != 1) {
			t.Errorf("the same query inside it: %v; want [1 2]", inner)
		}
		if got := readInts(t, conn, query, 2); len(got) != 1 || got[0] != 2 {
			t.Errorf("the query again, after its rows closed: %v; want [2]", got)
		}
		if got := cached(); len(got) != 2 || got[insert] != first {
			t.Errorf("cache: %d statements, insert reused %v; want 2, true", len(got), got[insert] == first)
		}
	})
}

func readInts(t *testing.T, conn *sql.Conn, query string, arg any) []int {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), query, arg)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openMigrated opens the database at url, migrated, for the test.
func openMigrated(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// holdWriter runs a SQLite write that keeps the write turn until the
// returned release is called, and waits for it to start; release returns
// the write's error.
func holdWriter(t *testing.T, s *Store) (release func() error) {
	t.Helper()
	held, hold, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.inTx(context.Background(), func(context.Context, *sqlx.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	return func() error {
		close(hold)
		return <-done
	}
}

// waitQueued waits until n writes wait for the SQLite write turn, which
// a write holds.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	waitTurns(t, &s.group.turns, n, true)
}

// TestSQLiteWriterWaitEndsWithContext holds SQLite's write turn: a write
// that waits for it gives up when its context ends, having written nothing.
func TestSQLiteWriterWaitEndsWithContext(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t, testdb.SQLite(t))
	release := holdWriter(t, s)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := s.EnsureUser(short, "waiting", "", 100)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("EnsureUser while another writes = %v; want context.DeadlineExceeded", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.User(ctx, "waiting"); !errors.Is(err, stephub.ErrNotFound) {
		t.Errorf("User after the refused write = %v; want ErrNotFound", err)
	}
	if _, err := s.EnsureUser(ctx, "waiting", "", 100); err != nil {
		t.Errorf("EnsureUser once the turn is free: %v", err)
	}
}

// TestSQLiteWritesShareACommit queues four writes behind a held write
// turn. They run in one transaction: the second sees the first's user
// before it is committed, which another connection does not. The second
// fails and the third panics: only their own users are undone, the panic
// reaches the third's caller, and the others' users are kept. A failing
// write alone is undone too.
func TestSQLiteWritesShareACommit(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t, testdb.SQLite(t))
	release := holdWriter(t, s)

	errs := make([]error, 4)
	var wg sync.WaitGroup
	wg.Go(func() { _, errs[0] = s.EnsureUser(ctx, "first", "", 100) })
	waitQueued(t, s, 1)
	refused := errors.New("refused")
	wg.Go(func() {
		errs[1] = s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
			var credits int64
			if err := get(ctx, tx, &credits, "SELECT credits FROM users WHERE id = ?", "first"); err != nil {
				return fmt.Errorf("the first write, inside the transaction: %w", err)
			}
			if _, err := s.User(ctx, "first"); !errors.Is(err, stephub.ErrNotFound) {
				return fmt.Errorf("the first write, from another connection before the commit: %v; want ErrNotFound", err)
			}
			if err := insertUser(ctx, tx, "second", "", 100, now()); err != nil {
				return err
			}
			return refused
		})
	})
	waitQueued(t, s, 2)
	var panicked any
	wg.Go(func() {
		defer func() { panicked = recover() }()
		errs[2] = s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
			if err := insertUser(ctx, tx, "panicking", "", 100, now()); err != nil {
				return err
			}
			panic("a bug")
		})
	})
	waitQueued(t, s, 3)
	wg.Go(func() { _, errs[3] = s.EnsureUser(ctx, "fourth", "", 100) })
	waitQueued(t, s, 4)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	if errs[0] != nil || errs[3] != nil {
		t.Fatalf("the writes beside the failed ones: %v, %v", errs[0], errs[3])
	}
	if !errors.Is(errs[1], refused) {
		t.Fatalf("the failing write = %v; want its own error", errs[1])
	}
	if panicked != "a bug" {
		t.Fatalf("the panicking write's caller recovered %v; want its panic", panicked)
	}
	for id, want := range map[string]bool{"first": true, "second": false, "panicking": false, "fourth": true} {
		_, err := s.User(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("user %q stored = %t (%v); want %t", id, got, err, want)
		}
	}
	if _, err := s.EnsureUser(ctx, "after", "", 100); err != nil {
		t.Errorf("a write after the group: %v", err)
	}

	// A write alone runs without a savepoint: failing, it is undone whole.
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if err := insertUser(ctx, tx, "alone", "", 100, now()); err != nil {
			return err
		}
		return refused
	})
	if !errors.Is(err, refused) {
		t.Errorf("a failing write alone = %v; want its own error", err)
	}
	if _, err := s.User(ctx, "alone"); !errors.Is(err, stephub.ErrNotFound) {
		t.Errorf("user of the failed lone write: %v; want ErrNotFound", err)
	}
}

// TestSQLiteWriteQueueDrains queues more writes than one commit takes,
// some of which give up while they wait: every other write is stored, and
// the turn passes on until none is left.
func TestSQLiteWriteQueueDrains(t *testing.T) {
	ctx := context.Background()
	s := openMigrated(t, testdb.SQLite(t))
	release := holdWriter(t, s)

	const writes = 3*maxGroup + 7
	cancelled, cancel := context.WithCancel(ctx)
	errs := make([]error, writes)
	var wg sync.WaitGroup
	for i := range writes {
		wctx := ctx
		if i%10 == 0 {
			wctx = cancelled
		}
		wg.Go(func() { _, errs[i] = s.EnsureUser(wctx, fmt.Sprintf("user-%d", i), "", 1) })
	}
	waitQueued(t, s, writes)
	cancel()
	waitQueued(t, s, writes-(writes+9)/10)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	for i, err := range errs {
		_, stored := s.User(ctx, fmt.Sprintf("user-%d", i))
		switch {
		case i%10 == 0 && (!errors.Is(err, context.Canceled) || stored == nil):
			t.Errorf("write %d, cancelled while waiting: %v (stored: %t); want context.Canceled, nothing stored", i, err, stored == nil)
		case i%10 != 0 && (err != nil || stored != nil):
			t.Errorf("write %d: %v; read back: %v", i, err, stored)
		}
	}
	s.group.turns.mu.Lock()
	defer s.group.turns.mu.Unlock()
	if s.group.turns.running || len(s.group.turns.queue) > 0 {
		t.Errorf("after the last write: running %t, %d queued; want idle", s.group.turns.running, len(s.group.turns.queue))
	}
}

// mustAnn makes user ann on s, with credits for a few videos.
func mustAnn(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.EnsureUser(t.Context(), "ann", "ann@example.com", 1000); err != nil {
		t.Fatal(err)
	}
}

// annsVideo makes user ann on s if need be, and a new video of hers.
func annsVideo(t *testing.T, s *Store) stephub.Video {
	t.Helper()
	mustAnn(t, s)
	v, err := s.CreateVideo(t.Context(), "ann", stephub.Video{Prompt: "p", Model: "m", Cost: stephub.GenerateCost})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAppendIfUnchanged checks PostgreSQL's one-statement append against a
// video read before it changed: every change that the event would depend
// on makes it write nothing, and so do the cases it leaves to the locking
// way.
func TestAppendIfUnchanged(t *testing.T) {
	ctx := t.Context()
	s := openMigrated(t, testdb.Postgres(t))
	read := func(id int64) stephub.Video {
		v, err := videoByID(ctx, s.db, id)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	step := func(n int) stephub.Step {
		return stephub.Step{Step: n, Progress: 10 * n, Message: fmt.Sprint("step ", n)}
	}
	mustAppend := func(id int64, st stephub.Step) Appended {
		a, err := s.AppendEvent(ctx, id, st)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// refused appends v's next event from a copy read before change ran,
	// and checks that it wrote nothing.
	refused := func(name string, v stephub.Video, st stephub.Step, change func()) {
		t.Helper()
		change()
		before := read(v.ID)
		if _, err := s.appendIfUnchanged(ctx, v, st); !errors.Is(err, errVideoMoved) {
			t.Errorf("%s: appendIfUnchanged = %v, want errVideoMoved", name, err)
		}
		if after := read(v.ID); !reflect.DeepEqual(after, before) {
			t.Errorf("%s: the video changed from %+v to %+v", name, before, after)
		}
		events, err := s.EventsAfter(ctx, v.ID, before.LastSeq)
		if err != nil || len(events) > 0 {
			t.Errorf("%s: events stored after %d: %d, %v", name, before.LastSeq, len(events), err)
		}
	}

	v := annsVideo(t, s)
	lease := mustAppend(v.ID, step(1)).LeaseToken
	stale := read(v.ID)
	refused("another event", stale, step(3), func() { mustAppend(v.ID, step(2)) })

	fresh := read(v.ID)
	w, err := s.appendIfUnchanged(ctx, fresh, step(3))
	if err != nil || w.event.ID != fresh.LastSeq+1 || read(v.ID).LastSeq != w.event.ID {
		t.Fatalf("appendIfUnchanged on the video as it is = %+v, %v", w.event, err)
	}
	if after := read(v.ID); !reflect.DeepEqual(w.after(), after) {
		t.Errorf("after() = %+v, want the video as stored: %+v", w.after(), after)
	}

	// A video given back to the queue, then claimed again, between a read
	// and a write: same step and sequence, another status and attempts.
	release := func() {
		if err := s.ReleaseLease(ctx, v.ID, lease); err != nil {
			t.Fatal(err)
		}
	}
	claim := func() {
		l, err := s.Claim(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		lease = l.Token
	}
	refused("a release", read(v.ID), step(4), release)
	refused("a claim", read(v.ID), step(4), claim)
	// Both at once leave the row as it was but for the lease: a runner
	// that read the video under a lost lease must not write either.
	refused("another lease", read(v.ID), step(4), func() { release(); claim() })
	// A lease lost, or held against a step without its token, is left to
	// the locking way.
	lost := step(4)
	lost.LeaseToken = "lost"
	refused("a lost lease", read(v.ID), lost, func() {})
	withLease := func(st stephub.Step) stephub.Step {
		st.LeaseToken = lease
		return st
	}
	mustAppend(v.ID, withLease(step(4)))
	refused("a held lease", read(v.ID), step(5), func() {})

	keyed := withLease(step(5))
	keyed.IdempotencyKey = "k5"
	mustAppend(v.ID, keyed)
	again := withLease(step(6))
	again.IdempotencyKey = "k5"
	refused("a stored key", read(v.ID), again, func() {})
	refused("a refund", read(v.ID), withLease(stephub.Step{Step: 6, Progress: 60, Status: stephub.StatusFailed}), func() {})
	refused("going backwards", read(v.ID), withLease(step(2)), func() {})
}

// TestAppendEventRemembersVideos: on PostgreSQL a store remembers the
// videos it created, claimed or wrote, and an entry made stale by another node costs nothing
// but the fast way.
func TestAppendEventRemembersVideos(t *testing.T) {
	ctx := t.Context()
	url := testdb.Postgres(t)
	s, other := openMigrated(t, url), openMigrated(t, url)
	v := annsVideo(t, s)
	appendStep := func(s *Store, st stephub.Step) stephub.Event {
		t.Helper()
		a, err := s.AppendEvent(ctx, v.ID, st)
		if err != nil {
			t.Fatalf("AppendEvent(step %d): %v", st.Step, err)
		}
		return a.Event
	}
	remembered := func() (stephub.Video, bool) { return s.recent.get(v.ID) }

	if r, ok := remembered(); !ok || r.Status != stephub.StatusPending || r.LastSeq != 0 {
		t.Fatalf("after creating the video the store remembers %+v, %t", r, ok)
	}
	if _, err := s.Claim(ctx, false); err != nil {
		t.Fatal(err)
	}
	if r, ok := remembered(); !ok || r.Status != stephub.StatusProcessing || r.Attempts != 1 {
		t.Fatalf("after claiming the video the store remembers %+v, %t", r, ok)
	}
	appendStep(s, stephub.Step{Step: 1, Progress: 10})
	if r, ok := remembered(); !ok || r.LastSeq != 1 || r.Step != 1 {
		t.Fatalf("after the first event the store remembers %+v, %t", r, ok)
	}
	appendStep(other, stephub.Step{Step: 2, Progress: 20})
	// s's entry is stale: its next event still comes after other's.
	if ev := appendStep(s, stephub.Step{Step: 3, Progress: 30}); ev.ID != 3 {
		t.Fatalf("after another node's event, the event got id %d, want 3", ev.ID)
	}
	// The locking way that wrote it leaves the store remembering the video
	// as it is now, not the stale entry.
	if r, ok := remembered(); !ok || r.LastSeq != 3 || r.Step != 3 {
		t.Errorf("after writing past a stale entry the store remembers %+v, %t; want the video at event 3", r, ok)
	}
	appendStep(s, stephub.Step{Step: 4, Progress: 40})
	if r, ok := remembered(); !ok || r.LastSeq != 4 {
		t.Errorf("the store remembers %+v, %t; want the video at event 4", r, ok)
	}
	appendStep(s, stephub.Step{Step: stephub.TotalSteps + 1, Progress: 100, Status: stephub.StatusCompleted})
	if _, ok := remembered(); ok {
		t.Error("a finished video is still remembered")
	}
	events, err := s.EventsAfter(ctx, v.ID, 0)
	if err != nil || len(events) != 5 {
		t.Fatalf("EventsAfter = %d events, %v; want 5", len(events), err)
	}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d", i, e.Seq)
		}
	}
}

// TestQueriesUseTheirIndexes: among many finished videos, the generic plans
// that prepared statements come to use for claiming and for expiring
// leases go through videos_unfinished_idx, not the whole table, and a batch
// of events finds its videos by their primary key.
func TestQueriesUseTheirIndexes(t *testing.T) {
	ctx := t.Context()
	s := openMigrated(t, testdb.Postgres(t))
	mustAnn(t, s)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO videos (user_id, status, prompt, model, cost, created_at, updated_at, lease_expires_at)
		SELECT 'ann', CASE WHEN i % 500 = 0 THEN 'pending' WHEN i % 500 = 1 THEN 'processing' ELSE 'completed' END,
		       'p', 'm', 1, now(), now(), CASE WHEN i % 500 = 1 THEN now() END
		FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	conn, err := s.db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"ANALYZE videos", "SET plan_cache_mode = force_generic_plan"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for name, q := range map[string]string{
		"claim":  "PREPARE claim AS " + pendingQuery + s.skipLocked(),
		"expiry": "PREPARE expiry(timestamptz, int) AS " + s.db.Rebind(expiredQuery),
		"batch":  "PREPARE batch AS " + s.db.Rebind(batchInsert),
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name, q := range map[string]struct{ explain, index string }{
		"claim":  {"EXPLAIN EXECUTE claim", "videos_unfinished_idx"},
		"expiry": {"EXPLAIN EXECUTE expiry(now(), 100)", "videos_unfinished_idx"},
		"batch":  {"EXPLAIN EXECUTE batch(" + strings.Repeat("NULL, ", len(new(batchColumns).args())-1) + "NULL)", "videos_pkey"},
	} {
		var plan []string
		if err := conn.SelectContext(ctx, &plan, q.explain); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if text := strings.Join(plan, "\n"); !strings.Contains(text, q.index) || strings.Contains(text, "Seq Scan on videos") {
			t.Errorf("the %s query's generic plan does not use %s:\n%s", name, q.index, text)
		}
	}
}

// TestEventBatch writes PostgreSQL batches of events worked out from
// videos as read: each event is stored, with its video moved to it exactly
// as after() says, or left out with nothing written, alone in its batch.
func TestEventBatch(t *testing.T) {
	ctx := t.Context()
	s := openMigrated(t, testdb.Postgres(t))
	read := func(id int64) stephub.Video {
		t.Helper()
		v, err := videoByID(ctx, s.db, id)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	started := func(n int) stephub.Video {
		t.Helper()
		v := annsVideo(t, s)
		for i := 1; i <= n; i++ {
			if _, err := s.AppendEvent(ctx, v.ID, stephub.Step{Step: i, Progress: i, IdempotencyKey: fmt.Sprint("k", i)}); err != nil {
				t.Fatal(err)
			}
		}
		return read(v.ID)
	}
	next := func(v stephub.Video, st stephub.Step) eventWrite {
		t.Helper()
		w, err := s.nextEvent(v, st)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	// check compares the outcome of e with want (nil: stored) and the
	// database with it.
	check := func(name string, w eventWrite, got, want error, before stephub.Video) {
		t.Helper()
		if !errors.Is(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
		after := read(w.video.ID)
		events, err := s.EventsAfter(ctx, after.ID, before.LastSeq)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case want != nil && (!reflect.DeepEqual(after, before) || len(events) > 0):
			t.Errorf("%s: refused, yet the video went from %+v to %+v with %d events", name, before, after, len(events))
		case want == nil && !reflect.DeepEqual(after, w.after()):
			t.Errorf("%s: the video is %+v, want %+v", name, after, w.after())
		case want == nil && (len(events) != 1 || string(events[0].Data) != string(w.payload)):
			t.Errorf("%s: %d events stored, want its payload %s", name, len(events), w.payload)
		}
	}

	pending, inStep, stale, twice, keyed, ending := annsVideo(t, s), started(1), started(1), started(2), started(3), started(2)
	url, failure := "https://cdn.example/v.mp4", "no"
	batch := []eventWrite{
		next(pending, stephub.Step{Step: 1, Progress: 5, Message: "claims it"}),
		next(inStep, stephub.Step{Step: 1, Progress: 9, IdempotencyKey: "new", Data: []byte(`{"a":1}`)}),
		next(stale, stephub.Step{Step: 3, Progress: 30}),
		next(twice, stephub.Step{Step: 3, Progress: 30}),
		next(twice, stephub.Step{Step: 4, Progress: 40}),
		next(keyed, stephub.Step{Step: 4, Progress: 40, IdempotencyKey: "k3"}),
		next(ending, stephub.Step{Step: stephub.TotalSteps + 1, Progress: 100, Status: stephub.StatusCompleted, VideoURL: &url, Error: &failure}),
	}
	if _, err := s.AppendEvent(ctx, stale.ID, stephub.Step{Step: 2, Progress: 20}); err != nil {
		t.Fatal(err)
	}
	stale = read(stale.ID)
	errs := s.batch.write(batch)

	check("a claim", batch[0], errs[0], nil, pending)
	check("same step, with data and a key", batch[1], errs[1], nil, inStep)
	check("a stale read", batch[2], errs[2], errVideoMoved, stale)
	if (errs[3] == nil) == (errs[4] == nil) {
		t.Errorf("two events from one read: %v and %v, want one stored", errs[3], errs[4])
	}
	if errs[3] == nil {
		check("the first of two", batch[3], errs[3], nil, twice)
	} else {
		check("the second of two", batch[4], errs[4], nil, twice)
	}
	check("a stored key", batch[5], errs[5], errVideoMoved, keyed)
	check("the end, with a URL and an error", batch[6], errs[6], nil, ending)

	// An event whose insert fails fails its statement: the others are
	// stored all the same, each alone.
	clash, fine := started(1), started(1)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO events (video_id, seq, payload, created_at) VALUES ($1, 2, '{}', now())`, clash.ID); err != nil {
		t.Fatal(err)
	}
	batch = []eventWrite{next(fine, stephub.Step{Step: 2, Progress: 20}), next(clash, stephub.Step{Step: 2, Progress: 20})}
	errs = s.batch.write(batch)
	check("beside a clash", batch[0], errs[0], nil, fine)
	if !errors.Is(errs[1], errVideoMoved) || !reflect.DeepEqual(read(clash.ID), clash) {
		t.Errorf("the clash: %v, video %+v; want errVideoMoved, the video unchanged", errs[1], read(clash.ID))
	}
}
