package storage

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

// migrationFiles holds one folder per dialect of NNN_name.sql files, applied
// in the order of NNN. A file, once released, is never edited: changes go in
// a new file.
//
//go:embed migrations
var migrationFiles embed.FS

// migrateLockKey is the PostgreSQL advisory lock that serializes stephub
// processes migrating the same database ("stephub" in ASCII).
const migrateLockKey = 0x73746570687562

// migration is one schema change.
type migration struct {
	version int64
	name    string
	sql     string
}

// Migrate brings the schema up to date. It is safe to run any number of
// times, from any number of processes at once: each migration runs in its
// own transaction, is recorded in schema_migrations, and is skipped once
// recorded.
func (s *Store) Migrate(ctx context.Context) error {
	migrations, err := loadMigrations(s.dialect)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range migrations {
		if err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error { return s.apply(ctx, tx, m) }); err != nil {
			return fmt.Errorf("migrate: %03d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}

// apply runs m in tx unless schema_migrations says it already ran.
func (s *Store) apply(ctx context.Context, tx *sqlx.Tx, m migration) error {
	if s.dialect == DialectPostgres {
		// Without it, two processes would both see the version missing and
		// both apply it; even CREATE TABLE IF NOT EXISTS can fail when
		// raced. On SQLite the immediate transaction already excludes every
		// other writer. The lock ends with the transaction.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLockKey)); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMP NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var applied int
	if err := get(ctx, tx, &applied, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	if applied > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := exec(ctx, tx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.version, m.name, now()); err != nil {
		return fmt.Errorf("record the migration: %w", err)
	}
	return nil
}

// loadMigrations returns the migrations of dialect, in the order to apply.
func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok || e.IsDir() {
			continue
		}
		num, label, _ := strings.Cut(name, "_")
		version, err := strconv.ParseInt(num, 10, 64)
		if err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: the name must start with a positive number, as in 001_init.sql", e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: label, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("two migrations have version %d", out[i].version)
		}
	}
	return out, nil
}
