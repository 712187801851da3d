package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/testdb"
)

// slowPost opens a connection, sends the head of a POST to path that
// announces a 1000-byte body, and then one byte of it every 200 ms until
// the server answers or closes. It returns the response and when it came.
func slowPost(t *testing.T, s *testServer, path, token string) (*http.Response, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := "POST " + path + " HTTP/1.1\r\nHost: stephub\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	start := time.Now()
	if _, err := io.WriteString(conn, head+"\r\n{"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	dribbled := make(chan struct{})
	go func() {
		defer close(dribbled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := io.WriteString(conn, " "); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-dribbled }()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	took := time.Since(start)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	// The answer closes the connection: the rest of the body is not waited for.
	if n, err := br.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d more bytes after the answer; want the connection closed", n)
	}
	return resp, took
}

// TestSlowBodyWithoutTokenAnsweredAtOnce: a request that fails
// authentication is answered at once, and its connection closed, however
// slowly its body comes.
func TestSlowBodyWithoutTokenAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t, testdb.SQLite(t), nil)
	resp, took := slowPost(t, s, "/api/v1/videos/generate", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status %d; want 401", resp.StatusCode)
	}
	if took > 5*time.Second {
		t.Errorf("answered after %v; want at once, before the body", took)
	}
	if !resp.Close {
		t.Error("the answer does not say Connection: close")
	}
}

// TestSlowBodyCutOff: an authenticated request whose body trickles in is
// cut off with 408 once the body's time is up, rather than holding the
// connection for as long as the client likes.
func TestSlowBodyCutOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	v := generate(t, s, userToken(t, "alice"))
	resp, took := slowPost(t, s, fmt.Sprintf("/api/v1/videos/%d/events", v.ID), testWorkerToken)
	if resp.StatusCode != http.StatusRequestTimeout {
		body, _ := io.ReadAll(resp.Body)
		t.Errorf("status %d %s; want 408", resp.StatusCode, body)
	}
	if took < bodyTimeoutForTest || took > 3*bodyTimeoutForTest {
		t.Errorf("cut off after %v; want about %v", took, bodyTimeoutForTest)
	}
	// The server still serves, and stored nothing of the cut-off post.
	resp2, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, v.ID), userToken(t, "alice"), nil, nil)
	if got := decodeJSON[video](t, body); resp2.StatusCode != 200 || got.Step != 0 {
		t.Errorf("after the cut-off post: %d, step %d; want 200, step 0", resp2.StatusCode, got.Step)
	}
}

// bodyTimeoutForTest is the API's body timeout, which the test cannot see.
const bodyTimeoutForTest = 10 * time.Second
