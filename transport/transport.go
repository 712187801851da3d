// Package transport writes hub subscriptions to clients, as Server-Sent
// Events or WebSocket frames, with heartbeats and write deadlines. It knows
// nothing of users, videos or storage.
//
// # One way to write a stream
//
// Every stream, whatever its protocol and connection, is written by the
// same loop (stream.go): its writer takes the events queued on its
// subscription, adds a heartbeat when one is due and the end of the
// response when the stream ends, frames them for the wire (wire.go) and
// writes them in one go. A stream has exactly one writer at a time, and
// nothing else writes to its connection: the heartbeat (heartbeat.go) only
// marks a ping as due and wakes the writer, as a new event does.
//
// A stream may be given a time to end at: the expiry of the credential
// that opened it. The heartbeat marks that end as due, in the tick after
// it, and wakes the writer, which writes what is queued and then ends the
// stream as it would after a terminal event, with ErrExpired: SSE ends its
// response, WebSocket sends close code 4001. The client reconnects with a
// fresh credential and its last event id, and misses nothing.
//
// Who the writer is depends on the connection:
//
//   - A plain TCP connection, for SSE over HTTP/1.1 and for WebSocket, is
//     taken over from net/http, whose handler then returns: that gives
//     back the handler's deep stack and net/http's buffers, so an idle
//     stream costs a few kilobytes. Its stream is written by a pool of
//     about one goroutine per CPU shared by all (pool.go), which writes
//     only what the socket takes at once. When the socket is full, or a
//     gap must be read from storage, the stream is handed to a goroutine
//     of its own until that is done. A goroutine per connection reads it,
//     to notice the client leaving (and, for WebSocket, its pongs).
//   - Any other connection (HTTP/2, HTTP/1.1 over TLS) is written by the
//     goroutine of its handler, which waits for its turn and returns only
//     once the stream has ended: nothing touches a response after its
//     handler returned.
//
// # States
//
// A stream's state says who may write it:
//
//	idle     nobody: nothing is pending. A wake-up (an event, a due ping, the
//	         subscription ending) makes it queued and hands it to its writer.
//	queued   its writer has it in line.
//	running  its writer is writing it; a wake-up makes it dirty.
//	dirty    running, and woken meanwhile: it is run again before it may
//	         become idle, so that no wake-up is lost.
//	ended    for good: the connection is closed or handed back.
//
// Write deadlines surround each write that waits, and are cleared after
// it: an idle stream has none, so HTTP/2, which resets a stream whose
// deadline passes, keeps it for as long as the job runs.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/internal/decimal"
)

// Defaults of Config's zero fields.
const (
	DefaultPingInterval = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
)

const (
	// maxBatch bounds how many queued events go out in one write.
	maxBatch = 64
	// gapFillTimeout bounds a read of missed events from storage.
	gapFillTimeout = 5 * time.Second
	// maxPooledBuffer is the largest frame buffer kept for reuse; a larger
	// one, framed for a rare burst of big events, is let go.
	maxPooledBuffer = 256 << 10
)

// Observer counts deliveries; metrics implements it.
type Observer interface {
	Delivered(transport string, n int)
}

// Config tunes a stream. The zero value is ready to use.
type Config struct {
	// PingInterval is the longest a stream stays silent: an SSE stream
	// sends a comment line after that long without a write, a WebSocket
	// stream a ping frame every interval.
	PingInterval time.Duration
	// WriteTimeout bounds each write that has to wait for the peer, so
	// that a peer that stopped reading is noticed and let go.
	WriteTimeout time.Duration
	// Observer, if set, counts delivered events.
	Observer Observer
}

func (c Config) pingInterval() time.Duration {
	if c.PingInterval > 0 {
		return c.PingInterval
	}
	return DefaultPingInterval
}

func (c Config) writeTimeout() time.Duration {
	if c.WriteTimeout > 0 {
		return c.WriteTimeout
	}
	return DefaultWriteTimeout
}

// Streamer writes subscriptions to clients over SSE and WebSocket. It is
// safe for concurrent use.
type Streamer struct {
	cfg      Config
	beats    *heartbeat
	pool     writerPool
	live     liveGroup
	upgrader websocket.Upgrader
	buffers  sync.Pool                // *[]byte of framed output, shared between writes
	batches  sync.Pool                // *[]*hub.Event, shared between writes
	reuse    atomic.Pointer[Listener] // where SSE connections go back after a clean end
}

