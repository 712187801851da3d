package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stephub/stephub/hub"
)

// Stream states; the package documentation says what each means.
const (
	stateIdle int32 = iota
	stateQueued
	stateRunning
	stateDirty
	stateEnded
)

// outcome is what a run of a stream leaves to do.
type outcome int8

const (
	runIdle    outcome = iota // nothing left to write
	runAgain                  // a batch went out and more is queued
	runHandoff                // the rest must wait: go on where waiting is allowed
	runEnded
)

// Work other than events that other goroutines leave for a stream's writer.
const (
	duePing uint32 = 1 << iota // the heartbeat's turn
	duePong                    // a WebSocket peer's ping awaits its answer
	dueEnd                     // the stream's time is up: its credential expired
)

// stream is one subscription on its way to one client.
type stream struct {
	st   *Streamer
	sub  *hub.Subscription
	wire wire
	done Done
	// ctx is the parent of the work the stream starts (reads from storage
	// that fill gaps, a WebSocket client's commands), each under a
	// timeout of its own: the request's context while a handler holds the
	// stream, a detached one for a connection taken over, which outlives
	// its request (and keeping the request's would keep its values).
	ctx context.Context

	// The connection. conn is set when the stream took it over from
	// net/http, raw when the pool can write it without waiting. Writes
	// that wait go to w, then flush (if set), between write deadlines set
	// on conn or, for a ResponseWriter, with setDeadline.
	conn        net.Conn
	raw         syscall.RawConn
	w           io.Writer
	flush       func() error
	setDeadline func(time.Time) error
	// wakeup, when set, tells a goroutine that runs the stream for its
	// whole life that its turn has come; without it, the pool runs it.
	wakeup chan struct{}
	// keepAlive is set when the connection may serve another request
	// once the response has ended cleanly.
	keepAlive bool

	state   atomic.Int32
	pending atomic.Uint32 // duePing, duePong, dueEnd
	pong    atomic.Pointer[[]byte]
	beat    beat

	// Set by the connection's reader, before it closes the subscription:
	// why it stopped reading.
	left atomic.Int32
	// The reader and the writer each let go of a taken-over connection
	// once; the second closes it or hands it back.
	lettingGo atomic.Int32
	unfit     atomic.Bool

	// Owned by the writer of the moment.
	sent      int
	held      *hub.Event // out of sequence: a gap to fill before it
	out       *[]byte    // framed output, pooled while there is some
	unsent    []byte     // what of *out is still to write
	outEvents int        // events framed in *out
	outPing   bool       // *out holds nothing but heartbeats
	timeUp    bool       // the stream ends once what was queued then is written
	untilEnd  int        // of what was queued at time-up, the events not yet taken
	ending    bool       // the stream ends once *out is written,
	endErr    error      // for this reason;
	endSent   bool       // and the end of the response went out

	// One write(2) of the socket, bound once so that writing allocates
	// nothing; its fields belong to the writer of the moment.
	syscallWrite func(fd uintptr) bool
	wb           []byte
	wn           int
	werr         error
}

// Why a connection's reader stopped, in stream.left.
const (
	stillReading int32 = iota
	leftGone           // the connection failed or was closed
	leftClosing        // a WebSocket close frame, to be answered
	leftSilent         // nothing, not even a pong, within the wait
	leftProtocol       // a WebSocket frame that breaks the protocol
	leftTooBig         // a WebSocket message over the limit
	leftDone           // told to stop: the response has ended
)

func (st *Streamer) newStream(ctx context.Context, sub *hub.Subscription, w wire, done Done) *stream {
	s := &stream{st: st, ctx: ctx, sub: sub, wire: w, done: done}
	s.state.Store(stateRunning) // by whoever starts it
	return s
}

// takeOver makes conn, taken over from net/http, the stream's connection.
func (s *stream) takeOver(conn net.Conn) {
	s.conn, s.w = conn, conn
	// net/http may have left deadlines on it; the stream sets its own.
	conn.SetDeadline(time.Time{})
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			s.raw = raw
			s.syscallWrite = s.writeSyscall
		}
	}
}

// start sends first, the head of the response and the backlog, and then
// the live events as they come, until the stream ends, at until at the
// latest unless that is zero: on the pool when the connection allows it,
// or else on the calling goroutine (a handler that holds its response) or
// one of the stream's own (a taken-over connection the pool cannot write).
// read, if set, reads the connection meanwhile.
func (s *stream) start(first []byte, until time.Time, read func()) {
	s.frameFirst(first)
	if s.raw == nil {
		s.wakeup = make(chan struct{}, 1)
	}
	s.sub.Notify(s.wake)
	s.st.beats.add(s, until)
	if read != nil {
		s.st.live.goLive(read)
	}
	switch {
	case s.conn == nil:
		s.runHeld()
	case s.raw == nil:
		s.st.live.goLive(s.runHeld)
	default:
		s.runPooled() // as a pool worker would, on the handler's goroutine
	}
}

