package main

// The cluster floor: issue 18's workload (events posted to one node,
// watched on the others, every event stored in PostgreSQL before it is
// answered and passed between nodes over core NATS) with only the work
// no implementation can skip, in separate processes as a deployment runs:
//
//   - this process plays stephub-load's poster: -posters keep-alive
//     HTTP/1.1 clients post -rate events a second, round robin over the
//     videos, each body of stephub-load's size stamped with its due time;
//   - the writer (mode write) answers each post once the event is stored:
//     a net/http server whose handlers hand events to one batching loop,
//     which stores those that arrived while the last statement ran (at
//     most 64) in one statement, INSERT into events and UPDATE of each
//     video's row, committed durably, one batch at a time, as stephub's
//     eventBatch does; it then publishes each stored event, the SSE frame
//     itself, on subject floor.<video>;
//   - each follower (mode follow) subscribes to floor.* and writes each
//     frame, with one write(2), to its connections watching that video,
//     from the NATS callback; its read child measures the latency.

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lib/pq"
	"github.com/nats-io/nats.go"

	"github.com/stephub/stephub/bench/internal/latency"
)

type clusterConfig struct {
	videos, subscribers, followers, posters int
	rate                                    float64
	duration, warmup                        time.Duration
	natsServer                              string
}

// defaultAdmin is the PostgreSQL server the run creates its database on,
// unless $STEPHUB_TEST_POSTGRES names another: as the tests (internal/testdb).
const defaultAdmin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

const schema = `
CREATE TABLE videos (id BIGINT PRIMARY KEY, last_seq BIGINT NOT NULL DEFAULT 0, updated_at TIMESTAMPTZ);
CREATE TABLE events (video_id BIGINT NOT NULL, seq BIGINT NOT NULL, payload TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (video_id, seq));`

func cluster(cfg clusterConfig) error {
	if cfg.videos < 1 || cfg.followers < 1 || cfg.subscribers < cfg.followers || cfg.posters < 1 || cfg.rate <= 0 || cfg.warmup >= cfg.duration {
		return errors.New("cluster: want -videos, -followers, -posters and -rate positive, -subscribers ≥ -followers, -warmup < -duration")
	}
	dbURL, drop, err := createDatabase(cfg.videos)
	if err != nil {
		return err
	}
	defer drop()
	natsURL, natsPID, stopNATS, err := startNATS(cfg.natsServer)
	if err != nil {
		return err
	}
	defer stopNATS()

	w, err := startChild("write", "-db", dbURL, "-nats", natsURL)
	if err != nil {
		return err
	}
	defer w.stop()
	line, err := w.line()
	addr, ok := strings.CutPrefix(line, "listening ")
	if err != nil || !ok {
		return fmt.Errorf("the writer did not start: %q, %v", line, err)
	}
	// Connection i of a follower watches video i%videos+1.
	watchers := make([]int64, cfg.videos+1)
	var followers []*child
	var readerPIDs []int
	for f := range cfg.followers {
		n := cfg.subscribers / cfg.followers
		if f < cfg.subscribers%cfg.followers {
			n++
		}
		for i := range n {
			watchers[i%cfg.videos+1]++
		}
		c, err := startChild("follow", "-nats", natsURL, "-videos", fmt.Sprint(cfg.videos), "-conns", fmt.Sprint(n))
		if err != nil {
			return err
		}
		defer c.stop()
		followers = append(followers, c)
		line, err := c.line()
		pid, perr := strconv.Atoi(strings.TrimPrefix(line, "ready "))
		if err != nil || perr != nil {
			return fmt.Errorf("follower %d did not get ready: %q, %v", f+1, line, err)
		}
		readerPIDs = append(readerPIDs, pid)
	}

	// The processes whose CPU is counted, by role.
	pids := map[string][]int{"writer": {w.cmd.Process.Pid}, "nats": {natsPID}, "readers": readerPIDs, "poster": {os.Getpid()}}
	for _, f := range followers {
		pids["followers"] = append(pids["followers"], f.cmd.Process.Pid)
	}
	if pids["postgres"], err = backends(dbURL); err != nil {
		return err
	}
	before := cpuOf(pids)
	start := time.Now()
	posted, err := post(cfg, "http://"+addr)
	if err != nil {
		return err
	}
	// The writer publishes floor.end after every event it stored; each
	// follower says "end" once it has written them all.
	resp, err := http.Post("http://"+addr+"/end", "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the writer's end: %s", resp.Status)
	}
	for _, f := range followers {
		if line, err := f.line(); err != nil || line != "end" {
			return fmt.Errorf("a follower did not end: %q, %v", line, err)
		}
	}
	elapsed := time.Since(start)
	after := cpuOf(pids)

	var events, expected, frames int64
	for v, n := range posted {
		events += n
		expected += n * watchers[v]
	}
	var lat latency.Histogram
	for _, f := range followers {
		f.in.Close() // the follower closes its connections; its reader reports
		result, err := f.line()
		if err != nil {
			return err
		}
		n, _ := strconv.ParseInt(strings.TrimPrefix(strings.Fields(result)[0], "frames="), 10, 64)
		frames += n
		hist, err := f.line()
		if err != nil {
			return err
		}
		if err := lat.UnmarshalText([]byte(hist)); err != nil {
			return err
		}
	}
	fmt.Printf("videos=%d connections=%d followers=%d rate=%.0f events=%d deliveries=%d lost=%d p50=%s p99=%s max=%s window=%s cpu:",
		cfg.videos, cfg.subscribers, cfg.followers, cfg.rate, events, frames, expected-frames,
		lat.Quantile(0.50), lat.Quantile(0.99), lat.Max(), elapsed.Round(time.Millisecond))
	for _, role := range []string{"poster", "writer", "postgres", "nats", "followers", "readers"} {
		fmt.Printf(" %s=", role)
		for i, pid := range pids[role] {
			if i > 0 {
				fmt.Print(",")
			}
			fmt.Printf("%.2fs", (after[pid] - before[pid]).Seconds())
		}
	}
	fmt.Println()
	return nil
}

