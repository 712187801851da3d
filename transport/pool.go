package transport

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/stephub/stephub/hub"
)

// A broadcast to thousands of SSE streams is thousands of socket writes.
// Woken one goroutine per stream, they would all queue on the scheduler at
// each event, ahead of the requests that bring the next events, so that
// ingest stalls behind fan-out and every write carries a single event.
// Instead, the live events of SSE streams over plain TCP are written by a
// pool of about one goroutine per CPU, which the hub wakes through
// Subscription.Notify. A stream queued for the pool collects whatever came
// while it waited and writes it in one system call, so the busier the
// server, the larger its writes. The pool never waits on a peer: a write
// the socket cannot take at once, and a gap that must be read from
// storage, are handed to a goroutine of the stream's own until done.

// Stream states. Exactly one party runs a stream at a time: a pool worker,
// or the stream's own goroutine while it sends the backlog or waits on a
// slow peer.
const (
	streamIdle    int32 = iota // nothing queued; the next event queues it
	streamQueued               // in the pool's queue
	streamRunning              // being run
	streamDirty                // being run, and more came meanwhile
	streamEnded
)

// outcome is what a run of a stream asks for next.
type outcome int

const (
	runIdle    outcome = iota // all sent: wait for the next event
	runAgain                  // a full batch was sent and more may be queued
	runHandoff                // continue on the stream's own goroutine
	runEnded
)

// poolStream is an SSE stream over a socket that can be written without
// waiting.
type poolStream struct {
	st    *Streamer
	sub   *hub.Subscription
	conn  net.Conn
	raw   syscall.RawConn
	sink  *sseSink
	done  Done
	state atomic.Int32

	// Owned by whoever runs the stream.
	sent     int
	held     *hub.Event    // received, but out of sequence: Accept reads storage
	batch    *[]*hub.Event // accepted, not yet encoded; pooled
	out      *[]byte       // frames not yet fully written, pooled
	unsent   []byte        // the part of *out still to write
	outCount int           // events in out
	outLast  bool          // out ends with the terminal event
	closed   bool          // the subscription ended behind the events in out

	// One write(2) of the socket, bound once so that writing allocates
	// nothing; its fields belong to whoever holds the sink's lock.
	syscallWrite func(fd uintptr) bool
	wb           []byte
	wn           int
	werr         error
}

// sseOverSocket streams sub on conn through the pool; the caller reads conn
// to notice the client leaving. It reports false, doing nothing, when conn
// is not a plain socket (TLS, for one).
func (st *Streamer) sseOverSocket(conn net.Conn, head []byte, sub *hub.Subscription, done Done) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	s := &poolStream{st: st, sub: sub, conn: conn, raw: raw, done: done}
	s.syscallWrite = s.writeSyscall
	s.state.Store(streamRunning) // by the goroutine below, until the backlog is out
	sub.Notify(s.notify)
	st.goLive(func() {
		s.sink = st.newSSESink(conn, nil, conn.SetWriteDeadline, s.writeNow, func() { conn.Close() })
		if err := s.sink.write(head); err != nil {
			s.end(&WriteError{err})
			return
		}
		if backlog := sub.Backlog(); len(backlog) > 0 {
			if err := s.sink.send(backlog); err != nil {
				s.end(&WriteError{err})
				return
			}
			s.delivered(len(backlog))
			if backlog[len(backlog)-1].Terminal {
				s.end(nil)
				return
			}
		}
		s.runOwn()
	})
	return true
}

// notify is the hub's: an event was queued, or the subscription ended.
func (s *poolStream) notify() {
	for {
		switch state := s.state.Load(); state {
		case streamIdle:
			if s.state.CompareAndSwap(streamIdle, streamQueued) {
				s.st.pool.push(s)
				return
			}
		case streamRunning:
			if s.state.CompareAndSwap(streamRunning, streamDirty) {
				return
			}
		default: // queued or dirty: the run will see it; or ended
			return
		}
	}
}

// runPooled runs the stream on a pool worker.
func (s *poolStream) runPooled() {
	s.state.Store(streamRunning)
	s.after(s.run(false))
}

// runOwn runs the stream on its own goroutine, waiting where it must.
func (s *poolStream) runOwn() {
	s.after(s.run(true))
}

// after moves the stream on once a run has had outcome o.
func (s *poolStream) after(o outcome) {
	switch o {
	case runEnded:
		return
	case runHandoff:
		s.st.goLive(s.runOwn)
		return
	case runIdle:
		if s.state.CompareAndSwap(streamRunning, streamIdle) {
			return
		}
		// Dirty: more came during the run.
	}
	s.state.Store(streamQueued)
	s.st.pool.push(s)
}

// run sends what is queued. Unless wait is set it never blocks: it returns
// runHandoff when it would have to.
func (s *poolStream) run(wait bool) outcome {
	if s.unsent == nil {
		if o, ok := s.collect(wait); !ok {
			return o
		}
		if len(*s.batch) == 0 {
			s.putBatch() // an idle stream holds none
			return runIdle
		}
		s.encode()
	}
	if err := s.write(wait); err != nil {
		if errors.Is(err, errWouldBlock) {
			return runHandoff
		}
		return s.end(&WriteError{err})
	}
	n, terminal := s.outCount, s.outLast
	s.st.buffers.Put(s.out)
	s.out, s.unsent = nil, nil
	s.delivered(n)
	if terminal {
		return s.end(nil)
	}
	if n == maxBatch || s.closed {
		return runAgain
	}
	return runIdle
}

