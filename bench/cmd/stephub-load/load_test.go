package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stephub/stephub/bench/internal/latency"
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
	// Built in the product's module, whose go.sum has its dependencies.
	build := exec.Command("go", "build", "-o", bin, "./cmd/stephub")
	build.Dir = "../../.."
	if out, err := build.CombinedOutput(); err != nil {
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
// reaches every subscriber of its video, those of the warm-up untimed, and
// the result line reports the latency, the server's CPU and memory, and
// the host's steal.
func TestLoadRun(t *testing.T) {
	url, pid := startStephub(t)
	var log bytes.Buffer
	cfg, err := parseFlags([]string{"-server", url, "-worker-token", "w", "-admin-token", "a", "-pid", strconv.Itoa(pid),
		"-videos", "3", "-subscribers", "12", "-transport", "mixed", "-rate", "100", "-duration", "1s", "-warmup", "500ms",
		"-posters", "4", "-source-ips", "2", "-settle", "20s"}, func(string) string { return "" }, &log)
	if err != nil {
		t.Fatal(err)
	}
	res, err := newLoad(cfg, &log).run(t.Context())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	// 100 events over 3 videos, then each video's terminal event, to 4
	// subscribers each; the 50 events due in the first half second are
	// not timed.
	if res.events != 100 || res.received != (100+3)*4 || res.expected != res.received {
		t.Errorf("%d events, %d of %d deliveries; want 100, %d of %d", res.events, res.received, res.expected, (100+3)*4, (100+3)*4)
	}
	var timed latency.Histogram
	for i := range res.latency {
		timed.Merge(&res.latency[i])
	}
	if timed.Count() != 50*4 {
		t.Errorf("%d deliveries timed, want %d", timed.Count(), 50*4)
	}

	line := res.String()
	field := func(name string) string {
		m := regexp.MustCompile(` ` + name + `=(\S+)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no %s in %q", name, line)
		}
		return m[1]
	}
	if lost := field("lost"); lost != "0" {
		t.Errorf("lost=%s", lost)
	}
	for _, name := range []string{"p50", "p99", "max", "server_cpu"} {
		if d, err := time.ParseDuration(field(name)); err != nil || d <= 0 {
			t.Errorf("%s=%s, want a positive duration", name, field(name))
		}
	}
	if steal, err := strconv.ParseFloat(strings.TrimSuffix(field("steal"), "%"), 64); err != nil || steal < 0 || steal > 100 {
		t.Errorf("steal=%s, want a share", field("steal"))
	}
}

func TestParseFlagsRefusesLongWarmup(t *testing.T) {
	for _, warmup := range []string{"10s", "11s", "-1s"} {
		_, err := parseFlags([]string{"-worker-token", "w", "-admin-token", "a", "-duration", "10s", "-warmup", warmup},
			func(string) string { return "" }, io.Discard)
		if err == nil {
			t.Errorf("-warmup %s with -duration 10s was taken", warmup)
		}
	}
}
