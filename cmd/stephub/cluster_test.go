package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/stephub/stephub/internal/logbuf"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/internal/testnats"
)

// builtBinary is stephub built once for the tests that run real processes.
var builtBinary struct {
	once sync.Once
	path string
	err  error
}

func stephubBinary(t *testing.T) string {
	t.Helper()
	builtBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "stephub-bin-")
		if err != nil {
			builtBinary.err = err
			return
		}
		builtBinary.path = filepath.Join(dir, "stephub")
		out, err := exec.Command("go", "build", "-o", builtBinary.path, ".").CombinedOutput()
		if err != nil {
			builtBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtBinary.err != nil {
		t.Fatal(builtBinary.err)
	}
	return builtBinary.path
}

// node is a `stephub serve` process.
type node struct {
	URL  string
	cmd  *exec.Cmd
	logs *logbuf.Buffer
	done chan struct{}
}

// startNode runs `stephub serve` as a process of its own, with the test
// secrets and env, and waits until it listens. It is stopped with SIGTERM
// at the end of the test, unless killed before.
func startNode(t *testing.T, databaseURL string, env map[string]string) *node {
	t.Helper()
	return startNodeOf(t, stephubBinary(t), databaseURL, env)
}

// startNodeOf is startNode with the stephub binary bin.
func startNodeOf(t *testing.T, bin, databaseURL string, env map[string]string) *node {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "ADDR=127.0.0.1:0", "DATABASE_URL="+databaseURL, "JWT_SECRET="+testJWTSecret,
		"ADMIN_TOKEN="+testAdminToken, "WORKER_TOKEN="+testWorkerToken, "STEP_DELAY=0")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, logs: &logbuf.Buffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		defer close(n.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			n.logs.Write(append(sc.Bytes(), '\n'))
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case listening <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("node did not stop within 20s:\n%s", n.logs.String())
		}
	})
	select {
	case addr := <-listening:
		n.URL = "http://" + addr
	case <-n.done:
		t.Fatalf("node exited before listening:\n%s", n.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("node not listening after 20s:\n%s", n.logs.String())
	}
	return n
}

