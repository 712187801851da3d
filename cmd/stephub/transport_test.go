package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/testdb"
)

// tlsServer is a server on HTTPS with a self-signed certificate, and
// clients that trust it: one that speaks HTTP/2, and one held to HTTP/1.1
// that the testServer uses.
type tlsServer struct {
	*testServer
	certFile string
	h2, h1   *http.Client
}

func startTLSServer(t *testing.T, env map[string]string) *tlsServer {
	t.Helper()
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	vars := map[string]string{"TLS_CERT": certFile, "TLS_KEY": keyFile}
	for k, v := range env {
		vars[k] = v
	}
	s := startServer(t, testdb.SQLite(t), vars)
	ts := &tlsServer{testServer: s, certFile: certFile, h2: tlsClient(pool, true), h1: tlsClient(pool, false)}
	s.URL, s.client = "https://"+strings.TrimPrefix(s.URL, "http://"), ts.h1
	t.Cleanup(ts.h2.CloseIdleConnections)
	t.Cleanup(ts.h1.CloseIdleConnections)
	return ts
}

func tlsClient(pool *x509.CertPool, http2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: http2}
	if !http2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr}
}

// send makes a request with client and returns the response with its body.
func send(t *testing.T, client *http.Client, method, url, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading: %v", method, url, err)
	}
	return resp, data
}

// openWith opens a video's SSE stream with client, which must answer with
// the protocol major version proto.
func openWith(t *testing.T, ctx context.Context, client *http.Client, base, token string, videoID int64, proto int) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/videos/%d/stream", base, videoID), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != proto {
		resp.Body.Close()
		t.Fatalf("stream: %s %d; want HTTP/%d 200", resp.Proto, resp.StatusCode, proto)
	}
	st := &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
	t.Cleanup(st.Close)
	return st
}

// TestIdleHTTPSStreamsLive holds streams of a video that sends nothing over
// HTTPS, one on HTTP/2 and one on HTTP/1.1, for longer than two heartbeat
// intervals: each gets its pings and is still open and delivering at the
// end, where a write deadline left behind by the last write used to reset
// the HTTP/2 stream after 10 s.
func TestIdleHTTPSStreamsLive(t *testing.T) {
	t.Parallel()
	s := startTLSServer(t, map[string]string{"PIPELINE": "external"})
	token := userToken(t, "idle")
	resp, body := send(t, s.h1, "POST", s.URL+"/api/v1/videos/generate", token, `{"prompt": "A slow sunrise over hills", "model": "sora-2"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("generate: %d %s", resp.StatusCode, body)
	}
	v := decodeJSON[video](t, body)

	const hold = 31 * time.Second
	streams := map[string]*sseStream{
		"HTTP/2":   openWith(t, t.Context(), s.h2, s.URL, token, v.ID, 2),
		"HTTP/1.1": openWith(t, t.Context(), s.h1, s.URL, token, v.ID, 1),
	}
	type result struct {
		proto      string
		pings      int
		longestGap time.Duration
		line       string
		err        error
	}
	results := make(chan result, len(streams))
	for proto, st := range streams {
		go func() {
			r := result{proto: proto}
			last := time.Now()
			for {
				line, err := st.r.ReadString('\n')
				if err != nil {
					r.err = err
					break
				}
				if line == ": ping\n" {
					r.pings++
					r.longestGap = max(r.longestGap, time.Since(last))
					last = time.Now()
				}
				if strings.HasPrefix(line, "data: ") {
					r.line = line
					break
				}
			}
			results <- r
		}()
	}
	time.Sleep(hold)
	resp, body = send(t, s.h1, "POST", fmt.Sprintf("%s/api/v1/videos/%d/events", s.URL, v.ID), testWorkerToken,
		`{"step": 1, "message": "still here", "progress": 5}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("worker post: %d %s", resp.StatusCode, body)
	}
	for range streams {
		r := <-results
		if r.err != nil {
			t.Errorf("%s: the stream failed after %d pings: %v", r.proto, r.pings, r.err)
			continue
		}
		if r.pings < 2 {
			t.Errorf("%s: %d pings in %v; want at least 2", r.proto, r.pings, hold)
		}
		if r.longestGap > 15*time.Second {
			t.Errorf("%s: %v between pings; want at most 15s", r.proto, r.longestGap)
		}
		if !strings.Contains(r.line, `"message":"still here"`) {
			t.Errorf("%s: after %v idle got %q; want the worker's event", r.proto, hold, r.line)
		}
	}
}