// wake tells the stream that something may be due: an event, a ping, the
// end of its subscription. It never blocks.
func (s *stream) wake() {
	for {
		switch s.state.Load() {
		case stateIdle:
			if s.state.CompareAndSwap(stateIdle, stateQueued) {
				if s.wakeup != nil {
					s.wakeup <- struct{}{} // never full: one send per idle spell
				} else {
					s.st.pool.push(s)
				}
				return
			}
		case stateRunning:
			if s.state.CompareAndSwap(stateRunning, stateDirty) {
				return
			}
		default: // queued or dirty: a run will see it; or ended
			return
		}
	}
}

// runPooled runs the stream once without waiting, and passes it on.
func (s *stream) runPooled() {
	s.state.Store(stateRunning)
	switch s.run(false) {
	case runHandoff:
		s.st.live.goLive(s.runHeld)
	case runIdle:
		if s.state.CompareAndSwap(stateRunning, stateIdle) {
			return
		}
		// Dirty: woken during the run.
		fallthrough
	case runAgain:
		s.state.Store(stateQueued)
		s.st.pool.push(s)
	}
}

// runHeld runs the stream on the calling goroutine, where writes may wait:
// for a stream with a wakeup, until it ends; for a pooled one handed off,
// until it is idle again.
func (s *stream) runHeld() {
	for {
		if s.run(true) == runEnded {
			return
		}
		if s.state.CompareAndSwap(stateRunning, stateIdle) {
			if s.wakeup == nil {
				return // back in the pool's care
			}
			<-s.wakeup
		}
		s.state.Store(stateRunning)
	}
}

// run writes what is due. With wait, it goes on until nothing is; without,
// it writes one batch, and only what the socket takes at once.
func (s *stream) run(wait bool) outcome {
	for {
		if len(s.unsent) == 0 {
			if o, ok := s.fill(wait); !ok {
				return o
			}
		}
		if err := s.write(wait); err != nil {
			if err == errWouldBlock {
				return runHandoff
			}
			return s.end(s.writeFailure(err))
		}
		n, ended := s.written()
		if ended {
			return runEnded
		}
		if !wait {
			// A full batch may have stopped short of the subscription's
			// end, which has no length to see and whose wake-up came
			// while the stream was queued.
			if s.held != nil || len(s.sub.C()) > 0 || n >= maxBatch {
				return runAgain
			}
			return runIdle
		}
	}
}

// fill frames what is due into s.out: the queued events, up to maxBatch; a
// pong a WebSocket peer asked for; a heartbeat when one is due (for SSE,
// only if no event goes out); and the end of the response once the stream
// ends, which a stream whose time is up does once it has taken all that
// was queued. ok is false when nothing is to be written and run must
// return o.
func (s *stream) fill(wait bool) (o outcome, ok bool) {
	bp := s.st.getBatch()
	defer s.st.putBatch(bp)
	batch, handoff, ending, why := s.collect(wait, *bp)
	*bp = batch
	if handoff {
		return runHandoff, false
	}
	due := s.pending.Swap(0)
	switch {
	case s.timeUp:
		s.untilEnd -= len(batch)
	case due&dueEnd != 0:
		// What is queued now still goes out; what comes after waits
		// for the next credential, or a steady flow would keep the
		// stream open for good.
		s.timeUp, s.untilEnd = true, len(s.sub.C())
	}
	if s.timeUp && !ending && s.held == nil && s.untilEnd <= 0 {
		ending, why = true, ErrExpired
	}
	buf := s.st.getBuffer()
	b := s.wire.appendEvents(*buf, batch)
	if due&duePong != 0 {
		if p := s.pong.Swap(nil); p != nil {
			b = s.wire.appendPong(b, *p)
		}
	}
	ping := due&duePing != 0 && (len(batch) == 0 || s.wire == wireWebSocket)
	if ping {
		b = s.wire.appendPing(b)
	}
	if ending {
		b = s.frameEnd(b, why)
	}
	*buf = b
	if len(b) == 0 {
		s.st.putBuffer(buf)
		if ending {
			s.endSent = true // nothing was left to send
			return s.end(why), false
		}
		return runIdle, false
	}
	s.out, s.unsent = buf, b
	s.outEvents, s.outPing = len(batch), len(batch) == 0 && ping
	return 0, true
}

