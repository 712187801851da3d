package transport_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/transport"
)

// rawConn is a client connection read and written byte for byte.
type rawConn struct {
	net.Conn
	r *textproto.Reader
}

func (f *fixture) dialRaw(t *testing.T) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{conn, textproto.NewReader(bufio.NewReader(conn))}
}

// request sends a GET for path and reads the answer's status line and
// header.
func (c *rawConn) request(t *testing.T, proto, path string) (status string, header textproto.MIMEHeader) {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s %s\r\nHost: stephub\r\n\r\n", path, proto); err != nil {
		t.Fatal(err)
	}
	status, err := c.r.ReadLine()
	if err != nil {
		t.Fatalf("status line: %v", err)
	}
	header, err = c.r.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	return status, header
}

// chunk reads one chunk of a chunked body; of the last chunk, which is
// empty, it reads the empty trailer too.
func (c *rawConn) chunk(t *testing.T) string {
	t.Helper()
	line, err := c.r.ReadLine()
	if err != nil {
		t.Fatalf("chunk size: %v", err)
	}
	n, err := strconv.ParseUint(line, 16, 32)
	if err != nil {
		t.Fatalf("chunk size line %q: %v", line, err)
	}
	data := make([]byte, n+2)
	if _, err := io.ReadFull(c.r.R, data); err != nil {
		t.Fatalf("chunk of %d bytes: %v", n, err)
	}
	if string(data[n:]) != "\r\n" {
		t.Fatalf("chunk %q does not end with CRLF", data)
	}
	return string(data[:n])
}

// TestSSEChunkedAndKeptAlive reads an HTTP/1.1 stream byte for byte: its
// body is chunked, one chunk per write, so that a reader that goes chunk
// by chunk has each event at once; it ends with the last chunk after the
// terminal event; and the connection then serves the next request, and
// another stream after it, as keep-alive does.
func TestSSEChunkedAndKeptAlive(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{PingInterval: time.Hour})
	c := f.dialRaw(t)
	status, header := c.request(t, "HTTP/1.1", "/")
	if status != "HTTP/1.1 200 OK" || header.Get("Transfer-Encoding") != "chunked" || header.Get("Connection") != "" ||
		header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("head: %s %v; want 200, chunked, kept alive, text/event-stream", status, header)
	}
	if got := c.chunk(t); got != "retry: 3000\n\n" {
		t.Errorf("first chunk %q; want the retry hint", got)
	}
	f.appendStep(t, 1, 10, stephub.StatusProcessing)
	if got := c.chunk(t); !strings.HasPrefix(got, "id: 1\ndata: {") || !strings.HasSuffix(got, "}\n\n") {
		t.Errorf("event chunk %q; want event 1 whole", got)
	}
	f.appendStep(t, 2, 10, stephub.StatusCompleted)
	if got := c.chunk(t); !strings.HasPrefix(got, "id: 2\n") {
		t.Errorf("event chunk %q; want event 2", got)
	}
	// The last chunk, and the empty trailer after it.
	if got := c.chunk(t); got != "" {
		t.Errorf("after the terminal event: chunk %q; want the last, empty one", got)
	}
	if err := <-f.ended; err != nil {
		t.Errorf("stream ended with %v; want nil", err)
	}

	status, header = c.request(t, "HTTP/1.1", "/hello")
	if status != "HTTP/1.1 200 OK" {
		t.Fatalf("the next request on the connection: %s %v", status, header)
	}
	body := make([]byte, len("hello"))
	if _, err := io.ReadFull(c.r.R, body); err != nil || string(body) != "hello" {
		t.Fatalf("the next request's body: %q, %v", body, err)
	}
	status, _ = c.request(t, "HTTP/1.1", "/")
	if status != "HTTP/1.1 200 OK" || c.chunk(t) != "retry: 3000\n\n" {
		t.Fatalf("a second stream on the connection: %s", status)
	}
	// The backlog goes out in one write, so in one chunk.
	if got := c.chunk(t); !strings.HasPrefix(got, "id: 1\n") || !strings.Contains(got, "\n\nid: 2\n") {
		t.Fatalf("the second stream: %q; want events 1 and 2", got)
	}
	if c.chunk(t) != "" {
		t.Error("the second stream did not end after its terminal event")
	}
	<-f.ended
}