// TestStreamsCancelledAroundPings opens hundreds of streams over HTTP/2
// and HTTP/1.1 with a heartbeat every 100 ms and cancels them at random
// times around their pings, for several rounds: the server stays up, and
// every stream is let go.
func TestStreamsCancelledAroundPings(t *testing.T) {
	t.Parallel()
	s := startTLSServer(t, map[string]string{"PIPELINE": "external", "PING_INTERVAL": "100ms", "MAX_STREAMS_PER_USER": "0"})
	plain := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external", "PING_INTERVAL": "100ms", "MAX_STREAMS_PER_USER": "0"})
	token := userToken(t, "storm")
	resp, body := send(t, s.h1, "POST", s.URL+"/api/v1/videos/generate", token, `{"prompt": "A storm over the sea", "model": "sora-2"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("generate: %d %s", resp.StatusCode, body)
	}
	tlsVideo := decodeJSON[video](t, body)
	plainVideo := generate(t, plain, token)

	type target struct {
		name   string
		client *http.Client
		base   string
		video  int64
		proto  int
	}
	targets := []target{
		{"HTTP/2", s.h2, s.URL, tlsVideo.ID, 2},
		{"HTTP/1.1 over TLS", s.h1, s.URL, tlsVideo.ID, 1},
		{"HTTP/1.1", http.DefaultClient, plain.URL, plainVideo.ID, 1},
	}
	const rounds, perTarget = 3, 100
	for round := range rounds {
		var wg sync.WaitGroup
		for _, tg := range targets {
			for range perTarget {
				wg.Go(func() {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/videos/%d/stream", tg.base, tg.video), nil)
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := tg.client.Do(req)
					if err != nil {
						t.Errorf("round %d, %s: %v", round, tg.name, err)
						return
					}
					defer resp.Body.Close()
					if resp.StatusCode != http.StatusOK || resp.ProtoMajor != tg.proto {
						t.Errorf("round %d, %s: %s %d", round, tg.name, resp.Proto, resp.StatusCode)
						return
					}
					// Read until a moment between 0 and 3 ping intervals
					// from now, then leave, as a closing tab does.
					time.AfterFunc(time.Duration(rand.Int64N(int64(300*time.Millisecond))), cancel)
					io.Copy(io.Discard, resp.Body)
				})
			}
		}
		wg.Wait()
	}

	for _, srv := range []*testServer{s.testServer, plain} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			active, _ := metricValue(scrapeMetrics(t, srv), "stephub_connections_active", "transport=sse")
			if active == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v streams still open 10 s after every client left", active)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if resp, _ := send(t, s.h2, "GET", s.URL+"/healthz", "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz after the storm: %d", resp.StatusCode)
	}
	if n := strings.Count(s.logs.String()+plain.logs.String(), `"msg":"stream ended"`); n != rounds*perTarget*len(targets) {
		t.Errorf("%d streams ended; want %d", n, rounds*perTarget*len(targets))
	}
}

// arrival is an event's id, and when a reader had it.
type arrival struct {
	id int64
	at time.Time
}

// TestReadersGetEachEventAtOnce publishes an event every 300 ms, as a job's
// quick steps do, to readers that hand on what they read as soon as it
// arrives: Go's HTTP client on HTTP/1.1 and HTTP/2, and Python's requests
// with iter_lines on HTTP/1.1, with and without TLS. Each must see every
// event before the next is posted (within 250 ms, leaving room for a busy
// machine): a body that is not chunked left requests waiting for more
// bytes, a step or two late.
func TestReadersGetEachEventAtOnce(t *testing.T) {
	python := pythonWithRequests(t)
	plain := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	secure := startTLSServer(t, map[string]string{"PIPELINE": "external"})
	token := userToken(t, "reader")

	type reader struct {
		name string
		open func(videoID int64) <-chan arrival // ready once it returns
	}
	goReader := func(client *http.Client, base string, proto int) func(int64) <-chan arrival {
		return func(videoID int64) <-chan arrival {
			st := openWith(t, t.Context(), client, base, token, videoID, proto)
			return readIDs(st.r)
		}
	}
	pyReader := func(base, certFile string) func(int64) <-chan arrival {
		return func(videoID int64) <-chan arrival {
			return startPythonReader(t, python, fmt.Sprintf("%s/api/v1/videos/%d/stream", base, videoID), token, certFile)
		}
	}
	readers := []struct {
		reader
		server *testServer
		client *http.Client
		base   string
	}{
		{reader{"Go, HTTP/1.1", goReader(http.DefaultClient, plain.URL, 1)}, plain, http.DefaultClient, plain.URL},
		{reader{"Go, HTTP/2", goReader(secure.h2, secure.URL, 2)}, secure.testServer, secure.h1, secure.URL},
		{reader{"Python requests, HTTP/1.1", pyReader(plain.URL, "")}, plain, http.DefaultClient, plain.URL},
		{reader{"Python requests, HTTP/1.1 over TLS", pyReader(secure.URL, secure.certFile)}, secure.testServer, secure.h1, secure.URL},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			resp, body := send(t, rd.client, "POST", rd.base+"/api/v1/videos/generate", token, `{"prompt": "Quick steps, one after another", "model": "sora-2"}`)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("generate: %d %s", resp.StatusCode, body)
			}
			v := decodeJSON[video](t, body)
			got := rd.open(v.ID)

			const events = 8
			posted := make(map[int64]time.Time)
			for step := 1; step <= events; step++ {
				time.Sleep(300 * time.Millisecond)
				body := fmt.Sprintf(`{"step": %d, "message": "step %d", "progress": %d}`, step, step, step*10)
				if step == events {
					body = fmt.Sprintf(`{"step": %d, "message": "done", "progress": 100, "status": "completed", "video_url": "/v.mp4"}`, step)
				}
				posted[int64(step)] = time.Now()
				if resp, data := send(t, rd.client, "POST", fmt.Sprintf("%s/api/v1/videos/%d/events", rd.base, v.ID), testWorkerToken, body); resp.StatusCode != http.StatusAccepted {
					t.Fatalf("post %d: %d %s", step, resp.StatusCode, data)
				}
			}
			seen := 0
			timeout := time.After(10 * time.Second)
			for seen < events {
				select {
				case a, ok := <-got:
					if !ok {
						t.Fatalf("the reader stopped after %d of %d events", seen, events)
					}
					seen++
					if a.id != int64(seen) {
						t.Fatalf("event %d came as number %d", a.id, seen)
					}
					if late := a.at.Sub(posted[a.id]); late > 250*time.Millisecond {
						t.Errorf("event %d reached the reader %v after it was posted; want within 250ms, before the next", a.id, late.Round(time.Millisecond))
					}
				case <-timeout:
					t.Fatalf("%d of %d events within 10 s", seen, events)
				}
			}
		})
	}
}

// readIDs reads SSE lines from r and sends the id of each event as it comes.
func readIDs(r *bufio.Reader) <-chan arrival {
	out := make(chan arrival, 64)
	go func() {
		defer close(out)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if id, ok := strings.CutPrefix(strings.TrimSpace(line), "id: "); ok {
				n, _ := strconv.ParseInt(id, 10, 64)
				out <- arrival{n, time.Now()}
			}
		}
	}()
	return out
}

// pythonWithRequests returns a Python 3 that has requests: Debian's, where
// its python3-requests package puts it, or else the first on PATH. The
// test is skipped only where there is no Python 3 at all.
func pythonWithRequests(t *testing.T) string {
	t.Helper()
	var python string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			python = path
			break
		}
	}
	if python == "" {
		t.Fatal("no python3 here: the Python reader cannot run (Debian: apt-get install python3-requests)")
	}
	if out, err := exec.Command(python, "-c", "import requests").CombinedOutput(); err != nil {
		t.Fatalf("%s has no requests module (Debian: apt-get install python3-requests): %v\n%s", python, err, out)
	}
	return python
}

// startPythonReader runs testdata/sse_reader.py on url and returns the ids
// it prints, stamped when they reach this process; it returns once the
// reader has its response. certFile, if set, is the server's certificate.
func startPythonReader(t *testing.T, python, url, token, certFile string) <-chan arrival {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, python, "testdata/sse_reader.py", url, token, certFile)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	r := bufio.NewReader(stdout)
	status, err := r.ReadString('\n')
	if err != nil || status != "status 200\n" {
		t.Fatalf("the Python reader's response: %q, %v", status, err)
	}
	return readIDs(r)
}

// TestStreamConnectionsServeNextRequests alternates generates and streams
// on one HTTP client, as a page does: each stream's connection goes back
// to net/http after the terminal event, and the next request the client
// sends on it at once is served. On a busy machine the stream's reader
// used to take that request's first bytes before it stopped, and the
// connection was reset under it.
func TestStreamConnectionsServeNextRequests(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, nil)
		token := userToken(t, "pager")
		for range 10 {
			v := generate(t, s, token)
			checkComplete(t, "stream", openStream(t, s, token, v.ID, "").readAll(t))
		}
	})
}
