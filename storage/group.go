package storage

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// maxGroup bounds how many writes share one SQLite commit, and so how long
// the first of them waits for the others to run.
const maxGroup = 64

// groupCommit runs the write transactions of a SQLite Store. SQLite has one
// writer, and every commit waits for the disk: one at a time, commits would
// queue behind each other's syncs under load. Instead, the writes that
// arrive while a commit is under way wait together and share the next one.
// Each runs under a savepoint of that transaction, so a write that fails is
// undone alone, and none returns before the commit that holds it is on disk.
type groupCommit struct {
	db    *sqlx.DB
	turns turns[*write]
}

func newGroupCommit(db *sqlx.DB) *groupCommit {
	g := &groupCommit{db: db}
	g.turns = turns[*write]{max: maxGroup, run: g.commit}
	return g
}

// write is one caller's transaction, waiting for its group.
type write struct {
	ctx context.Context
	fn  func(context.Context, *sqlx.Tx) error
	// panicked is what fn panicked with, if it did: the group goes on
	// without it, and the panic is raised again in the caller's goroutine.
	panicked any
}

// do runs fn in a transaction shared with other writes and returns once
// that transaction is committed or rolled back. A write whose ctx ends while
// it waits for its turn leaves without running; once its group runs, fn
// gets ctx without its cancellation, so that one caller going away cannot
// interrupt a transaction that others share.
func (g *groupCommit) do(ctx context.Context, fn func(context.Context, *sqlx.Tx) error) error {
	w := &write{ctx: ctx, fn: fn}
	err := g.turns.do(ctx, w)
	if w.panicked != nil {
		panic(w.panicked)
	}
	return err
}

// commit runs the writes of group in one transaction and returns each one's
// error. If the transaction itself fails, every write that had not failed on
// its own gets that failure, since none of it was kept.
func (g *groupCommit) commit(group []*write) []error {
	errs := make([]error, len(group))
	fail := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	// Not any one writer's context: its end would roll back all of them.
	tx, err := g.db.BeginTxx(context.Background(), nil)
	if err != nil {
		return fail(fmt.Errorf("begin transaction: %w", err))
	}
	defer tx.Rollback()
	for i, w := range group {
		if len(group) == 1 {
			// Alone, a write needs no savepoint: if it fails, the deferred
			// Rollback undoes the whole transaction.
			if errs[i] = w.run(tx); errs[i] != nil {
				return errs
			}
			continue
		}
		if _, err := tx.Exec("SAVEPOINT write"); err != nil {
			return fail(fmt.Errorf("begin a write: %w", err))
		}
		errs[i] = w.run(tx)
		if errs[i] != nil {
			if _, err := tx.Exec("ROLLBACK TO write"); err != nil {
				// SQLite rolls some errors back whole, savepoints and all.
				return fail(fmt.Errorf("a write failed (%w) and could not be undone alone: %w", errs[i], err))
			}
		}
		if _, err := tx.Exec("RELEASE write"); err != nil {
			return fail(fmt.Errorf("end a write: %w", err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	return errs
}

// run calls w's fn in tx. A panic becomes the write's error here, so that
// the group still ends and the turn passes on, and is kept to be raised
// again by the caller.
func (w *write) run(tx *sqlx.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.panicked = p
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	return w.fn(context.WithoutCancel(w.ctx), tx)
}
