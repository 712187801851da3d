package transport_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/storage"
	"github.com/stephub/stephub/transport"
)

// fixture is a real store with one user and one video, a hub reading its
// history, and an endpoint streaming the video on a real listener: over
// WebSocket to upgrade requests, over SSE to the others.
type fixture struct {
	store   *storage.Store
	hub     *hub.Hub
	videoID int64
	srv     *httptest.Server
	ended   chan error // what each stream returned; Done must not block
}

// newFixture starts the fixture; each setup, if any, configures the
// server before it starts (TLS, socket buffers).
func newFixture(t *testing.T, opts hub.Options, cfg transport.Config, setup ...func(*httptest.Server)) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureUser(ctx, "u", "", 1000); err != nil {
		t.Fatal(err)
	}
	v, err := store.CreateVideo(ctx, "u", stephub.Video{Prompt: "a prompt here", Model: "sora-2", Cost: 100})
	if err != nil {
		t.Fatal(err)
	}
	opts.History = store
	streamer := transport.New(cfg)
	f := &fixture{store: store, hub: hub.New(opts), videoID: v.ID, ended: make(chan error, 256)}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hello" {
			io.WriteString(w, "hello")
			return
		}
		after, err := transport.LastEventID(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sub, err := f.hub.Subscribe(r.Context(), f.videoID, after)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		done := func(_ int, err error) {
			sub.Close()
			f.ended <- err
		}
		// ?expires_in= gives the stream a time to end at, as a
		// credential's expiry does.
		var until time.Time
		if d, err := time.ParseDuration(r.URL.Query().Get("expires_in")); err == nil {
			until = time.Now().Add(d)
		}
		if transport.IsWebSocketUpgrade(r) {
			streamer.WebSocket(w, r, sub, until, nil, done)
			return
		}
		streamer.SSE(w, r, sub, until, done)
	}))
	f.srv.Listener = streamer.Listen(f.srv.Listener)
	for _, set := range setup {
		set(f.srv)
	}
	if f.srv.TLS != nil {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(func() {
		f.hub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := streamer.Wait(ctx); err != nil {
			t.Errorf("streams still running 10 s after the hub closed: %v", err)
		}
	})
	t.Cleanup(f.srv.Close)
	return f
}

// appendStep stores the next event with a message of the given size and
// publishes it, as the jobs service does.
func (f *fixture) appendStep(t *testing.T, step, size int, status stephub.Status) {
	t.Helper()
	a, err := f.store.AppendEvent(context.Background(), f.videoID, stephub.Step{
		Step: step, Message: strings.Repeat("m", size), Progress: 0, Status: status,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.hub.Publish(&hub.Event{VideoID: f.videoID, Seq: a.Event.ID, Data: a.Payload, Terminal: status.Terminal()})
}

func (f *fixture) open(t *testing.T, lastEventID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// withTLS serves the fixture over TLS, with HTTP/2.
func withTLS(s *httptest.Server) {
	s.EnableHTTP2 = true
	s.TLS = &tls.Config{}
}

// withSendBuffer gives the server's sockets a send buffer of n bytes, so
// that a peer that stops reading stalls its stream soon.
func withSendBuffer(n int) func(*httptest.Server) {
	return func(s *httptest.Server) { s.Listener = sendBufferListener{s.Listener, n} }
}

type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// ids reads SSE lines from r and returns the ids, until it has n of them
// or, for n 0, until the stream ends. It reports a malformed id with
// t.Error, not t.Fatal, so that it may run on a goroutine of the test's.
func ids(t *testing.T, r *bufio.Reader, n int) []int64 {
	t.Helper()
	var out []int64
	for n == 0 || len(out) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			return out
		}
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Errorf("id line %q: %v", line, err)
				return out
			}
			out = append(out, id)
		}
	}
	return out
}

// TestSSEFrames compares the bytes of a whole stream with a golden file:
// headers, the retry hint, id and data lines, a heartbeat, and the end of
// the stream after the terminal event.
func TestSSEFrames(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{PingInterval: 50 * time.Millisecond})
	resp := f.open(t, "")
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
	r := bufio.NewReader(resp.Body)
	var got strings.Builder
	readFrame := func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading: %v (so far %q)", err, got.String())
			}
			got.WriteString(line)
			if line == "\n" {
				return
			}
		}
	}
	readFrame() // retry
	f.hub.Publish(&hub.Event{VideoID: f.videoID, Seq: 1, Data: []byte(`{"id":1,"step":1,"message":"🔍 one"}`)})
	readFrame()
	readFrame() // a heartbeat while nothing happens
	f.hub.Publish(&hub.Event{VideoID: f.videoID, Seq: 2, Data: []byte(`{"id":2,"status":"completed"}`), Terminal: true})
	readFrame()
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Errorf("after the terminal event: %q, %v; want the stream closed", rest, err)
	}
	if err := <-f.ended; err != nil {
		t.Errorf("SSE = %v; want nil after the terminal event", err)
	}

	golden := "testdata/stream.golden"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.WriteFile(golden, []byte(got.String()), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("stream =\n%s\nwant\n%s", got.String(), want)
	}
}

