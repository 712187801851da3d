// Package testdb gives tests real databases, so that storage code is tested
// against the engines it runs on rather than against mocks: a fresh
// PostgreSQL database per call, dropped when the test ends, and a SQLite file
// in the test's temporary folder.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lib/pq"
)

// PostgresEnv names the environment variable that overrides
// DefaultPostgresAdminURL.
const PostgresEnv = "STEPHUB_TEST_POSTGRES"

// DefaultPostgresAdminURL is the server Postgres creates its databases on: a
// local PostgreSQL with trust authentication. The user must be allowed to
// create and drop databases.
const DefaultPostgresAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Postgres creates an empty database on the PostgreSQL server named by
// $STEPHUB_TEST_POSTGRES (DefaultPostgresAdminURL when unset) and returns its
// URL; the database is dropped when tb ends. If the server cannot be reached
// the test fails: a suite that skipped its PostgreSQL half would pass while
// testing half of what ships.
func Postgres(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		admin = DefaultPostgresAdminURL
	}
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("testdb: $%s is not a URL: %v", PostgresEnv, err)
	}
	db, err := sql.Open("postgres", admin)
	if err != nil {
		tb.Fatalf("testdb: open PostgreSQL at %s: %v", u.Redacted(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		tb.Fatalf("testdb: PostgreSQL at %s cannot be reached: %v\n"+
			"The storage tests need a real PostgreSQL: start the local one "+
			"(pg_ctlcluster --skip-systemctl-redirect <version> main start) "+
			"or set $%s to the URL of a server where this user may create databases.",
			u.Redacted(), err, PostgresEnv)
	}

	name := "stephub_test_" + randomHex(tb, 8)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		db.Close()
		tb.Fatalf("testdb: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		defer db.Close()
		// The test's context is already cancelled by now; the drop gets its
		// own. FORCE ends connections a leaky test left open.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			tb.Errorf("testdb: drop database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// SQLite returns the sqlite:// URL of a database file, not yet created, in
// tb's temporary folder.
func SQLite(tb testing.TB) string {
	tb.Helper()
	return "sqlite://" + filepath.Join(tb.TempDir(), "stephub.db")
}

// ForEach runs fn as one subtest per dialect, "sqlite" and "postgres", each
// with the URL of a fresh, empty database of that dialect. Both always run.
func ForEach(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	dialects := []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", SQLite},
		{"postgres", Postgres},
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			fn(t, d.url(t))
		})
	}
}

func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("testdb: random name: %v", err)
	}
	return hex.EncodeToString(b)
}
