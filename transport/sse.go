package transport

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/stephub/stephub/hub"
)

// SSE is the transport label of Server-Sent Events streams.
const SSE = "sse"

// sseHeaders are the headers of every SSE response.
var sseHeaders = [][2]string{
	{"Content-Type", "text/event-stream"},
	{"Cache-Control", "no-cache"},
	{"X-Accel-Buffering", "no"},
}

// SSE streams the subscription as Server-Sent Events: a retry hint, then
// every event as "id:" and "data:" lines, with a comment line as heartbeat.
// The stream ends after the terminal event, when the client leaves, when
// the hub ends the subscription, or at until unless that is zero (the
// expiry of the client's credential), once what is queued is written; a
// browser then reconnects with Last-Event-ID and misses nothing. done is
// told how it ended.
//
// Over plain HTTP/1.x the stream takes the connection over and SSE returns
// at once; the body is chunked for HTTP/1.1, and the connection serves the
// client's next request after a clean end if the Streamer has a Listener.
// Otherwise (HTTP/2, TLS) SSE writes through w and returns when the stream
// ends.
func (st *Streamer) SSE(w http.ResponseWriter, r *http.Request, sub *hub.Subscription, until time.Time, done Done) {
	if r.ProtoMajor == 1 && r.TLS == nil {
		if conn, brw, err := http.NewResponseController(w).Hijack(); err == nil {
			// A request the client sent behind this one is in brw, which
			// the stream does not read: the connection ends with it.
			pipelined := brw.Reader.Buffered() > 0
			st.sseOverConn(conn, r, w.Header(), pipelined, sub, until, done)
			return
		}
	}
	st.sseOverWriter(w, r, sub, until, done)
}

// sseOverConn writes the response head itself, then streams on the
// connection, which a goroutine reads to notice the client leaving.
func (st *Streamer) sseOverConn(conn net.Conn, r *http.Request, header http.Header, pipelined bool, sub *hub.Subscription, until time.Time, done Done) {
	w := wireSSEChunked
	if !r.ProtoAtLeast(1, 1) {
		w = wireSSE // an HTTP/1.0 client reads the body to the end of the connection
	}
	s := st.newStream(context.Background(), sub, w, done)
	s.takeOver(conn)
	s.keepAlive = w == wireSSEChunked && !r.Close && !pipelined && st.reuse.Load() != nil

	for _, kv := range sseHeaders {
		header.Set(kv[0], kv[1])
	}
	if w == wireSSEChunked {
		header.Set("Transfer-Encoding", "chunked")
	}
	if !s.keepAlive {
		header.Set("Connection", "close")
	}
	header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	head := append(make([]byte, 0, 512), "HTTP/1.1 200 OK\r\n"...)
	for k, vs := range header {
		for _, v := range vs {
			head = append(append(append(append(head, k...), ": "...), v...), "\r\n"...)
		}
	}
	head = w.appendPreamble(append(head, "\r\n"...))
	s.start(head, until, s.readSSE)
}

// readSSE reads, and drops, whatever the client sends until the
// connection closes or the writer stops it: a browser sends nothing on an
// event stream, so the read returns when the client leaves.
func (s *stream) readSSE() {
	var buf [64]byte
	quiet := true // nothing came: the connection may serve another request
	for {
		n, err := s.conn.Read(buf[:])
		quiet = quiet && n == 0
		if err != nil {
			fit := quiet && isTimeout(err) // stopped by the writer at a clean end
			if fit {
				s.left.Store(leftDone)
			} else {
				s.left.Store(leftGone)
			}
			s.sub.Close()
			s.letGo(fit, false)
			return
		}
	}
}

// SSEHead writes the head that an SSE stream starts with, and nothing more:
// the answer to a HEAD request for a stream.
func SSEHead(w http.ResponseWriter) {
	for _, kv := range sseHeaders {
		w.Header().Set(kv[0], kv[1])
	}
	w.WriteHeader(http.StatusOK)
}

// sseOverWriter streams through an http.ResponseWriter that is not taken
// over, as with HTTP/2, on the handler's goroutine: it returns when the
// stream ends.
func (st *Streamer) sseOverWriter(w http.ResponseWriter, r *http.Request, sub *hub.Subscription, until time.Time, done Done) {
	SSEHead(w)
	rc := http.NewResponseController(w)
	s := st.newStream(r.Context(), sub, wireSSE, done)
	s.w, s.flush, s.setDeadline = w, rc.Flush, rc.SetWriteDeadline
	stop := context.AfterFunc(r.Context(), sub.Close) // the client left
	defer stop()
	s.start(wireSSE.appendPreamble(nil), until, nil)
}
