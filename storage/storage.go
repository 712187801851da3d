// Package storage keeps stephub's users, videos and their events in SQL: the
// embedded SQLite (modernc.org/sqlite) for one node, or PostgreSQL (lib/pq)
// shared by many. Every change that touches more than one row runs in one
// transaction, so credits, a video's state and its events never disagree.
//
// Queries are written once, with ? placeholders, and go through sqlx's Rebind;
// the few places where the dialects differ are methods of Store (see
// forUpdate).
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stephub/stephub"
	"modernc.org/sqlite"
)

// The dialects a Store can speak, as Dialect reports them.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// sqliteBusyTimeout is how long a SQLite writer waits for the database's one
// write lock before failing with SQLITE_BUSY. Writers hold it for a few
// milliseconds, so only a stuck process makes anyone wait this long.
const sqliteBusyTimeout = 10 * time.Second

// Store is the database of stephub. It is safe for concurrent use by multiple
// goroutines and processes: writers that touch the same rows serialize (on
// SQLite through immediate transactions, on PostgreSQL through row locks),
// so concurrent calls never lose an update nor spend the same credits twice.
type Store struct {
	db      *sqlx.DB
	dialect string
	lease   time.Duration
	// group, on SQLite, runs the write transactions: writes that arrive
	// together share one commit, and wait for it here rather than in
	// SQLite's busy handler, which sleeps up to 100 ms between tries.
	group *groupCommit
	// recent spares reading the video of each event: AppendEvent's on
	// PostgreSQL, and ForecastPost's on both.
	recent *recentVideos
	// batch, on PostgreSQL, stores several events to a statement.
	batch *eventBatch
}

// Open connects to the database named by rawURL and checks that it answers.
//
// sqlite://PATH[?PARAMS] opens the SQLite file PATH (sqlite:///var/lib/x.db is
// absolute, sqlite://./data/x.db relative to the working directory), creating
// its folder if needed. PARAMS are modernc.org/sqlite DSN parameters; extra
// _pragma values are applied, but journal mode, foreign keys, the transaction
// lock and the time format are fixed, because the Store's guarantees rely on
// them. An in-memory database is refused: every pooled connection would see
// a different, empty one.
//
// postgres:// and postgresql:// URLs open PostgreSQL through lib/pq.
//
// Open does not create the schema; call Migrate.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, errors.New("open database: the url has no scheme: want sqlite://PATH or postgres://…")
	}
	o := options{lease: DefaultLease}
	for _, opt := range opts {
		opt(&o)
	}
	var (
		s   *Store
		err error
	)
	switch strings.ToLower(scheme) {
	case "sqlite":
		s, err = openSQLite(rest, o.existing)
	case "postgres", "postgresql":
		s, err = openPostgres(rawURL)
	default:
		// Only the scheme is echoed: the rest may hold a password.
		return nil, fmt.Errorf("open database: unsupported scheme %q: want sqlite://PATH or postgres://…", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open database: %w%s", err, missingDatabaseHint(rawURL, err))
	}
	s.lease = o.lease
	return s, nil
}

// DefaultLease is how long a video stays with whoever runs it without a
// new event, unless WithLease says otherwise.
const DefaultLease = 30 * time.Second

// Option tunes Open.
type Option func(*options)

type options struct {
	lease    time.Duration
	existing bool
}

// WithLease sets how long each event keeps a video leased to whoever
// posted it.
func WithLease(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lease = d
		}
	}
}

// Existing makes Open fail, rather than create an empty database, when the
// SQLite file does not exist: for tools that only read one, such as a
// backup.
func Existing() Option {
	return func(o *options) { o.existing = true }
}

func openSQLite(rest string, existing bool) (*Store, error) {
	path, dsn, err := sqliteDSN(rest)
	if err != nil {
		return nil, err
	}
	if existing {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("sqlite database: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create the database folder: %w", err)
	}
	db := sql.OpenDB(cachingConnector{dsnConnector{dsn: dsn, drv: &sqlite.Driver{}}})
	// Readers share the file freely under WAL; writers queue on the write
	// lock whatever the pool size, so a handful of connections is plenty.
	// Idle connections are kept: each new one re-runs the pragmas.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	// The driver registers as "sqlite", a name sqlx does not know; "sqlite3"
	// gives it the ? bind type without touching sqlx's global registry.
	sdb := sqlx.NewDb(db, "sqlite3")
	return &Store{db: sdb, dialect: DialectSQLite, group: newGroupCommit(sdb), recent: &recentVideos{}}, nil
}