// kill ends the node at once, as a crash would.
func (n *node) kill(t *testing.T) {
	t.Helper()
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// server returns n as the testServer the HTTP helpers take.
func (n *node) server() *testServer { return &testServer{URL: n.URL} }

// watchSSE collects a video's events over SSE on s in the background.
func watchSSE(t *testing.T, s *testServer, token string, videoID int64) <-chan []event {
	t.Helper()
	st := openStream(t, s, token, videoID, "")
	out := make(chan []event, 1)
	go func() { out <- st.readAllQuiet() }()
	return out
}

// readAllQuiet reads events until the stream ends, for a goroutine that
// may not fail the test itself.
func (st *sseStream) readAllQuiet() []event {
	var out []event
	for {
		_, ev, err := st.nextQuiet()
		if err != nil {
			return out
		}
		out = append(out, ev)
	}
}

// watchWS collects a video's events over WebSocket on s in the background.
func watchWS(t *testing.T, s *testServer, token string, videoID int64) <-chan []event {
	t.Helper()
	conn, _, err := dialWS(t, s, token, videoID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []event, 1)
	go func() {
		var evs []event
		for {
			var ev event
			if err := conn.ReadJSON(&ev); err != nil {
				out <- evs
				return
			}
			evs = append(evs, ev)
		}
	}()
	return out
}

func await(t *testing.T, what string, c <-chan []event) []event {
	t.Helper()
	select {
	case evs := <-c:
		return evs
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no end of stream after 60s", what)
		return nil
	}
}

// cluster is the setting of one cluster test: a fresh PostgreSQL database
// and the broker its nodes pass events through.
type cluster struct {
	db   string
	nats *testnats.Server // nil for PostgreSQL's LISTEN/NOTIFY
}

// forEachBroker runs fn as one subtest per broker engine: "notify", the
// default on PostgreSQL, and "nats", with a nats-server of its own.
func forEachBroker(t *testing.T, fn func(t *testing.T, c *cluster)) {
	t.Run("notify", func(t *testing.T) { fn(t, &cluster{db: testdb.Postgres(t)}) })
	t.Run("nats", func(t *testing.T) {
		ns := startNATS(t)
		fn(t, &cluster{db: testdb.Postgres(t), nats: ns})
	})
}

// node starts a node of the cluster with env on top of the broker's.
func (c *cluster) node(t *testing.T, env map[string]string) *node {
	t.Helper()
	all := map[string]string{}
	if c.nats != nil {
		all["BROKER"] = c.nats.URL
	}
	for k, v := range env {
		all[k] = v
	}
	return startNode(t, c.db, all)
}

// TestClusterFanOut generates a job through node 1 of three and watches it
// over SSE on node 2 and WebSocket on node 3: both see all nine events, in
// order, once.
func TestClusterFanOut(t *testing.T) {
	forEachBroker(t, func(t *testing.T, c *cluster) {
		n1 := c.node(t, map[string]string{"STEP_DELAY": "100ms"})
		n2 := c.node(t, map[string]string{"PIPELINE": "external"})
		n3 := c.node(t, map[string]string{"PIPELINE": "external"})
		token := userToken(t, "clustered")
		v := generate(t, n1.server(), token)
		sse := watchSSE(t, n2.server(), token, v.ID)
		ws := watchWS(t, n3.server(), token, v.ID)
		checkComplete(t, "SSE on node 2", await(t, "node 2", sse))
		checkComplete(t, "WebSocket on node 3", await(t, "node 3", ws))
	})
}

// TestClusterCancel cancels through node 3 a job that node 1 runs: the job
// stops, every watcher on every node ends with the cancel, and the credits
// come back once.
func TestClusterCancel(t *testing.T) {
	forEachBroker(t, func(t *testing.T, c *cluster) {
		n1 := c.node(t, map[string]string{"STEP_DELAY": "300ms"})
		n2 := c.node(t, map[string]string{"PIPELINE": "external"})
		n3 := c.node(t, map[string]string{"PIPELINE": "external"})
		token := userToken(t, "canceller")
		v := generate(t, n1.server(), token)
		st := openStream(t, n2.server(), token, v.ID, "")
		if _, _, err := st.next(t); err != nil {
			t.Fatal(err)
		}
		watchers := map[string]<-chan []event{
			"SSE on node 1":       watchSSE(t, n1.server(), token, v.ID),
			"WebSocket on node 3": watchWS(t, n3.server(), token, v.ID),
		}
		if resp, body := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/cancel", n3.URL, v.ID), token, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("cancel on node 3: %d %s", resp.StatusCode, body)
		}
		cancelledAt := time.Now()
		rest := st.readAll(t)
		if len(rest) == 0 || rest[len(rest)-1].Status != "cancelled" {
			t.Fatalf("node 2 after the cancel: %+v; want it to end with cancelled", rest)
		}
		for name, w := range watchers {
			evs := await(t, name, w)
			if len(evs) == 0 || evs[len(evs)-1].Status != "cancelled" {
				t.Errorf("%s: %+v; want the stream to end with cancelled", name, evs)
			}
		}
		// Node 1 stopped the job: past the next step's time nothing was added.
		time.Sleep(time.Until(cancelledAt.Add(time.Second)))
		if !strings.Contains(n1.logs.String(), fmt.Sprintf(`"msg":"stream ended","transport":"sse","video_id":%d`, v.ID)) {
			t.Errorf("node 1's stream of the video did not end:\n%s", n1.logs.String())
		}
		resp, _ := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d/stream?token=%s", n1.URL, v.ID, token), "", nil,
			map[string]string{"Last-Event-ID": fmt.Sprint(rest[len(rest)-1].ID)})
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("events after the cancel: stream answered %d; want 204", resp.StatusCode)
		}
		if got := credits(t, n2.server(), token); got != 1000 {
			t.Errorf("credits = %d; want 1000, refunded once", got)
		}
	})
}

