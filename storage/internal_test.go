package storage

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

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

// TestSQLiteWriterWaitEndsWithContext holds SQLite's write turn: a write
// that waits for it gives up when its context ends, having written nothing.
func TestSQLiteWriterWaitEndsWithContext(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s.writer <- struct{}{} // another writer's turn
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = s.EnsureUser(short, "waiting", "", 100)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("EnsureUser while another writes = %v; want context.DeadlineExceeded", err)
	}
	<-s.writer
	if _, err := s.User(ctx, "waiting"); !errors.Is(err, stephub.ErrNotFound) {
		t.Errorf("User after the refused write = %v; want ErrNotFound", err)
	}
	if _, err := s.EnsureUser(ctx, "waiting", "", 100); err != nil {
		t.Errorf("EnsureUser once the turn is free: %v", err)
	}
}
