package transport

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Listener accepts new connections from the listener it wraps and, besides
// them, the connections of SSE streams that ended cleanly, so that
// net/http serves the client's next request on them: keep-alive, as
// net/http gives it to the responses it writes itself.
type Listener struct {
	net.Listener
	setDeadline func(time.Time) error

	mu   sync.Mutex
	back []net.Conn // handed back, to be accepted
	// idle are the connections accepted again that have not begun a
	// request: idle keep-alive connections, which net/http does not
	// know for such, and would wait for at shutdown.
	idle   map[net.Conn]struct{}
	closed bool
}

// Listen returns ln wrapped so that the SSE streams of st hand their
// connections back to it; serve HTTP on what it returns. A listener
// without deadlines (a TCP listener has them) is returned as it is, and
// the streams' connections close when they end.
func (st *Streamer) Listen(ln net.Listener) net.Listener {
	d, ok := ln.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return ln
	}
	l := &Listener{Listener: ln, setDeadline: d.SetDeadline, idle: make(map[net.Conn]struct{})}
	st.reuse.Store(l)
	return l
}

// Accept returns a connection handed back, or else waits for a new one.
// A hand-back interrupts the wait by moving the listener's deadline to
// the past.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		// Clear the deadline before looking at what was handed back: a
		// hand-back after the look moves it again, after this.
		l.setDeadline(time.Time{})
		if c := l.pop(); c != nil {
			return c, nil
		}
		c, err := l.Listener.Accept()
		if err != nil && isTimeout(err) && !l.isClosed() {
			continue
		}
		return c, err
	}
}

// Close closes the listener, the connections handed back to it that were
// not accepted yet, and those accepted again that have not begun a
// request. http.Server.Shutdown calls it first, and then waits only for
// requests in flight.
func (l *Listener) Close() error {
	l.mu.Lock()
	conns := l.back
	for c := range l.idle {
		conns = append(conns, c)
	}
	l.back, l.idle, l.closed = nil, nil, true
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return l.Listener.Close()
}

// ConnState is for http.Server.ConnState: it tells the listener which of
// the connections it accepted again began a request, or closed.
func (l *Listener) ConnState(c net.Conn, state http.ConnState) {
	if state == http.StateNew {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.idle, c)
}

func (l *Listener) pop() net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.back) == 0 {
		return nil
	}
	c := l.back[0]
	l.back[0] = nil
	l.back = l.back[1:]
	l.idle[c] = struct{}{}
	return c
}

func (l *Listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// handBack queues c to be accepted again, and reports false, doing
// nothing, if the listener is closed.
func (l *Listener) handBack(c net.Conn) bool {
	if c.SetDeadline(time.Time{}) != nil {
		return false
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.back = append(l.back, c)
	l.mu.Unlock()
	l.setDeadline(aLongTimeAgo)
	return true
}

// ConnState is for http.Server.ConnState, when serving on what Listen
// returned: see Listener.ConnState.
func (st *Streamer) ConnState(c net.Conn, state http.ConnState) {
	if l := st.reuse.Load(); l != nil {
		l.ConnState(c, state)
	}
}

// handBack gives c back to the Streamer's listener, if it has one that
// takes it.
func (st *Streamer) handBack(c net.Conn) bool {
	l := st.reuse.Load()
	return l != nil && l.handBack(c)
}