// sqliteDSN reads what follows sqlite:// into the file's path and the
// driver's DSN, with the settings the Store relies on fixed whatever the
// URL says.
func sqliteDSN(rest string) (path, dsn string, err error) {
	path, rawQuery, _ := strings.Cut(rest, "?")
	if path == "" {
		return "", "", errors.New("sqlite url has no file path: want sqlite://PATH")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return "", "", fmt.Errorf("sqlite path %q is not supported: use a plain file path (each pooled connection to an in-memory database sees its own empty database)", path)
	}
	params, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", "", fmt.Errorf("sqlite url parameters: %w", err)
	}

	// WAL lets readers run beside the one writer. Immediate transactions take
	// the write lock at BEGIN rather than at the first write, so two writers
	// queue in the busy handler instead of one failing with SQLITE_BUSY after
	// both have read (the read-then-write shape of every transaction here).
	// Times are written as "2006-01-02 15:04:05.999999999-07:00" text in UTC,
	// which the driver parses back into time.Time for TIMESTAMP columns.
	pragmas := params["_pragma"]
	if !hasPragma(pragmas, "busy_timeout") {
		pragmas = append(pragmas, fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	}
	pragmas = append(pragmas, "foreign_keys(1)", "journal_mode(WAL)")
	params["_pragma"] = pragmas
	params.Set("_txlock", "immediate")
	params.Set("_time_format", "sqlite")
	params.Set("_timezone", "UTC")
	return path, path + "?" + params.Encode(), nil
}

// hasPragma reports whether one of the _pragma values sets name.
func hasPragma(pragmas []string, name string) bool {
	for _, p := range pragmas {
		p = strings.ToLower(strings.TrimSpace(p))
		if strings.HasPrefix(p, name+"(") || strings.HasPrefix(p, name+"=") || strings.HasPrefix(p, name+" ") {
			return true
		}
	}
	return false
}

// missingDatabaseHint tells what to do when err says that the PostgreSQL
// server of rawURL has no such database: stephub creates its tables, not
// its database. It is empty for any other error.
func missingDatabaseHint(rawURL string, err error) string {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "3D000" { // invalid_catalog_name
		return ""
	}
	u, perr := url.Parse(rawURL)
	if perr != nil {
		return ""
	}
	args := []string{"createdb"}
	if h := u.Hostname(); h != "" {
		args = append(args, "-h", h)
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	if n := u.User.Username(); n != "" {
		args = append(args, "-U", n)
	}
	args = append(args, strings.TrimPrefix(u.Path, "/"))
	return "; create it first (" + strings.Join(args, " ") + "), then start stephub again: it creates the tables itself"
}

// postgresConns is the size of a node's PostgreSQL connection pool.
const postgresConns = 20

func openPostgres(rawURL string) (*Store, error) {
	connector, err := pq.NewConnector(rawURL)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(cachingConnector{connector})
	// As many kept idle as may be open: under a burst, a connection closed
	// for want of an idle slot is a new PostgreSQL backend moments later.
	// Idle ones are let go after a while instead, which also lets a load
	// balancer or a PostgreSQL failover move connections without the pool
	// holding on to dead ones for long.
	db.SetMaxOpenConns(postgresConns)
	db.SetMaxIdleConns(postgresConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	sdb := sqlx.NewDb(db, "postgres")
	return &Store{db: sdb, dialect: DialectPostgres,
		recent: &recentVideos{}, batch: newEventBatch(sdb)}, nil
}

// Close closes the database. Calls already running finish first.
func (s *Store) Close() error {
	return s.db.Close()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, err)
	}
	return nil
}

// Dialect returns DialectSQLite or DialectPostgres.
func (s *Store) Dialect() string {
	return s.dialect
}

// forUpdate is what a SELECT that reads a row it will then change must end
// with. PostgreSQL needs FOR UPDATE so that concurrent writers of the row
// queue behind the first; SQLite has no row locks and no FOR UPDATE, and
// needs none: its immediate transactions hold the whole database's write lock
// from BEGIN.
func (s *Store) forUpdate() string {
	if s.dialect == DialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// skipLocked is forUpdate for a queue: on PostgreSQL, concurrent claimers
// pass over the rows another one has locked instead of waiting for them.
// SQLite's single writer already makes each claim see the previous one.
func (s *Store) skipLocked() string {
	if s.dialect == DialectPostgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// inTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise. fn must use the context it is given. On SQLite, the
// transaction is shared with the writes that wait beside it (see
// groupCommit), and fn's changes are undone alone if it fails.
func (s *Store) inTx(ctx context.Context, fn func(context.Context, *sqlx.Tx) error) error {
	if s.group != nil {
		return s.group.do(ctx, fn)
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// After a commit this is a no-op; after an error, the error that made
	// us roll back is the one worth reporting.
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// get runs a ?-placeholder query on q and scans its one row into dest,
// turning sql.ErrNoRows into stephub.ErrNotFound.
func get(ctx context.Context, q sqlx.ExtContext, dest any, query string, args ...any) error {
	err := sqlx.GetContext(ctx, q, dest, q.Rebind(query), args...)
	if errors.Is(err, sql.ErrNoRows) {
		return stephub.ErrNotFound
	}
	return err
}

// selectAll runs a ?-placeholder query on q and scans every row into dest, a
// pointer to a slice.
func selectAll(ctx context.Context, q sqlx.ExtContext, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, q, dest, q.Rebind(query), args...)
}

// exec runs a ?-placeholder statement on q and returns how many rows it
// changed.
func exec(ctx context.Context, q sqlx.ExtContext, query string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, q.Rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// now is the time the Store writes: UTC, cut to the microsecond that
// PostgreSQL keeps, so a time reads back equal to what was written on both
// databases.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}