// collect takes the queued events, up to maxBatch, into s.batch. ok is false
// when run must return o instead of writing.
func (s *poolStream) collect(wait bool) (o outcome, ok bool) {
	if s.batch == nil {
		s.batch = s.st.getBatch()
	}
	var err error
	for len(*s.batch) < maxBatch {
		e := s.held
		if e == nil {
			var open bool
			select {
			case e, open = <-s.sub.C():
			default:
				return 0, true
			}
			if !open {
				if len(*s.batch) > 0 {
					// The events first; then a run that ends the stream.
					s.closed = true
					return 0, true
				}
				if err := s.sub.Err(); err != nil {
					return s.end(err), false
				}
				return s.end(errClientGone), false
			}
		}
		if !wait && !s.sub.InSequence(e) {
			s.held = e
			return runHandoff, false
		}
		s.held = nil
		// As a gap is rare and short, filling it is not cut short when the
		// client leaves.
		if *s.batch, err = s.sub.Accept(context.Background(), *s.batch, e); err != nil {
			return s.end(err), false
		}
	}
	return 0, true
}

// encode turns s.batch into frames in s.out, and gives the batch back.
func (s *poolStream) encode() {
	bp := s.st.getBuffer()
	batch := *s.batch
	*bp = appendFrames((*bp)[:0], batch)
	s.out, s.unsent = bp, *bp
	s.outCount, s.outLast = len(batch), batch[len(batch)-1].Terminal
	s.putBatch()
}

func (s *poolStream) putBatch() {
	s.st.putBatch(s.batch)
	s.batch = nil
}

// errWouldBlock is a write the socket could not take at once.
var errWouldBlock = errors.New("transport: write would block")

// write sends s.unsent. Unless wait is set, it writes only what the socket
// takes at once, and returns errWouldBlock for the rest.
func (s *poolStream) write(wait bool) error {
	if wait {
		if err := s.sink.write(s.unsent); err != nil {
			return err
		}
		s.unsent = s.unsent[len(s.unsent):]
		return nil
	}
	// A heartbeat is being written: let the stream's goroutine wait for it.
	if !s.sink.mu.TryLock() {
		return errWouldBlock
	}
	defer s.sink.mu.Unlock()
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
	s.sink.beat.postpone()
	return nil
}

// writeNow makes one write of b to the socket, without waiting. The
// caller holds the sink's lock.
func (s *poolStream) writeNow(b []byte) (n int, err error) {
	s.wb = b
	defer func() { s.wb, s.wn, s.werr = nil, 0, nil }()
	rerr := s.raw.Write(s.syscallWrite)
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		// The deadline of an earlier, waiting write has passed; this write
		// does not wait, so needs none.
		s.sink.deadline.clear()
		rerr = s.raw.Write(s.syscallWrite)
	}
	if rerr != nil {
		return 0, rerr
	}
	return max(s.wn, 0), s.werr
}

// writeSyscall is raw.Write's callback: one attempt, never a wait.
func (s *poolStream) writeSyscall(fd uintptr) bool {
	s.wn, s.werr = syscall.Write(int(fd), s.wb)
	return true
}

// delivered counts n events sent.
func (s *poolStream) delivered(n int) {
	s.sent += n
	if obs := s.st.cfg.Observer; obs != nil {
		obs.Delivered(SSE, n)
	}
}

// end closes the stream and tells done why.
func (s *poolStream) end(err error) outcome {
	s.state.Store(streamEnded)
	if s.out != nil {
		s.st.buffers.Put(s.out)
		s.out, s.unsent = nil, nil
	}
	if s.batch != nil {
		s.putBatch()
	}
	s.sink.stop()
	s.conn.Close() // ends sseOverConn's reader, which closes the subscription
	s.done(s.sent, err)
	return runEnded
}

// appendFrames appends the SSE frames of events to buf.
func appendFrames(buf []byte, events []*hub.Event) []byte {
	for _, e := range events {
		buf = append(buf, "id: "...)
		buf = strconv.AppendInt(buf, e.Seq, 10)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, e.Data...)
		buf = append(buf, "\n\n"...)
	}
	return buf
}

// writerPool runs queued streams on up to one goroutine per CPU. Its
// goroutines start when streams are queued and exit when none is left.
type writerPool struct {
	st      *Streamer
	mu      sync.Mutex
	queue   []*poolStream
	head    int // queue[head:] waits
	workers int
	max     int // workers allowed
}

// poolChunk is how many streams a worker takes from the queue at once.
const poolChunk = 64

func (p *writerPool) push(s *poolStream) {
	p.mu.Lock()
	p.queue = append(p.queue, s)
	if p.workers == 0 {
		// Read once a burst: GOMAXPROCS takes the scheduler's lock.
		p.max = runtime.GOMAXPROCS(0)
	}
	start := p.workers < p.max
	if start {
		p.workers++
	}
	p.mu.Unlock()
	if start {
		p.st.goLive(p.work)
	}
}

func (p *writerPool) work() {
	chunk := make([]*poolStream, 0, poolChunk)
	for {
		chunk = chunk[:0]
		p.mu.Lock()
		n := min(len(p.queue)-p.head, poolChunk)
		if n == 0 {
			p.queue, p.head = p.queue[:0], 0
			p.workers--
			p.mu.Unlock()
			return
		}
		chunk = append(chunk, p.queue[p.head:p.head+n]...)
		clear(p.queue[p.head : p.head+n])
		p.head += n
		if p.head > len(p.queue)/2 {
			// Slide the waiting streams to the front, so that a queue that
			// never empties does not grow.
			m := copy(p.queue, p.queue[p.head:])
			clear(p.queue[m:])
			p.queue, p.head = p.queue[:m], 0
		}
		p.mu.Unlock()
		for _, s := range chunk {
			s.runPooled()
		}
	}
}
