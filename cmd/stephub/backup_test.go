package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stephub/stephub/internal/logbuf"
	"github.com/stephub/stephub/internal/testdb"
)

// history returns the id: and data: lines of a finished video's whole SSE
// stream: what a new watcher gets, byte for byte.
func history(t *testing.T, s *testServer, token string, videoID int64) []string {
	t.Helper()
	resp, body := call(t, "GET", streamURL(s, videoID, "?token="+token), "", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("stream of video %d: %d %s", videoID, resp.StatusCode, body)
	}
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "id: ") || strings.HasPrefix(l, "data: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2*stephubSteps {
		t.Fatalf("stream of video %d: %d lines; want the %d events of a whole job", videoID, len(lines), stephubSteps)
	}
	return lines
}

// runJobs generates n videos for token's user on s and waits for each to
// finish; it returns their ids.
func runJobs(t *testing.T, s *testServer, token string, n int) []int64 {
	t.Helper()
	var ids []int64
	for range n {
		v := generate(t, s, token)
		checkComplete(t, "job", openStream(t, s, token, v.ID, "").readAll(t))
		ids = append(ids, v.ID)
	}
	return ids
}

// checkSameHistory starts a server on restored and checks that each video
// streams there as it does on s, and that the next video gets a new id.
func checkSameHistory(t *testing.T, s *testServer, restored, token string, ids []int64) {
	t.Helper()
	r := startServer(t, restored, nil)
	for _, id := range ids {
		if got, want := history(t, r, token, id), history(t, s, token, id); !slices.Equal(got, want) {
			t.Errorf("video %d on the restored database:\n%s\nwant, as on the original:\n%s", id, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if v := generate(t, r, token); v.ID <= slices.Max(ids) {
		t.Errorf("a new video on the restored database got id %d; want one above %d", v.ID, slices.Max(ids))
	}
}

// TestBackupSQLiteWhileServing backs a running server's SQLite database up
// while jobs run and write, starts a new server on the copy, and finds the
// same history there: the same ids and payloads, byte for byte.
func TestBackupSQLiteWhileServing(t *testing.T) {
	dir := t.TempDir()
	url := "sqlite://" + filepath.Join(dir, "live", "stephub.db")
	s := startServer(t, url, nil)
	token := userToken(t, "kept")
	ids := runJobs(t, s, token, 3)

	// Jobs go on, and write, while the backup runs.
	busy, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for busy.Err() == nil {
			req, _ := http.NewRequest("POST", s.URL+"/api/v1/videos/generate",
				strings.NewReader(`{"prompt": "Busy while the backup runs", "model": "sora-2"}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("generate during the backup: %v", err)
				return
			}
			resp.Body.Close()
			// 402 once the credits are spent: the jobs started still write.
			if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusPaymentRequired {
				t.Errorf("generate during the backup: %d", resp.StatusCode)
				return
			}
		}
	})
	copyFile := filepath.Join(dir, "backup", "stephub.db")
	if err := os.Mkdir(filepath.Dir(copyFile), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	err := run(context.Background(), []string{"backup", "-o", copyFile}, env(map[string]string{"DATABASE_URL": url}), logs, logs)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, logs)
	}
	if entries, _ := os.ReadDir(filepath.Dir(copyFile)); len(entries) != 1 {
		t.Errorf("the backup folder holds %d files; want the copy alone", len(entries))
	}
	checkSameHistory(t, s, "sqlite://"+copyFile, token, ids)

	// A second backup to the same file is refused, and leaves it alone.
	before, _ := os.ReadFile(copyFile)
	err = run(context.Background(), []string{"backup", "-o", copyFile}, env(map[string]string{"DATABASE_URL": url}), logs, logs)
	if after, _ := os.ReadFile(copyFile); err == nil || !slices.Equal(before, after) {
		t.Errorf("backup over an existing file: %v; want an error, the file untouched", err)
	}
}

// TestBackupRefuses: backup needs -o, a SQLite database that exists (it
// creates none), and tells PostgreSQL users to use pg_dump.
func TestBackupRefuses(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nothing-here", "stephub.db")
	for _, tc := range []struct {
		name, url string
		args      []string
		want      string
	}{
		{"no -o", "sqlite://" + missing, []string{"backup"}, "usage"},
		{"missing database", "sqlite://" + missing, []string{"backup", "-o", filepath.Join(dir, "copy.db")}, "no such file"},
		{"postgres", testdb.Postgres(t), []string{"backup", "-o", filepath.Join(dir, "copy.db")}, "pg_dump"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logbuf.Buffer{}
			err := run(context.Background(), tc.args, env(map[string]string{"DATABASE_URL": tc.url}), logs, logs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("stephub %s: %v; want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup of a missing database created %s: %v", filepath.Dir(missing), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "copy.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused backup wrote its file: %v", err)
	}
}

// TestBackupPostgresWithPgDump follows docs/operating.md: pg_dump of a
// serving database, pg_restore into an empty one, and a new server there
// streams the same history.
func TestBackupPostgresWithPgDump(t *testing.T) {
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		// Debian's postgresql package brings them, as it brings the
		// server the tests need: missing, the set-up is broken.
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install postgresql-client)", tool)
		}
	}
	url := testdb.Postgres(t)
	s := startServer(t, url, nil)
	token := userToken(t, "dumped")
	ids := runJobs(t, s, token, 3)

	dump := filepath.Join(t.TempDir(), "stephub.dump")
	if out, err := exec.Command("pg_dump", "--format=custom", "--file="+dump, url).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	restored := testdb.Postgres(t)
	if out, err := exec.Command("pg_restore", "--no-owner", "--exit-on-error", "--dbname="+restored, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	checkSameHistory(t, s, restored, token, ids)
}

// env is a getenv of vars alone.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}
