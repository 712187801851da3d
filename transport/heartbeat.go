package transport

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// pingWriteTimeout bounds one heartbeat's write. An SSE stream is pinged
// only after a whole interval without a write, so nothing of it is queued:
// a peer that cannot take a few bytes at once is gone.
const pingWriteTimeout = 250 * time.Millisecond

// heartbeat pings every stream from one goroutine for them all, so that an
// idle stream costs no timer and no wake-up of its own. The goroutine runs
// while streams are registered and exits when the last one leaves.
//
// Streams wait on a timing wheel: a ring of buckets, one per tick, each
// holding the streams due in that tick. A tick looks only at its own
// bucket, so a stream is looked at about once an interval, when it may be
// due, rather than at every tick: with 15,000 streams, scanning them all
// every tick was the heartbeat's largest cost after the writes themselves.
// A stream that wrote meanwhile is not due yet and moves to the bucket of
// its new due time.
type heartbeat struct {
	st    *Streamer
	tick  time.Duration
	every time.Duration // from a write to the next ping

	mu      sync.Mutex
	wheel   [][]*beat // wheel[k%len(wheel)]: the streams due in tick k
	spare   []*beat   // an emptied bucket, to swap in for the next one run
	next    int64     // the next tick to run
	count   int       // streams registered
	running bool
}

// beat is one stream's heartbeat.
type beat struct {
	// due is when the stream is to be pinged next, in Unix nanoseconds. An
	// SSE stream moves it forward with every write, so that only idle
	// streams are pinged.
	due   atomic.Int64
	every time.Duration
	ping  func() error // may skip a stream that is busy writing
	fail  func()       // ends the stream when its ping fails

	// Where it is in the wheel, while registered; the heartbeat's lock
	// guards them.
	registered  bool
	bucket, pos int
}

func newHeartbeat(st *Streamer, interval time.Duration) *heartbeat {
	// A ping is at most a hundredth of the interval late: with a wheel, a
	// short tick costs a wake-up, not a scan.
	tick := min(max(interval/100, 5*time.Millisecond), 250*time.Millisecond)
	// Due early enough that a ping found a tick late, behind pings that
	// each took up to pingWriteTimeout, still comes within the interval.
	every := interval - min(tick+2*pingWriteTimeout, interval/4)
	// A due time is at most every ahead, so it falls within the ring.
	buckets := int(every/tick) + 2
	return &heartbeat{st: st, tick: tick, every: every, wheel: make([][]*beat, buckets)}
}

// add registers a stream; its first ping comes within one interval.
func (h *heartbeat) add(ping func() error, fail func()) *beat {
	b := &beat{every: h.every, ping: ping, fail: fail}
	b.postpone()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		h.running = true
		h.next = h.tickOf(time.Now().UnixNano())
		h.st.goLive(h.run)
	}
	b.registered = true
	h.place(b)
	h.count++
	return b
}

// postpone moves the next ping one interval from now.
func (b *beat) postpone() { b.due.Store(time.Now().UnixNano() + int64(b.every)) }

// remove unregisters a stream; removing it again does nothing.
func (h *heartbeat) remove(b *beat) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !b.registered {
		return
	}
	b.registered = false
	h.unplace(b)
	h.count--
}

// tickOf is the number of the tick that Unix time t falls in.
func (h *heartbeat) tickOf(t int64) int64 { return t / int64(h.tick) }

// place puts b in the bucket of its due time, or of the next tick to run
// if that is past. The caller holds h.mu.
func (h *heartbeat) place(b *beat) {
	k := max(h.tickOf(b.due.Load()), h.next)
	b.bucket = int(k % int64(len(h.wheel)))
	b.pos = len(h.wheel[b.bucket])
	h.wheel[b.bucket] = append(h.wheel[b.bucket], b)
}

// unplace takes b out of its bucket. The caller holds h.mu.
func (h *heartbeat) unplace(b *beat) {
	bucket := h.wheel[b.bucket]
	last := bucket[len(bucket)-1]
	bucket[b.pos], last.pos = last, b.pos
	bucket[len(bucket)-1] = nil
	h.wheel[b.bucket] = bucket[:len(bucket)-1]
}

// run pings the streams that are due, every tick, until none is left.
func (h *heartbeat) run() {
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var due []*beat
	for range t.C {
		var ok bool
		if due, ok = h.takeDue(due[:0], time.Now().UnixNano()); !ok {
			return
		}
		for _, b := range due {
			if err := b.ping(); err != nil {
				b.fail()
			}
		}
		clear(due)
	}
}

// takeDue runs the ticks up to now, in Unix nanoseconds: it appends to due
// the streams due by then, postponed from now and placed again, and moves
// the others to the buckets of their due times. ok is false, and the
// heartbeat marked stopped, when no stream is left.
func (h *heartbeat) takeDue(due []*beat, now int64) (_ []*beat, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count == 0 {
		h.running = false
		return due, false
	}
	for last := h.tickOf(now); h.next <= last; h.next++ {
		i := int(h.next % int64(len(h.wheel)))
		bucket := h.wheel[i]
		h.wheel[i], h.spare = h.spare, nil
		for _, b := range bucket {
			// Due within the tick counts as due: a ping up to a tick early
			// is harmless, and every leaves more than a tick of slack.
			if h.tickOf(b.due.Load()) <= h.next {
				b.due.Store(now + int64(b.every))
				due = append(due, b)
			}
			h.place(b)
		}
		clear(bucket)
		h.spare = bucket[:0]
	}
	return due, true
}

// isTimeout reports whether err is a write that ran out of time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
