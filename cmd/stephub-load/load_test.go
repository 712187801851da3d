package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var listeningLine = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// startStephub builds stephub and runs it on SQLite with the external
// pipeline, as the README's load recipe does; it returns its URL and pid.
func startStephub(t *testing.T) (string, int) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "stephub")
	if out, err := exec.Command("go", "build", "-o", bin, "../stephub").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "ADDR=127.0.0.1:0", "DATABASE_URL=sqlite://"+filepath.Join(dir, "db", "stephub.db"),
		"PIPELINE=external", "MAX_STREAMS_PER_USER=0", "WORKER_TOKEN=w", "ADMIN_TOKEN=a")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	listening, done := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				listening <- m[1]
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Error("stephub did not stop within 20s")
		}
	})
	select {
	case addr := <-listening:
		return "http://" + addr, cmd.Process.Pid
	case <-done:
		t.Fatalf("stephub exited before listening:\n%s", logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("stephub not listening after 20s")
	}
	return "", 0
}

// TestLoadRun runs a small mixed load against a real server: every event
// reaches every subscriber of its video, and the result line reports the
// latency, the server's CPU and memory, and the host's steal.
func TestLoadRun(t *testing.T) {
	url, pid := startStephub(t)
	var out, log bytes.Buffer
	args := []string{"-server", url, "-worker-token", "w", "-admin-token", "a", "-pid", strconv.Itoa(pid),
		"-videos", "3", "-subscribers", "12", "-transport", "mixed", "-rate", "100", "-duration", "1s",
		"-posters", "4", "-source-ips", "2", "-settle", "20s"}
	if err := run(t.Context(), args, func(string) string { return "" }, &out, &log); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	line := out.String()
	field := func(name string) string {
		m := regexp.MustCompile(` ` + name + `=(\S+)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no %s in %q", name, line)
		}
		return m[1]
	}
	// 100 events over 3 videos, then each video's terminal event, to 4
	// subscribers each.
	if events, deliveries := field("events"), field("deliveries"); events != "100" || deliveries != fmt.Sprint((100+3)*4) {
		t.Errorf("events=%s deliveries=%s, want 100 and %d", events, deliveries, (100+3)*4)
	}
	if lost := field("lost"); lost != "0" {
		t.Errorf("lost=%s", lost)
	}
	for _, name := range []string{"p50", "p99", "max"} {
		if d, err := time.ParseDuration(field(name)); err != nil || d <= 0 {
			t.Errorf("%s=%s, want a positive latency", name, field(name))
		}
	}
	if cpu, err := time.ParseDuration(field("server_cpu")); err != nil || cpu <= 0 {
		t.Errorf("server_cpu=%s, want some", field("server_cpu"))
	}
	steal, err := strconv.ParseFloat(strings.TrimSuffix(field("steal"), "%"), 64)
	if err != nil || steal < 0 || steal > 100 {
		t.Errorf("steal=%s, want a share", field("steal"))
	}
}
