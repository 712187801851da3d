package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/stephub/stephub/hub"
)

// SSE is the transport label of Server-Sent Events streams.
const SSE = "sse"

// sseRetry tells EventSource how long to wait before reconnecting.
const sseRetry = "retry: 3000\n\n"

// sseHeaders are the headers of every SSE response.
var sseHeaders = [][2]string{
	{"Content-Type", "text/event-stream"},
	{"Cache-Control", "no-cache"},
	{"X-Accel-Buffering", "no"},
}

// SSE streams the subscription as Server-Sent Events: a retry hint, then
// every event as "id:" and "data:" lines, with a comment line as heartbeat.
// The stream ends after the terminal event, when the client leaves, or when
// the hub ends the subscription; ending closes the response, and a browser
// then reconnects with Last-Event-ID and misses nothing. done is told how
// it ended.
//
// Over HTTP/1.1 the stream takes the connection over and SSE returns at
// once; otherwise (HTTP/2) it streams through w and returns when it ends.
func (st *Streamer) SSE(w http.ResponseWriter, r *http.Request, sub *hub.Subscription, done Done) {
	if r.ProtoMajor == 1 {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			st.sseOverConn(conn, w.Header(), sub, done)
			return
		}
	}
	done(st.sseOverWriter(w, r, sub))
}

// sseOverConn writes the response head itself and streams through the
// writer pool, or, on a connection the pool cannot write (TLS), on
// goroutines of its own: a writer, and a reader that notices the client
// leaving.
func (st *Streamer) sseOverConn(conn net.Conn, header http.Header, sub *hub.Subscription, done Done) {
	head := []byte("HTTP/1.1 200 OK\r\n")
	for _, kv := range sseHeaders {
		header.Set(kv[0], kv[1])
	}
	// The response ends when the stream does: no chunked encoding, and no
	// keep-alive after it.
	header.Set("Connection", "close")
	for k, vs := range header {
		for _, v := range vs {
			head = append(append(append(append(head, k...), ": "...), v...), "\r\n"...)
		}
	}
	head = append(append(head, "\r\n"...), sseRetry...)

	st.goLive(func() {
		discardUntilClosed(conn)
		sub.Close() // the client left, or the writer closed the connection
	})
	if st.sseOverSocket(conn, head, sub, done) {
		return
	}
	st.goLive(func() {
		s := st.newSSESink(conn, nil, conn.SetWriteDeadline, nil, func() { conn.Close() })
		defer s.stop()
		var sent int
		err := s.write(head)
		if err != nil {
			err = &WriteError{err}
		} else {
			sent, err = st.pump(context.Background(), sub, s, SSE)
		}
		conn.Close() // ends the reader
		done(sent, err)
	})
}

// discardUntilClosed reads, and drops, whatever the client sends until the
// connection closes: a browser sends nothing on an event stream, so the
// read returns when the client leaves.
func discardUntilClosed(conn net.Conn) {
	var buf [128]byte
	for {
		if _, err := conn.Read(buf[:]); err != nil {
			return
		}
	}
}

// sseOverWriter streams through an http.ResponseWriter that cannot be taken
// over, as with HTTP/2.
func (st *Streamer) sseOverWriter(w http.ResponseWriter, r *http.Request, sub *hub.Subscription) (sent int, err error) {
	for _, kv := range sseHeaders {
		w.Header().Set(kv[0], kv[1])
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	s := st.newSSESink(w, rc.Flush, rc.SetWriteDeadline, nil, sub.Close)
	defer s.stop()
	if err := s.write([]byte(sseRetry)); err != nil {
		return 0, &WriteError{err}
	}
	stop := context.AfterFunc(r.Context(), sub.Close) // the client left
	defer stop()
	return st.pump(r.Context(), sub, s, SSE)
}

// sseSink writes SSE frames to a connection or a ResponseWriter. Its writer
// is the stream's pump, and the heartbeat pings through it when it has been
// idle; mu keeps their writes apart.
type sseSink struct {
	st       *Streamer
	w        io.Writer
	flush    func() error // nil when writes go straight to the socket
	mu       sync.Mutex
	deadline writeDeadline
	beat     *beat
	// writeNow, if set, writes to the socket what it takes at once, without
	// waiting or a deadline; the caller holds mu.
	writeNow func([]byte) (int, error)
}

// newSSESink returns a sink registered with the heartbeat; fail ends the
// stream when a ping cannot be written. Call stop when the stream ends.
func (st *Streamer) newSSESink(w io.Writer, flush func() error, setDeadline func(time.Time) error, writeNow func([]byte) (int, error), fail func()) *sseSink {
	s := &sseSink{st: st, w: w, flush: flush, deadline: writeDeadline{set: setDeadline, timeout: st.cfg.writeTimeout()}, writeNow: writeNow}
	s.beat = st.beats.add(s.ping, fail)
	return s
}

func (s *sseSink) stop() { s.st.beats.remove(s.beat) }

func (s *sseSink) send(events []*hub.Event) error {
	bp := s.st.getBuffer()
	buf := appendFrames((*bp)[:0], events)
	err := s.write(buf)
	*bp = buf
	s.st.buffers.Put(bp)
	return err
}

var ssePing = []byte(": ping\n\n")

// errStalled is a peer whose socket cannot take a heartbeat.
var errStalled = errors.New("transport: the peer stopped reading")

// ping writes a heartbeat comment, unless the pump is writing: then the
// stream is not idle. It is the heartbeat's, so it must not wait: a peer
// that cannot take a few bytes at once, or within pingWriteTimeout where
// the socket cannot be written without waiting, is let go.
func (s *sseSink) ping() error {
	if !s.mu.TryLock() {
		return nil
	}
	defer s.mu.Unlock()
	if s.writeNow != nil {
		// Setting and clearing a deadline would cost two timer updates a
		// ping; this costs none.
		n, err := s.writeNow(ssePing)
		if err == nil && n < len(ssePing) || err == syscall.EAGAIN {
			return errStalled
		}
		return err
	}
	s.deadline.at = time.Now().Add(pingWriteTimeout)
	_ = s.deadline.set(s.deadline.at)
	return s.writeLocked(ssePing)
}

// write sends b under a deadline, so that a peer that stopped reading is
// let go.
func (s *sseSink) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline.arm()
	return s.writeLocked(b)
}

func (s *sseSink) writeLocked(b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	if s.flush != nil {
		if err := s.flush(); err != nil {
			return err
		}
	}
	// Whatever was written, the stream was not idle.
	s.beat.postpone()
	return nil
}

// writeDeadline keeps a connection's write deadline between half of timeout
// and all of it ahead, moving it only once half is used up: moving a
// deadline costs a runtime timer update, and a busy stream writes many
// times within one.
type writeDeadline struct {
	set     func(time.Time) error
	timeout time.Duration
	at      time.Time
}

// arm makes sure the next write fails if it cannot finish within half of
// timeout at least.
func (d *writeDeadline) arm() {
	now := time.Now()
	if d.at.Sub(now) > d.timeout/2 {
		return
	}
	d.at = now.Add(d.timeout)
	// Not every ResponseWriter supports deadlines (httptest's recorder
	// does not); a write still fails on a dead connection.
	_ = d.set(d.at)
}

// clear removes the deadline, for writes that never wait.
func (d *writeDeadline) clear() {
	d.at = time.Time{}
	_ = d.set(d.at)
}
