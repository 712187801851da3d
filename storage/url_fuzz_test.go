package storage

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzDatabaseURL reads any DATABASE_URL. A sqlite:// one gives the path
// before its "?" and a DSN whose last word on the settings the Store relies
// on is the Store's, whatever the URL asked; a URL of another scheme is
// refused naming only its scheme, never what follows, which may hold a
// password. PostgreSQL URLs are parsed only: opening one connects.
func FuzzDatabaseURL(f *testing.F) {
	for _, seed := range []string{
		"sqlite://./data/stephub.db",
		"sqlite:///var/lib/stephub.db?_pragma=busy_timeout(100)",
		"sqlite://x.db?_pragma=journal_mode(DELETE)&_txlock=deferred&_txlock=exclusive",
		"sqlite://:memory:", "sqlite://file:x.db", "sqlite://?a=b", "sqlite://x.db?%zz",
		"postgres://user:secret@db:5432/stephub?sslmode=disable",
		"mysql://user:secret@db/stephub", "://", "no scheme",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		scheme, rest, ok := strings.Cut(raw, "://")
		switch strings.ToLower(scheme) {
		case "sqlite":
			path, dsn, err := sqliteDSN(rest)
			if err != nil {
				return
			}
			gotPath, query, _ := strings.Cut(dsn, "?")
			wantPath, _, _ := strings.Cut(rest, "?")
			if gotPath != path || path != wantPath || path == "" {
				t.Fatalf("sqliteDSN(%q): path %q, DSN path %q; want %q", rest, path, gotPath, wantPath)
			}
			params, err := url.ParseQuery(query)
			if err != nil {
				t.Fatalf("sqliteDSN(%q) = %q, whose query does not parse: %v", rest, dsn, err)
			}
			for k, v := range map[string]string{"_txlock": "immediate", "_time_format": "sqlite", "_timezone": "UTC"} {
				if !slices.Equal(params[k], []string{v}) {
					t.Fatalf("sqliteDSN(%q): %s = %q; want only %q", rest, k, params[k], v)
				}
			}
			pragmas := params["_pragma"]
			if len(pragmas) < 2 || !slices.Equal(pragmas[len(pragmas)-2:], []string{"foreign_keys(1)", "journal_mode(WAL)"}) {
				t.Fatalf("sqliteDSN(%q): pragmas %q; want foreign_keys(1), journal_mode(WAL) last", rest, pragmas)
			}
		case "postgres", "postgresql":
			// Parsed by lib/pq when opened; Open would connect.
		default:
			want := "open database: the url has no scheme: want sqlite://PATH or postgres://…"
			if ok {
				want = fmt.Sprintf("open database: unsupported scheme %q: want sqlite://PATH or postgres://…", scheme)
			}
			if _, err := Open(context.Background(), raw); err == nil || err.Error() != want {
				t.Fatalf("Open(%q): %v; want %s", raw, err, want)
			}
		}
	})
}
