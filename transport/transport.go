// Package transport writes a hub subscription to a client: the wire formats
// of Server-Sent Events and WebSocket, heartbeats and write deadlines. It
// knows nothing of users, videos or storage.
//
// A stream outlives the HTTP handler that opened it: once its connection is
// taken over (hijacked), the stream runs on goroutines the Streamer owns and
// the handler returns. That gives back the handler's stack, grown deep by
// authentication and database work, and net/http's per-connection buffers,
// so that an idle stream costs a few kilobytes; and it lets SSE write to the
// socket without chunked encoding. A WebSocket stream has a writer goroutine
// of its own; an SSE stream over TCP is written by a small pool shared by
// all (see pool.go), and each stream of either kind has a goroutine that
// reads its connection to notice the client leaving. Wait waits for them
// all.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stephub/stephub/hub"
)

// Defaults of Config's zero fields.
const (
	DefaultPingInterval = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	// maxBatch bounds how many queued events go out in one write.
	maxBatch = 64
)

// Observer counts deliveries; metrics implements it.
type Observer interface {
	Delivered(transport string, n int)
}

// Config tunes a stream. The zero value is ready to use.
type Config struct {
	// PingInterval is how often an idle stream sends a heartbeat.
	PingInterval time.Duration
	// WriteTimeout bounds each write, so that a peer that stopped reading is
	// noticed and let go.
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
	upgrader websocket.Upgrader
	buffers  sync.Pool // *[]byte of SSE frames, shared between writes
	batches  sync.Pool // *[]*hub.Event, shared between writes
	pool     writerPool
	live     liveGroup
}

// New returns a Streamer with cfg.
func New(cfg Config) *Streamer {
	st := &Streamer{cfg: cfg, upgrader: websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		// Shared between writes, so that an idle connection holds no
		// write buffer.
		WriteBufferPool: &sync.Pool{},
		// The caller checks the Origin before upgrading, against the
		// service's own list.
		CheckOrigin: func(*http.Request) bool { return true },
	}}
	st.beats = newHeartbeat(st, cfg.pingInterval())
	st.pool.st = st
	return st
}

// Done is told, once, how many events a stream sent and how it ended: nil
// after the terminal event, context.Canceled when the client left,
// hub.ErrClosed or hub.ErrSlowConsumer when the hub ended it, or a
// *WriteError when the peer could not be written to. It must not block: it
// may run on a goroutine that writes many streams.
type Done func(sent int, err error)

// WriteError is a failed write to a peer: it is gone, or stopped reading
// past the write deadline.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "transport: write: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

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

// getBuffer returns a frame buffer from the Streamer's pool; its length is
// whatever was last in it.
func (st *Streamer) getBuffer() *[]byte {
	if bp, ok := st.buffers.Get().(*[]byte); ok {
		return bp
	}
	return new([]byte)
}

// goLive runs f on a goroutine the Streamer owns.
func (st *Streamer) goLive(f func()) {
	st.live.add()
	go func() {
		defer st.live.done()
		f()
	}()
}

// liveGroup counts the goroutines a Streamer owns. Unlike a sync.WaitGroup,
// it may count up from zero while someone waits, as when a handler still
// opening a stream at shutdown starts its goroutines.
type liveGroup struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n falls to zero
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
// else the last_event_id query parameter. A reconnecting EventSource sends the
// header while its URL keeps the query it first had, so the header wins. ok is
// false when the client sent neither.
func LastEventID(r *http.Request) (id int64, ok bool, err error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, false, nil
	}
	id, err = strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return 0, true, ErrBadLastEventID
	}
	return id, true, nil
}

// sink is one connection's wire format.
type sink interface {
	// send writes events, in order, and pushes them to the peer.
	send(events []*hub.Event) error
}

// errClientGone ends a stream whose client left: whoever noticed closed the
// subscription.
var errClientGone = fmt.Errorf("transport: the client left: %w", context.Canceled)

// pump sends the subscription's backlog, then its live events as they come,
// in batches; ctx bounds the reads of stored events that fill gaps. The
// Streamer's heartbeat pings the connection meanwhile. It returns how many events it sent, and why it
// stopped: nil after the terminal event, errClientGone when the
// subscription was closed because the client left, the hub's reason when
// the hub ended it, or a *WriteError.
//
// A stream has one wake-up source, the subscription: whoever notices the
// client leaving, or the heartbeat failing, closes the subscription or the
// connection rather than cancelling a context, which keeps the wait cheap.
func (st *Streamer) pump(ctx context.Context, sub *hub.Subscription, s sink, name string) (sent int, err error) {
	cfg := st.cfg
	deliver := func(batch []*hub.Event) (done bool, err error) {
		if len(batch) == 0 {
			return false, nil
		}
		if err := s.send(batch); err != nil {
			return true, &WriteError{err}
		}
		sent += len(batch)
		if cfg.Observer != nil {
			cfg.Observer.Delivered(name, len(batch))
		}
		return batch[len(batch)-1].Terminal, nil
	}
	if done, err := deliver(sub.Backlog()); done || err != nil {
		return sent, err
	}

	for {
		e, ok := <-sub.C()
		if !ok {
			if err := sub.Err(); err != nil {
				return sent, err
			}
			return sent, errClientGone
		}
		// Batches are pooled rather than kept: most streams sit idle most
		// of the time.
		bp := st.getBatch()
		batch, err := collect(ctx, sub, *bp, e)
		var done bool
		if err == nil {
			done, err = deliver(batch)
		}
		*bp = batch
		st.putBatch(bp)
		if done || err != nil {
			return sent, err
		}
	}
}

// collect accepts e and the events already queued behind it, up to maxBatch,
// so that a burst goes out in one write.
func collect(ctx context.Context, sub *hub.Subscription, dst []*hub.Event, e *hub.Event) ([]*hub.Event, error) {
	dst, err := sub.Accept(ctx, dst, e)
	for err == nil && len(dst) < maxBatch {
		select {
		case e, ok := <-sub.C():
			if !ok {
				return dst, nil // pump's next receive reports why
			}
			dst, err = sub.Accept(ctx, dst, e)
		default:
			return dst, nil
		}
	}
	return dst, err
}