// TestClusterNodeKilled kills the node running a job: after the lease
// another node finishes it; watchers on the surviving nodes see a complete
// sequence without repeats, and the dead node's watcher, reconnecting to
// another node with Last-Event-ID, misses nothing.
func TestClusterNodeKilled(t *testing.T) {
	forEachBroker(t, func(t *testing.T, c *cluster) {
		env := map[string]string{"STEP_DELAY": "150ms", "LEASE": "1s"}
		n1 := c.node(t, env)
		token := userToken(t, "survivor")
		v := generate(t, n1.server(), token)
		onDead := openStream(t, n1.server(), token, v.ID, "")
		deadSeen := onDead.take(t, 2)
		// The others join once node 1 runs the job, as they would behind a
		// load balancer that sent the generate to node 1.
		n2, n3 := c.node(t, env), c.node(t, env)
		sse := watchSSE(t, n2.server(), token, v.ID)
		ws := watchWS(t, n3.server(), token, v.ID)
		n1.kill(t)
		deadSeen = append(deadSeen, onDead.readAllQuiet()...)
		back := openStream(t, n2.server(), token, v.ID, fmt.Sprint(deadSeen[len(deadSeen)-1].ID))
		deadSeen = append(deadSeen, back.readAll(t)...)

		checkNoRepeats(t, await(t, "node 2", sse), 1, "completed")
		checkNoRepeats(t, await(t, "node 3", ws), 1, "completed")
		checkNoRepeats(t, deadSeen, 1, "completed")
	})
}

// natsOutage is how long TestClusterBrokerCut keeps nats-server stopped.
const natsOutage = 5 * time.Second

// TestClusterBrokerCut cuts the broker while a worker posts a job's steps
// to node 1: PostgreSQL's LISTEN connections are terminated, or
// nats-server is stopped for natsOutage and started again. The watchers on
// nodes 2 and 3 still end with the whole sequence, nothing lost or
// repeated.
func TestClusterBrokerCut(t *testing.T) {
	forEachBroker(t, func(t *testing.T, c *cluster) {
		external := map[string]string{"PIPELINE": "external"}
		n1, n2, n3 := c.node(t, external), c.node(t, external), c.node(t, external)
		token := userToken(t, "patient")
		v := generate(t, n1.server(), token)
		st := openStream(t, n2.server(), token, v.ID, "")
		ws := watchWS(t, n3.server(), token, v.ID)
		postWorkerJob(t, n1.server(), v.ID, 0, 1, 2)
		seen := st.take(t, 2)

		// The rest, the terminal event included, is posted while the
		// broker's connections are down (or coming back: pq reconnects
		// after 50 ms, and NATS's client resends what it buffered), so
		// that no later event can fill a gap the catch-up left.
		if c.nats == nil {
			terminateListeners(t, c.db)
			postWorkerJob(t, n1.server(), v.ID, 0, 3, stephubSteps)
		} else {
			c.nats.Stop(t)
			stopped := time.Now()
			postWorkerJob(t, n1.server(), v.ID, 500*time.Millisecond, 3, stephubSteps)
			time.Sleep(time.Until(stopped.Add(natsOutage)))
			c.nats.Start(t)
		}
		seen = append(seen, st.readAll(t)...)
		checkComplete(t, "SSE on node 2 across the cut", seen)
		checkComplete(t, "WebSocket on node 3 across the cut", await(t, "node 3", ws))
		engine := "postgres"
		if c.nats != nil {
			engine = "nats"
		}
		for name, n := range map[string]*node{"node 2": n2, "node 3": n3} {
			if got, _ := metricValue(scrapeMetrics(t, n.server()), "stephub_broker_reconnects_total", "engine="+engine); got < 1 {
				t.Errorf("%s: stephub_broker_reconnects_total{engine=%q} = %v; want the cut seen and caught up after:\n%s", name, engine, got, n.logs.String())
			}
		}
	})
}

// terminateListeners ends the LISTEN connections of the database's nodes,
// as a PostgreSQL restart or a network cut would.
func terminateListeners(t *testing.T, url string) {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var killed int
	if err := db.QueryRowContext(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query ILIKE 'listen%'`).Scan(&killed); err != nil || killed == 0 {
		t.Fatalf("terminated %d LISTEN backends (%v); want at least one", killed, err)
	}
}