// TestSlowConsumerDoesNotDelayOthers opens a reader that stops reading and
// one that keeps up. The stalled one is dropped once its buffer fills, while
// the other receives everything; the stalled one then resumes by
// Last-Event-ID and misses nothing.
func TestSlowConsumerDoesNotDelayOthers(t *testing.T) {
	obs := &dropCounter{}
	f := newFixture(t, hub.Options{Buffer: 8, Observer: obs}, transport.Config{WriteTimeout: 500 * time.Millisecond})
	stalled := f.open(t, "")
	fast := f.open(t, "")
	fastIDs := make(chan []int64, 1)
	go func() { fastIDs <- ids(t, bufio.NewReader(fast.Body), 0) }()

	// Enough bytes to fill the stalled reader's socket buffers and then its
	// hub buffer: 300 events of 64 KiB.
	const events = 300
	for i := 1; i <= events; i++ {
		status := stephub.StatusProcessing
		if i == events {
			status = stephub.StatusCompleted
		}
		f.appendStep(t, 1, 64<<10, status)
	}
	select {
	case got := <-fastIDs:
		if len(got) != events || got[0] != 1 || got[events-1] != events {
			t.Fatalf("fast reader got %d ids; want 1..%d", len(got), events)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("fast reader did not finish within 30s: the stalled one held it up")
	}

	// The hub dropped the stalled reader. Its writer, blocked on the full
	// socket, learns it when the write deadline passes, or at its next
	// receive if the write went through.
	var slowErr error
	for range 2 {
		if err := <-f.ended; err != nil {
			slowErr = err
		}
	}
	var netErr net.Error
	if !errors.Is(slowErr, hub.ErrSlowConsumer) && !(errors.As(slowErr, &netErr) && netErr.Timeout()) {
		t.Errorf("stalled stream ended with %v; want ErrSlowConsumer or a write timeout", slowErr)
	}
	if n := obs.n.Load(); n != 1 {
		t.Errorf("%d drops counted; want 1", n)
	}

	// It reads what reached it, then resumes from there.
	seen := ids(t, bufio.NewReader(stalled.Body), 0)
	if len(seen) == events {
		t.Fatalf("the stalled reader got everything at once; the test did not stall it")
	}
	for i, id := range seen {
		if id != int64(i+1) {
			t.Fatalf("stalled reader got id %d at %d; want %d", id, i, i+1)
		}
	}
	// Like EventSource, it reconnects with the last id it saw until the
	// stream completes: a busy machine may time out a resumed stream's
	// 64 KiB writes too, and each resume must still pick up exactly where
	// the last one stopped.
	for resumes := 0; len(seen) < events; resumes++ {
		if resumes == 20 {
			t.Fatalf("after %d resumes: %d ids; want %d", resumes, len(seen), events)
		}
		resumed := f.open(t, fmt.Sprint(len(seen)))
		rest := ids(t, bufio.NewReader(resumed.Body), 0)
		for _, id := range rest {
			if id != int64(len(seen)+1) {
				t.Fatalf("resumed after %d: got id %d; want %d", len(seen), id, len(seen)+1)
			}
			seen = append(seen, id)
		}
		if err := <-f.ended; err != nil && len(seen) == events {
			t.Errorf("resumed stream ended with %v after the terminal event; want nil", err)
		}
	}
}

type dropCounter struct{ n atomic.Int64 }

func (d *dropCounter) SubscriberDropped(string) { d.n.Add(1) }

func TestLastEventID(t *testing.T) {
	for _, tc := range []struct {
		header, query string
		id            int64
		bad           bool
	}{
		{"", "", 0, false},
		{"7", "", 7, false},
		{"", "5", 5, false},
		{"7", "5", 7, false}, // the header wins
		{"0", "", 0, false},
		{"x", "5", 0, true},
		{"-1", "", 0, true},
		{"", "1.5", 0, true},
	} {
		r := httptest.NewRequest("GET", "/s?last_event_id="+tc.query, nil)
		if tc.header != "" {
			r.Header.Set("Last-Event-ID", tc.header)
		}
		id, err := transport.LastEventID(r)
		if id != tc.id || (err != nil) != tc.bad {
			t.Errorf("header %q, query %q: got %d, %v; want %d, bad=%v", tc.header, tc.query, id, err, tc.id, tc.bad)
		}
	}
}
