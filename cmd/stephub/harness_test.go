package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/auth"
	"github.com/stephub/stephub/internal/logbuf"
	"github.com/stephub/stephub/pipeline"
)

// Secrets of the servers the tests start.
const (
	testJWTSecret   = "test-secret"
	testAdminToken  = "admin-token"
	testWorkerToken = "worker-token"
)

// testServer is a stephub serve running in-process on a loopback port, as
// `stephub serve` would, through run.
type testServer struct {
	URL string
	// client reaches the server; nil means http.DefaultClient.
	client *http.Client
	logs   *logbuf.Buffer
	out    *logbuf.Buffer // what serve prints on stdout
	stop   context.CancelFunc
	done   chan error
	once   sync.Once
}

var listeningLine = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// startServer runs `stephub serve` with the test secrets, any port, and env
// on top; it is stopped at the end of the test.
func startServer(t *testing.T, databaseURL string, env map[string]string) *testServer {
	t.Helper()
	vars := map[string]string{
		"ADDR":         "127.0.0.1:0",
		"DATABASE_URL": databaseURL,
		"JWT_SECRET":   testJWTSecret,
		"ADMIN_TOKEN":  testAdminToken,
		"WORKER_TOKEN": testWorkerToken,
		"STEP_DELAY":   "0",
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{logs: &logbuf.Buffer{}, out: &logbuf.Buffer{}, stop: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, []string{"serve"}, func(k string) string { return vars[k] }, s.out, s.logs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.URL == "" {
		if m := listeningLine.FindStringSubmatch(s.logs.String()); m != nil {
			s.URL = "http://" + m[1]
			break
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited before listening: %v\n%s", err, s.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not listening after 10s:\n%s", s.logs.String())
		}
	}
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Stop shuts the server down as SIGTERM would and waits for run to return.
// It is safe to call more than once.
func (s *testServer) Stop(t *testing.T) {
	t.Helper()
	s.once.Do(func() {
		s.stop()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("run returned %v\n%s", err, s.logs.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("server did not stop within 20s:\n%s", s.logs.String())
		}
	})
}

// mustSigner returns a signer for secret or fails the test.
func mustSigner(t *testing.T, secret string) *auth.Signer {
	t.Helper()
	s, err := auth.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// userToken returns a valid token for the user sub.
func userToken(t *testing.T, sub string) string {
	t.Helper()
	tok, err := mustSigner(t, testJWTSecret).Issue(sub, sub+"@example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call sends a request and returns the response with its body read.
func call(t *testing.T, method, url, token string, body any, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	return callWith(t, http.DefaultClient, method, url, token, body, header)
}

// callWith is call through client.
func callWith(t *testing.T, client *http.Client, method, url, token string, body any, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, data
}

// decodeJSON decodes data into a T or fails the test.
func decodeJSON[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return v
}

// video is what the tests read of the API's video JSON.
type video struct {
	ID       int64   `json:"id"`
	Status   string  `json:"status"`
	Step     int     `json:"step"`
	Progress int     `json:"progress"`
	VideoURL *string `json:"video_url"`
}

// event is what the tests read of an event's JSON.
type event struct {
	ID       int64    `json:"id"`
	Step     int      `json:"step"`
	Message  string   `json:"message"`
	Progress int      `json:"progress"`
	Status   string   `json:"status"`
	VideoURL *string  `json:"video_url"`
	ETA      *float64 `json:"eta_seconds"`
}

// generate creates a video for the token's user and returns it.
func generate(t *testing.T, s *testServer, token string) video {
	t.Helper()
	resp, body := call(t, "POST", s.URL+"/api/v1/videos/generate", token,
		map[string]any{"prompt": "A cat surfing a wave at sunset", "model": "sora-2"}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("generate: status %d, body %s; want 201", resp.StatusCode, body)
	}
	return decodeJSON[video](t, body)
}

// credits returns the token's user's balance.
func credits(t *testing.T, s *testServer, token string) int64 {
	t.Helper()
	resp, body := call(t, "GET", s.URL+"/api/v1/users/me", token, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("users/me: status %d, body %s", resp.StatusCode, body)
	}
	return decodeJSON[struct {
		Credits int64 `json:"credits"`
	}](t, body).Credits
}

// sseStream is an open SSE response being read.
type sseStream struct {
	resp  *http.Response
	r     *bufio.Reader
	retry string
}

// openStream opens a video's SSE stream with token in the query;
// lastEventID, if not empty, is sent as the Last-Event-ID header.
func openStream(t *testing.T, s *testServer, token string, videoID int64, lastEventID string) *sseStream {
	t.Helper()
	return openSSE(t, fmt.Sprintf("%s/api/v1/videos/%d/stream?token=%s", s.URL, videoID, token), lastEventID, nil)
}

// openSSE opens the SSE stream at url with header; lastEventID, if not
// empty, is sent as the Last-Event-ID header.
func openSSE(t *testing.T, url, lastEventID string, header http.Header) *sseStream {
	t.Helper()
	return openSSEWith(t, http.DefaultClient, url, lastEventID, header)
}

// openSSEWith is openSSE through client.
func openSSEWith(t *testing.T, client *http.Client, url, lastEventID string, header http.Header) *sseStream {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: status %d, body %s; want 200", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("stream Content-Type = %q; want text/event-stream", ct)
	}
	st := &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
	t.Cleanup(func() { st.Close() })
	return st
}

// Close drops the connection, as a tab that goes away does.
func (st *sseStream) Close() { st.resp.Body.Close() }

// errStreamEnd is returned by next when the server closed the stream.
var errStreamEnd = errors.New("stream ended")

// next returns the next event, skipping retry hints and comments; a
// malformed stream fails the test.
func (st *sseStream) next(t *testing.T) (id string, ev event, err error) {
	t.Helper()
	id, ev, err = st.nextQuiet()
	if errors.Is(err, errMalformed) {
		t.Fatal(err)
	}
	return id, ev, err
}

// errMalformed is returned by nextQuiet for a stream that breaks the format.
var errMalformed = errors.New("malformed SSE stream")

// nextQuiet is next for goroutines that may not fail the test themselves.
func (st *sseStream) nextQuiet() (id string, ev event, err error) {
	var data string
	for {
		line, err := st.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && line == "" {
				return "", event{}, errStreamEnd
			}
			return "", event{}, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data != "" {
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					return "", event{}, fmt.Errorf("%w: data %q: %v", errMalformed, data, err)
				}
				return id, ev, nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "retry: "):
			st.retry = strings.TrimPrefix(line, "retry: ")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		default:
			return "", event{}, fmt.Errorf("%w: line %q", errMalformed, line)
		}
	}
}

// take reads the next n events, failing the test if the stream ends first.
func (st *sseStream) take(t *testing.T, n int) []event {
	t.Helper()
	out := make([]event, 0, n)
	for len(out) < n {
		_, ev, err := st.next(t)
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

// readAll reads events until the server closes the stream.
func (st *sseStream) readAll(t *testing.T) []event {
	t.Helper()
	var out []event
	for {
		id, ev, err := st.next(t)
		if errors.Is(err, errStreamEnd) {
			return out
		}
		if err != nil {
			t.Fatalf("reading stream: %v", err)
		}
		if id != fmt.Sprint(ev.ID) {
			t.Errorf("SSE id %q differs from the event's id %d", id, ev.ID)
		}
		out = append(out, ev)
	}
}

// checkComplete fails unless events are exactly a whole mock job: ids and
// steps 1..9 in order, the last completed with the video's URL.
func checkComplete(t *testing.T, who string, events []event) {
	t.Helper()
	if len(events) != 9 {
		t.Fatalf("%s: got %d events %v; want 9", who, len(events), events)
	}
	for i, ev := range events {
		if ev.ID != int64(i+1) || ev.Step != i+1 {
			t.Errorf("%s: event %d has id %d, step %d; want %d, %d", who, i, ev.ID, ev.Step, i+1, i+1)
		}
	}
	last := events[8]
	if last.Status != "completed" || last.VideoURL == nil || *last.VideoURL != "/uploads/videos/mock-video.mp4" || last.Progress != 100 {
		t.Errorf("%s: last event %+v; want completed, progress 100, video_url /uploads/videos/mock-video.mp4", who, last)
	}
}

// stephubSteps is how many steps a whole worker job posts: the working
// steps and the terminal one.
const stephubSteps = stephub.TotalSteps + 1

// workerStep is what a worker posts for the mock pipeline's step n,
// 1..stephubSteps; the last one completes the job.
func workerStep(n int) map[string]any {
	st := pipeline.Step(n)
	body := map[string]any{"step": st.Step, "message": st.Message, "progress": st.Progress}
	if st.Status.Terminal() {
		body["status"], body["video_url"] = st.Status, st.VideoURL
	}
	return body
}

// postWorkerJob posts steps first..last of a video as a worker, pausing
// before each but the first; step stephubSteps completes the job.
func postWorkerJob(t *testing.T, s *testServer, videoID int64, pause time.Duration, first, last int) {
	t.Helper()
	for n := first; n <= last; n++ {
		if n > first {
			time.Sleep(pause)
		}
		postWorkerStep(t, s, videoID, workerStep(n))
	}
}

// postWorkerStep posts one step of a video as a worker; body is what call
// sends: a JSON string or a value to encode.
func postWorkerStep(t *testing.T, s *testServer, videoID int64, body any) {
	t.Helper()
	resp, data := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/events", s.URL, videoID), testWorkerToken, body, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("worker post %v: %d %s; want 202", body, resp.StatusCode, data)
	}
}