// frameFirst frames the start of the stream: head (the response head, or
// whatever precedes the events) and the backlog, with the end of the
// response if the backlog holds the terminal event.
func (s *stream) frameFirst(head []byte) {
	backlog := s.sub.Backlog()
	buf := s.st.getBuffer()
	b := s.wire.appendEvents(append(*buf, head...), backlog)
	if n := len(backlog); n > 0 && backlog[n-1].Terminal {
		b = s.frameEnd(b, nil)
	}
	*buf = b
	s.out, s.unsent, s.outEvents = buf, b, len(backlog)
}

// frameEnd appends the end of the response, for the reason why, and
// marks the stream as ending once it is written. The last chunk of a
// response whose connection is to serve the client's next request is not
// appended: it goes out once the connection's reader has stopped too (see
// letGo), so that the reader cannot take the first bytes of that request.
func (s *stream) frameEnd(b []byte, why error) []byte {
	s.ending, s.endErr = true, why
	if s.keepAlive && (why == nil || errors.Is(why, hub.ErrSlowConsumer) || why == ErrExpired) {
		s.conn.SetReadDeadline(aLongTimeAgo)
		return b
	}
	s.keepAlive = false
	return s.wire.appendEnd(b, why)
}

// aLongTimeAgo is a deadline that has passed: setting it stops a read or
// write that waits.
var aLongTimeAgo = time.Unix(1, 0)

// collect takes the queued events into batch, up to maxBatch: it stops
// after a terminal event, and when the subscription has ended, which
// ending reports with the reason why. An event out of sequence needs a
// read from storage first; without wait it is kept for later, and
// handoff asks for a goroutine that may wait when it is next.
func (s *stream) collect(wait bool, batch []*hub.Event) (_ []*hub.Event, handoff, ending bool, why error) {
	for len(batch) < maxBatch {
		e := s.held
		if e == nil {
			var open bool
			select {
			case e, open = <-s.sub.C():
				if !open {
					return batch, false, true, s.closedErr()
				}
			default:
				return batch, false, false, nil
			}
		}
		if !wait && !s.sub.InSequence(e) {
			s.held = e
			return batch, len(batch) == 0, false, nil
		}
		s.held = nil
		var err error
		if batch, err = s.accept(batch, e); err != nil {
			return batch, false, true, err
		}
		if n := len(batch); n > 0 && batch[n-1].Terminal {
			return batch, false, true, nil
		}
	}
	return batch, false, false, nil
}

// accept appends what must be sent for e, reading any gap before it from
// storage within gapFillTimeout.
func (s *stream) accept(batch []*hub.Event, e *hub.Event) ([]*hub.Event, error) {
	if s.sub.InSequence(e) {
		return s.sub.Accept(s.ctx, batch, e) // reads nothing
	}
	ctx, cancel := context.WithTimeout(s.ctx, gapFillTimeout)
	defer cancel()
	return s.sub.Accept(ctx, batch, e)
}

// errWouldBlock is a write the socket could not take at once.
var errWouldBlock = errors.New("transport: write would block")

// write sends s.unsent. Without wait, it writes only what the socket takes
// at once, and returns errWouldBlock for the rest; with wait, it waits up
// to the write timeout.
func (s *stream) write(wait bool) error {
	if !wait {
		n, err := s.writeNow(s.unsent)
		s.unsent = s.unsent[n:]
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			return errWouldBlock
		case err != nil:
			return err
		case len(s.unsent) > 0:
			return errWouldBlock
		}
		return nil
	}
	s.setWriteDeadline(time.Now().Add(s.st.cfg.writeTimeout()))
	_, err := s.w.Write(s.unsent)
	if err == nil && s.flush != nil {
		err = s.flush()
	}
	// An idle stream has no deadline: HTTP/2 would reset it when one passed.
	s.setWriteDeadline(time.Time{})
	if err != nil {
		return err
	}
	s.unsent = nil
	return nil
}

// setWriteDeadline sets the deadline of the writes that wait. Not every
// ResponseWriter supports deadlines (httptest's recorder does not); a
// write still fails on a dead connection.
func (s *stream) setWriteDeadline(t time.Time) {
	if s.conn != nil {
		s.conn.SetWriteDeadline(t)
		return
	}
	_ = s.setDeadline(t)
}