// post sends rate×duration events to the writer, as stephub-load does.
func post(cfg clusterConfig, base string) ([]int64, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.posters, DisableCompression: true}}
	defer client.CloseIdleConnections()
	total := int(cfg.rate * cfg.duration.Seconds())
	interval := time.Duration(float64(time.Second) / cfg.rate)
	posted := make([]atomic.Int64, cfg.videos+1)
	due := make(chan int, cfg.posters)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		postErr error
	)
	start := time.Now()
	for range cfg.posters {
		wg.Go(func() {
			for i := range due {
				v := i%cfg.videos + 1
				sent := start.Add(time.Duration(i) * interval) // its due time, as stephub-load stamps it
				body := fmt.Sprintf(`{"step":1,"message":"load","progress":1,"data":{"sent":%d}}`, sent.UnixNano())
				if sent.Before(start.Add(cfg.warmup)) {
					body = `{"step":1,"message":"warm-up","progress":1}` // delivered and counted, not timed
				}
				resp, err := client.Post(fmt.Sprintf("%s/videos/%d/events", base, v), "application/json", strings.NewReader(body))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("post: %s", resp.Status)
					}
				}
				if err != nil {
					errOnce.Do(func() { postErr = err })
					continue
				}
				posted[v].Add(1)
			}
		})
	}
	for i := range total {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		due <- i
	}
	close(due)
	wg.Wait()
	counts := make([]int64, len(posted))
	for v := range posted {
		counts[v] = posted[v].Load()
	}
	return counts, postErr
}

