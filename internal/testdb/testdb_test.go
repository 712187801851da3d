package testdb_test

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"

	_ "github.com/lib/pq"
	"github.com/stephub/stephub/internal/testdb"
)

func TestPostgresCreatesAndDrops(t *testing.T) {
	var dbURL string
	t.Run("use", func(t *testing.T) {
		dbURL = testdb.Postgres(t)
		db, err := sql.Open("postgres", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "CREATE TABLE t (x INT)"); err != nil {
			t.Fatalf("the new database is not usable: %v", err)
		}
	})

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := path.Base(u.Path)
	if !strings.HasPrefix(name, "stephub_test_") {
		t.Errorf("database name = %q; want prefix stephub_test_", name)
	}
	admin := os.Getenv(testdb.PostgresEnv)
	if admin == "" {
		admin = testdb.DefaultPostgresAdminURL
	}
	db, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestSQLiteURL(t *testing.T) {
	got := testdb.SQLite(t)
	if !strings.HasPrefix(got, "sqlite:///") {
		t.Errorf("SQLite(t) = %q; want an absolute sqlite:/// URL", got)
	}
}
