package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
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
	"github.com/stephub/stephub/internal/testdb"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var listeningLine = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// buildStephub builds stephub once per test, in the product's module,
// whose go.sum has its dependencies.
func buildStephub(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stephub")
	build := exec.Command("go", "build", "-o", bin, "./cmd/stephub")
	build.Dir = "../../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startStephub runs bin on a database with the external pipeline, as the
// README's load recipe does; it returns its URL and pid.
func startStephub(t *testing.T, bin, databaseURL string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "ADDR=127.0.0.1:0", "DATABASE_URL="+databaseURL,
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
	dir := t.TempDir()
	url, pid := startStephub(t, buildStephub(t), "sqlite://"+filepath.Join(dir, "db", "stephub.db"))
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

// TestLoadWatchesOtherNodes runs a load on three nodes of one PostgreSQL
// database, posting to the first and watching on the other two: every
// event reaches every subscriber, and each watching node, not the posting
// one, writes half of the deliveries.
func TestLoadWatchesOtherNodes(t *testing.T) {
	bin, db := buildStephub(t), testdb.Postgres(t)
	var urls []string
	for range 3 {
		url, _ := startStephub(t, bin, db)
		urls = append(urls, url)
	}
	var log bytes.Buffer
	cfg, err := parseFlags([]string{"-server", urls[0], "-watch", urls[1] + "," + urls[2], "-worker-token", "w", "-admin-token", "a",
		"-videos", "3", "-subscribers", "12", "-transport", "mixed", "-rate", "60", "-duration", "1s",
		"-posters", "4", "-source-ips", "2", "-settle", "20s"}, func(string) string { return "" }, &log)
	if err != nil {
		t.Fatal(err)
	}
	res, err := newLoad(cfg, &log).run(t.Context())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	// 60 events over 3 videos, then each video's terminal event, to 4
	// subscribers each, two on each watching node.
	if res.events != 60 || res.received != (60+3)*4 || res.expected != res.received {
		t.Errorf("%d events, %d of %d deliveries; want 60, %d of %d", res.events, res.received, res.expected, (60+3)*4, (60+3)*4)
	}
	for i, want := range []float64{0, (60 + 3) * 2, (60 + 3) * 2} {
		if got := delivered(t, urls[i]); got != want {
			t.Errorf("node %d delivered %v events; want %v", i+1, got, want)
		}
	}
}

// delivered sums a node's stephub_events_delivered_total over transports.
func delivered(t *testing.T, url string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && strings.HasPrefix(name, "stephub_events_delivered_total{") {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			sum += v
		}
	}
	return sum
}

func TestParseFlagsWatch(t *testing.T) {
	for _, tc := range []struct {
		watch string
		want  []string
	}{
		{"", []string{"http://n1"}},
		{"http://n2", []string{"http://n2"}},
		{" http://n2 , http://n3,", []string{"http://n2", "http://n3"}},
	} {
		cfg, err := parseFlags([]string{"-server", "http://n1", "-watch", tc.watch, "-worker-token", "w", "-admin-token", "a"},
			func(string) string { return "" }, io.Discard)
		if err != nil || strings.Join(cfg.Watch, " ") != strings.Join(tc.want, " ") {
			t.Errorf("-watch %q: %q, %v; want %q", tc.watch, cfg.Watch, err, tc.want)
		}
	}
	if _, err := parseFlags([]string{"-watch", "https://n2", "-worker-token", "w", "-admin-token", "a"},
		func(string) string { return "" }, io.Discard); err == nil {
		t.Error("-watch https://n2 was taken; the SSE readers speak plain HTTP")
	}
}