// writer is the writer process: it stores what is posted to it and
// publishes it, until its standard input ends.
func writer(dbURL, natsURL string) error {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one batch at a time needs one connection
	if err := db.Ping(); err != nil {
		return err
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	queue := make(chan *event, 1024)
	go batches(db, nc, queue)

	mux := http.NewServeMux()
	mux.HandleFunc("POST /videos/{id}/events", func(rw http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		body, rerr := io.ReadAll(r.Body)
		if err != nil || rerr != nil || !json.Valid(body) {
			http.Error(rw, "bad event", http.StatusBadRequest)
			return
		}
		ev := &event{video: id, payload: body, done: make(chan error, 1)}
		queue <- ev
		if err := <-ev.done; err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		rw.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /end", func(rw http.ResponseWriter, r *http.Request) {
		// After every event's publish: core NATS keeps one connection's
		// messages in order.
		if err := cmp.Or(nc.Publish("floor.end", nil), nc.Flush()); err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, mux)
	fmt.Println("listening", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// event is one posted event, answered on done once stored and published.
type event struct {
	video   int64
	payload []byte
	done    chan error
}

// store is batches' statement: one implicit transaction, committed
// durably (synchronous_commit is on), over arrays of the batch's columns.
const store = `WITH input AS (
	SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS i(video_id, seq, payload)
), inserted AS (
	INSERT INTO events (video_id, seq, payload) SELECT video_id, seq, payload FROM input
)
UPDATE videos v SET last_seq = m.seq, updated_at = now()
FROM (SELECT video_id, max(seq) AS seq FROM input GROUP BY video_id) m
WHERE v.id = m.video_id`

// batches stores the events queued while the last batch was stored, up to
// 64 at a time, then publishes each as an SSE frame and answers it. It
// numbers each video's events itself: it is their only writer.
func batches(db *sql.DB, nc *nats.Conn, queue <-chan *event) {
	seqs := map[int64]int64{}
	var batch []*event
	for ev := range queue {
		batch = append(batch[:0], ev)
	more:
		for len(batch) < 64 {
			select {
			case ev := <-queue:
				batch = append(batch, ev)
			default:
				break more
			}
		}
		var ids, seq []int64
		var payloads []string
		for _, ev := range batch {
			seqs[ev.video]++
			ids, seq, payloads = append(ids, ev.video), append(seq, seqs[ev.video]), append(payloads, string(ev.payload))
		}
		_, err := db.Exec(store, pq.Array(ids), pq.Array(seq), pq.Array(payloads))
		for i, ev := range batch {
			if err == nil {
				frame := fmt.Appendf(nil, "id: %d\ndata: %s\n\n", seq[i], ev.payload)
				err = nc.Publish("floor."+strconv.FormatInt(ev.video, 10), frame)
			}
			ev.done <- err
		}
	}
}

// follow is a follower process: it writes every frame published on
// floor.<video> to its n connections watching that video, says "end" on
// floor.end, and once its standard input ends prints its reader's two
// lines.
func follow(natsURL string, videos, n int) error {
	p, err := accept(n, "-hist")
	if err != nil {
		return err
	}
	defer p.close()
	watching := make([][]syscall.RawConn, videos+1)
	for i, raw := range p.raws {
		watching[i%videos+1] = append(watching[i%videos+1], raw)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	end, failed := make(chan struct{}), make(chan error, 1)
	_, err = nc.Subscribe("floor.*", func(m *nats.Msg) {
		name := strings.TrimPrefix(m.Subject, "floor.")
		if name == "end" {
			close(end)
			return
		}
		v, _ := strconv.Atoi(name)
		for _, raw := range watching[v] {
			if err := write(raw, m.Data); err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		}
	})
	if err == nil {
		err = nc.Flush() // the subscription is in place
	}
	if err != nil {
		return err
	}
	fmt.Println("ready", p.child.Process.Pid)
	select {
	case <-end:
	case err := <-failed:
		return err
	}
	fmt.Println("end")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range p.conns {
		c.Close()
	}
	for range 2 {
		line, err := p.out.ReadString('\n')
		if err != nil {
			return fmt.Errorf("the reader's result: %w", err)
		}
		fmt.Print(line)
	}
	return nil
}

// child is a process of this program, run in another mode, that speaks
// in lines on its standard output and ends when its standard input does.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startChild(args ...string) (*child, error) {
	c := &child{cmd: exec.Command(os.Args[0], args...)}
	c.cmd.Stderr = os.Stderr
	var err error
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = bufio.NewReader(out)
	return c, c.cmd.Start()
}

func (c *child) line() (string, error) {
	s, err := c.out.ReadString('\n')
	return strings.TrimSpace(s), err
}

// stop closes the child's standard input, which ends it, and waits for
// it; a child that has not ended after childGrace, one waiting for an end
// that never comes, is killed.
func (c *child) stop() {
	c.in.Close()
	kill := time.AfterFunc(childGrace, func() { c.cmd.Process.Kill() })
	defer kill.Stop()
	io.Copy(io.Discard, c.out)
	c.cmd.Wait()
}

// childGrace is how long stop waits for a child to end by itself.
const childGrace = 5 * time.Second

// createDatabase creates a fresh database with the floor's schema and
// videos 1 to videos; drop drops it.
func createDatabase(videos int) (dbURL string, drop func(), err error) {
	admin := cmp.Or(os.Getenv("STEPHUB_TEST_POSTGRES"), defaultAdmin)
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, err
	}
	adb, err := sql.Open("postgres", admin)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("floor_%016x", rand.Uint64())
	if _, err := adb.Exec("CREATE DATABASE " + name); err != nil {
		adb.Close()
		return "", nil, err
	}
	drop = func() {
		if _, err := adb.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "floor: drop database:", err)
		}
		adb.Close()
	}
	u.Path = "/" + name
	db, err := sql.Open("postgres", u.String())
	if err == nil {
		defer db.Close()
		_, err = db.Exec(schema)
	}
	if err == nil {
		_, err = db.Exec("INSERT INTO videos (id) SELECT generate_series(1, $1::bigint)", videos)
	}
	if err != nil {
		drop()
		return "", nil, err
	}
	return u.String(), drop, nil
}

// backends are the pids of the PostgreSQL backends connected to dbURL's
// database.
func backends(dbURL string) ([]int, error) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, err
		}
		pids = append(pids, pid)
	}
	return pids, rows.Err()
}

// startNATS starts a private nats-server on a free port of 127.0.0.1.
func startNATS(bin string) (natsURL string, pid int, stop func(), err error) {
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", "-1")
	logs, out, err := os.Pipe()
	if err != nil {
		return "", 0, nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Start()
	out.Close()
	if err != nil {
		logs.Close()
		return "", 0, nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if _, addr, ok := strings.Cut(sc.Text(), "Listening for client connections on "); ok {
				found <- addr
			}
		}
		close(found)
		logs.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case addr, ok := <-found:
		if ok {
			return "nats://" + addr, cmd.Process.Pid, stop, nil
		}
	case <-ctx.Done():
	}
	stop()
	return "", 0, nil, errors.New("nats-server did not start")
}

// cpuOf reads each pid's CPU time (user and system) from /proc.
func cpuOf(roles map[string][]int) map[int]time.Duration {
	cpu := map[int]time.Duration{}
	for _, pids := range roles {
		for _, pid := range pids {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			// utime and stime are fields 14 and 15, counted from the pid;
			// the process's name, field 2, ends with the last ')'.
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
			utime, _ := strconv.ParseInt(f[11], 10, 64)
			stime, _ := strconv.ParseInt(f[12], 10, 64)
			cpu[pid] = time.Duration(utime+stime) * time.Second / 100 // USER_HZ
		}
	}
	return cpu
}