// TestSSEToHTTP10Client answers an HTTP/1.0 request, which knows no
// chunks, with a body that the end of the connection delimits.
func TestSSEToHTTP10Client(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{PingInterval: time.Hour})
	f.appendStep(t, 1, 10, stephub.StatusProcessing)
	f.appendStep(t, 2, 10, stephub.StatusCompleted)
	c := f.dialRaw(t)
	status, header := c.request(t, "HTTP/1.0", "/")
	if status != "HTTP/1.1 200 OK" || header.Get("Transfer-Encoding") != "" || header.Get("Connection") != "close" {
		t.Fatalf("head: %s %v; want 200, not chunked, Connection: close", status, header)
	}
	body, err := io.ReadAll(c.r.R)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(body), "retry: 3000\n\nid: 1\ndata: {") || !strings.Contains(string(body), "\n\nid: 2\ndata: {") {
		t.Errorf("body %q; want the retry hint and events 1 and 2 as plain lines", body)
	}
	if err := <-f.ended; err != nil {
		t.Errorf("stream ended with %v; want nil", err)
	}
}

// TestSSEClientAskingToClose gets a chunked stream whose connection
// closes after it, as its Connection: close asked.
func TestSSEClientAskingToClose(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{})
	f.appendStep(t, 1, 10, stephub.StatusCompleted)
	req, _ := http.NewRequest("GET", f.srv.URL, nil)
	req.Close = true
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !resp.Close || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("Close %v, Transfer-Encoding %v; want a chunked answer that closes", resp.Close, resp.TransferEncoding)
	}
	if got := ids(t, bufio.NewReader(resp.Body), 0); len(got) != 1 {
		t.Errorf("ids %v; want [1]", got)
	}
	if err := <-f.ended; err != nil {
		t.Errorf("stream ended with %v; want nil", err)
	}
}

// TestSSEOverTLSAndHTTP2 streams through net/http's own writers, on
// HTTP/2 and on HTTP/1.1 over TLS: every event in order, pings while
// idle, and the end after the terminal event.
func TestSSEOverTLSAndHTTP2(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		f := newFixture(t, hub.Options{}, transport.Config{PingInterval: 50 * time.Millisecond}, withTLS)
		client := f.srv.Client()
		if !h2 {
			client.Transport.(*http.Transport).ForceAttemptHTTP2 = false
			client.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := client.Get(f.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if h2 != (resp.ProtoMajor == 2) {
			t.Fatalf("HTTP/2 %v: answered over %s", h2, resp.Proto)
		}
		r := bufio.NewReader(resp.Body)
		f.appendStep(t, 1, 10, stephub.StatusProcessing)
		pings := 0
		for pings < 2 {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", resp.Proto, err)
			}
			if line == ": ping\n" {
				pings++
			}
		}
		f.appendStep(t, 2, 10, stephub.StatusCompleted)
		if got := ids(t, r, 0); len(got) != 1 || got[0] != 2 {
			t.Errorf("%s: ids after the pings %v; want [2]", resp.Proto, got)
		}
		resp.Body.Close()
		if err := <-f.ended; err != nil {
			t.Errorf("%s: stream ended with %v; want nil", resp.Proto, err)
		}
	}
}

// TestSSEPipelinedRequestClosesConnection sends a second request behind
// the stream's, in the same write: net/http has read it with the first, so
// the stream, which cannot serve it, closes the connection after its end
// rather than hand back a connection whose next request is gone.
func TestSSEPipelinedRequestClosesConnection(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{PingInterval: time.Hour})
	f.appendStep(t, 1, 10, stephub.StatusCompleted)
	c := f.dialRaw(t)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: stephub\r\n\r\nGET /hello HTTP/1.1\r\nHost: stephub\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	status, err := c.r.ReadLine()
	if err != nil || status != "HTTP/1.1 200 OK" {
		t.Fatalf("status line %q, %v", status, err)
	}
	header, err := c.r.ReadMIMEHeader()
	if err != nil || header.Get("Connection") != "close" {
		t.Fatalf("head %v, %v; want Connection: close", header, err)
	}
	if got := c.chunk(t); got != "retry: 3000\n\n" {
		t.Errorf("first chunk %q", got)
	}
	if got := c.chunk(t); !strings.HasPrefix(got, "id: 1\n") {
		t.Errorf("event chunk %q; want event 1", got)
	}
	if got := c.chunk(t); got != "" {
		t.Errorf("chunk %q; want the last one", got)
	}
	if rest, err := io.ReadAll(c.r.R); err != nil || len(rest) != 0 {
		t.Errorf("after the stream: %q, %v; want the connection closed", rest, err)
	}
	if err := <-f.ended; err != nil {
		t.Errorf("stream ended with %v; want nil", err)
	}
}