// New returns a Streamer with cfg.
func New(cfg Config) *Streamer {
	st := &Streamer{cfg: cfg, upgrader: websocket.Upgrader{
		// The caller checks the Origin before upgrading, against the
		// service's own list.
		CheckOrigin: func(*http.Request) bool { return true },
	}}
	st.beats = newHeartbeat(&st.live, cfg.pingInterval())
	st.pool.live = &st.live
	return st
}

// Done is told, once, how many events reached the client and why the
// stream ended: nil after the terminal event; ErrExpired when its time to
// end came; an error matching context.Canceled when the client left;
// hub.ErrClosed or hub.ErrSlowConsumer when the hub ended it;
// ErrPongTimeout or ErrProtocol when a WebSocket peer stopped answering
// pings or broke the protocol (it may be wrapped); a *WriteError when the
// peer could not be written to; or the error of a failed read from
// storage. It must not block: it may run on a goroutine that writes many
// streams.
type Done func(sent int, err error)

// WriteError is a failed write to a peer: it is gone, or stopped reading
// past the write deadline.
type WriteError struct {
	Err error
	// Ping tells that only heartbeats were being written: the peer had
	// stopped reading a stream that was otherwise idle.
	Ping bool
}

func (e *WriteError) Error() string { return "transport: write: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// Timeout reports whether the write ran out of time, rather than failing
// on a broken connection.
func (e *WriteError) Timeout() bool { return isTimeout(e.Err) }

// ErrPongTimeout ends a WebSocket stream whose peer answered no ping
// within two intervals.
var ErrPongTimeout = errors.New("transport: the peer answered no ping")

// ErrExpired ends a stream whose time to end came: the credential that
// opened it expired.
var ErrExpired = errors.New("transport: the stream's credential expired")

// errClientGone ends a stream whose client left.
var errClientGone = fmt.Errorf("transport: the client left: %w", context.Canceled)

// Wait blocks until every stream has ended, or ctx ends. Streams end when
// their client leaves or the hub closes their subscription; one that starts
// while Wait waits is waited for too.
func (st *Streamer) Wait(ctx context.Context) error {
	return st.live.wait(ctx)
}

// getBatch returns an empty batch from the Streamer's pool.
func (st *Streamer) getBatch() *[]*hub.Event {
	if bp, ok := st.batches.Get().(*[]*hub.Event); ok {
		return bp
	}
	return new([]*hub.Event)
}

// putBatch empties bp, dropping its events' references, and pools it.
func (st *Streamer) putBatch(bp *[]*hub.Event) {
	clear(*bp)
	*bp = (*bp)[:0]
	st.batches.Put(bp)
}

// getBuffer returns an empty output buffer from the Streamer's pool.
func (st *Streamer) getBuffer() *[]byte {
	if bp, ok := st.buffers.Get().(*[]byte); ok {
		*bp = (*bp)[:0]
		return bp
	}
	return new([]byte)
}

// putBuffer pools bp, unless it grew too large to keep.
func (st *Streamer) putBuffer(bp *[]byte) {
	if cap(*bp) <= maxPooledBuffer {
		st.buffers.Put(bp)
	}
}

// liveGroup counts the goroutines a Streamer owns. Unlike a sync.WaitGroup,
// it may count up from zero while someone waits, as when a handler still
// opening a stream at shutdown starts its goroutines.
type liveGroup struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n falls to zero
}

// goLive runs f on a goroutine the group counts.
func (g *liveGroup) goLive(f func()) {
	g.add()
	go func() {
		defer g.done()
		f()
	}()
}

func (g *liveGroup) add() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
}

func (g *liveGroup) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 {
		close(g.idle)
	}
}

// wait returns once no goroutine is left, or ctx ends.
func (g *liveGroup) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		n, idle := g.n, g.idle
		g.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-idle: // and look again: more may have started since
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ErrBadLastEventID is returned by LastEventID for a value that is not a
// non-negative integer.
var ErrBadLastEventID = errors.New("transport: Last-Event-ID is not a non-negative integer")

// LastEventID returns where a client resumes: the Last-Event-ID header, or
// else the last_event_id query parameter; 0 when it sent neither. A
// reconnecting EventSource sends the header while its URL keeps the query it
// first had, so the header wins.
func LastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, nil
	}
	id, ok := decimal.Parse(v)
	if !ok {
		return 0, ErrBadLastEventID
	}
	return id, nil
}