// writeNow makes one write of b to the socket, without waiting.
func (s *stream) writeNow(b []byte) (n int, err error) {
	s.wb = b
	rerr := s.raw.Write(s.syscallWrite)
	n, err = max(s.wn, 0), s.werr
	s.wb, s.wn, s.werr = nil, 0, nil
	if rerr != nil {
		return 0, rerr
	}
	return n, err
}

// writeSyscall is raw.Write's callback: one attempt, never a wait.
func (s *stream) writeSyscall(fd uintptr) bool {
	s.wn, s.werr = syscall.Write(int(fd), s.wb)
	return true
}

// written accounts for the output that went out in full: it returns how
// many events it held, and whether the stream has ended with it.
func (s *stream) written() (n int, ended bool) {
	n = s.outEvents
	s.st.putBuffer(s.out)
	s.out, s.unsent, s.outEvents, s.outPing = nil, nil, 0, false
	if n > 0 {
		s.sent += n
		if obs := s.st.cfg.Observer; obs != nil {
			obs.Delivered(s.wire.label(), n)
		}
	}
	if s.wire.writesAreHeartbeats() {
		s.st.beats.postpone(s)
	}
	if s.ending {
		s.endSent = true
		s.end(s.endErr)
		return n, true
	}
	return n, false
}

// closedErr says why the subscription ended: the hub's reason, or the
// reader's.
func (s *stream) closedErr() error {
	if err := s.sub.Err(); err != nil {
		return err
	}
	switch s.left.Load() {
	case leftSilent:
		return ErrPongTimeout
	case leftProtocol:
		return ErrProtocol
	case leftTooBig:
		return errTooBig
	case leftClosing:
		return errPeerClosed
	}
	return errClientGone
}

// writeFailure says why a write failed: the hub may have ended the
// stream first, or the client left, and the failed write only followed
// from that.
func (s *stream) writeFailure(err error) error {
	switch left := s.left.Load(); {
	case s.sub.Err() != nil:
		return s.sub.Err()
	case left != stillReading && left != leftDone: // leftDone: stopped by the writer itself
		return s.closedErr()
	case s.conn == nil && s.ctx.Err() != nil: // a handler's request, cancelled
		return errClientGone
	}
	return &WriteError{Err: err, Ping: s.outPing}
}

// end ends the stream for the reason err: it lets go of its buffers, its
// heartbeat and its connection, and tells done.
func (s *stream) end(err error) outcome {
	s.state.Store(stateEnded)
	s.st.beats.remove(s)
	if s.out != nil {
		s.st.putBuffer(s.out)
		s.out, s.unsent = nil, nil
	}
	s.held = nil
	// Told first, so that what the stream held (a user's stream slot) is
	// free before its connection can serve another request.
	s.done(s.sent, err)
	if s.conn != nil {
		code, _ := closeCode(err)
		closing := s.wire == wireWebSocket && s.endSent && code != 0
		if closing {
			// The peer answers the close frame with its own and closes:
			// its reader waits for that, a while.
			if c, ok := s.conn.(interface{ CloseWrite() error }); ok {
				c.CloseWrite()
			}
			s.conn.SetReadDeadline(time.Now().Add(closeWait))
		}
		s.letGo(s.keepAlive && s.endSent, closing)
	}
	return runEnded
}

// letGo is called once by the writer and once by the reader of a
// taken-over connection when each is done with it: fit when it may serve
// another request, linger when the other is to finish on its own (to read
// the peer's answer to a close frame). The first to let go of an unfit
// connection closes it, which stops the other, unless it lingers. The
// second closes it or, if both found it fit, writes the response's last
// chunk and hands the connection back to net/http.
func (s *stream) letGo(fit, linger bool) {
	if !fit {
		s.unfit.Store(true)
	}
	if s.lettingGo.Add(1) == 1 {
		if !fit && !linger {
			s.conn.Close()
		}
		return
	}
	if s.unfit.Load() || !s.writeLastChunk() || !s.st.handBack(s.conn) {
		s.conn.Close()
	}
}

// lastChunk ends a chunked body.
const lastChunk = "0\r\n\r\n"

// writeLastChunk writes lastChunk, without waiting on a socket the pool
// writes (a peer that cannot take five bytes at once loses its connection),
// or within closeWait on another.
func (s *stream) writeLastChunk() bool {
	if s.raw != nil {
		n, err := s.writeNow([]byte(lastChunk))
		return err == nil && n == len(lastChunk)
	}
	s.conn.SetWriteDeadline(time.Now().Add(closeWait))
	_, err := io.WriteString(s.conn, lastChunk)
	return err == nil
}

// isTimeout reports whether err is an I/O that ran out of time.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
