package transport

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// heartbeat tells streams when a ping is due, and when a stream's time is
// up (its credential expires), from one goroutine for them all, so that an
// idle stream costs no timer and no wake-up of its own. It writes nothing:
// it marks the ping or the end as due and wakes the stream, whose writer
// sends it. The goroutine runs while streams are registered and exits when
// the last one leaves.
//
// Streams wait on a timing wheel: a ring of buckets, one per tick, each
// holding the streams due in that tick. A tick looks only at its own
// bucket, so a stream is looked at about once an interval rather than at
// every tick. A stream that wrote meanwhile is not due yet and moves to
// the bucket of its new due time.
//
// Times are on the monotonic clock, in nanoseconds since the heartbeat's
// epoch, so that a change of the wall clock moves no ping.
type heartbeat struct {
	live  *liveGroup
	epoch time.Time
	tick  time.Duration
	every time.Duration // from a write, or a ping, to the next ping

	mu      sync.Mutex
	wheel   [][]*stream // wheel[k%len(wheel)]: the streams due in tick k
	spare   []*stream   // an emptied bucket, to swap in for the next one run
	next    int64       // the next tick to run
	count   int         // streams registered
	running bool
}

// beat is a stream's place in the heartbeat.
type beat struct {
	// due is when the stream's next ping is due.
	due atomic.Int64
	// The heartbeat's lock guards the rest. ends is when the stream must
	// end, on the heartbeat's clock; 0 for never, or once it is marked.
	ends int64
	// Where it is in the wheel, while registered.
	registered  bool
	bucket, pos int
}

func newHeartbeat(live *liveGroup, interval time.Duration) *heartbeat {
	// A ping is at most a hundredth of the interval late: with a wheel, a
	// short tick costs a wake-up, not a scan.
	tick := min(max(interval/100, 5*time.Millisecond), 250*time.Millisecond)
	// Due early enough that a ping found a tick late, and then written
	// after the pings queued ahead of it, still goes out within the
	// interval.
	slack := min(max(2*tick, 100*time.Millisecond), interval/4)
	every := interval - slack
	// A due time is at most every ahead, so it falls within the ring.
	buckets := int(every/tick) + 2
	return &heartbeat{live: live, epoch: time.Now(), tick: tick, every: every, wheel: make([][]*stream, buckets)}
}

// now is the time on the heartbeat's clock.
func (h *heartbeat) now() int64 { return int64(time.Since(h.epoch)) }

// add registers a stream; its first ping is due an interval from now, and
// its end at until, unless until is zero.
func (h *heartbeat) add(s *stream, until time.Time) {
	h.postpone(s)
	h.mu.Lock()
	defer h.mu.Unlock()
	// A time past the clock's range is never; one already past is 1,
	// the earliest end, for 0 means never too.
	if d, now := time.Until(until), h.now(); !until.IsZero() && int64(d) < math.MaxInt64-now {
		s.beat.ends = max(now+int64(d), 1)
	}
	if !h.running {
		h.running = true
		h.next = h.tickOf(h.now())
		h.live.goLive(h.run)
	}
	s.beat.registered = true
	h.place(s)
	h.count++
}

// postpone moves a stream's next ping one interval from now.
func (h *heartbeat) postpone(s *stream) { s.beat.due.Store(h.now() + int64(h.every)) }

// remove unregisters a stream; removing it again does nothing.
func (h *heartbeat) remove(s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.beat.registered {
		return
	}
	s.beat.registered = false
	h.unplace(s)
	h.count--
}

// tickOf is the number of the tick that time t falls in.
func (h *heartbeat) tickOf(t int64) int64 { return t / int64(h.tick) }

// endTick is the tick that ends a stream due to end at t: the first that
// starts after t, so that a stream never ends early.
func (h *heartbeat) endTick(t int64) int64 { return h.tickOf(t) + 1 }

// place puts s in the bucket of its next ping or its end, whichever comes
// first, or of the next tick to run if that is past. An end is never
// further than the ping, so it is within the ring too. The caller holds
// h.mu.
func (h *heartbeat) place(s *stream) {
	b := &s.beat
	k := h.tickOf(b.due.Load())
	if b.ends != 0 {
		k = min(k, h.endTick(b.ends))
	}
	k = max(k, h.next)
	b.bucket = int(k % int64(len(h.wheel)))
	b.pos = len(h.wheel[b.bucket])
	h.wheel[b.bucket] = append(h.wheel[b.bucket], s)
}

// unplace takes s out of its bucket. The caller holds h.mu.
func (h *heartbeat) unplace(s *stream) {
	b := &s.beat
	bucket := h.wheel[b.bucket]
	last := bucket[len(bucket)-1]
	bucket[b.pos], last.beat.pos = last, b.pos
	bucket[len(bucket)-1] = nil
	h.wheel[b.bucket] = bucket[:len(bucket)-1]
}

// run wakes the streams that are due, every tick, until none is left.
func (h *heartbeat) run() {
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var due []*stream
	for range t.C {
		var ok bool
		if due, ok = h.takeDue(due[:0], h.now()); !ok {
			return
		}
		for _, s := range due {
			s.wake()
		}
		clear(due)
	}
}

// takeDue runs the ticks up to now: it marks a ping as pending on the
// streams due one by then, next due an interval from now, and an end on
// those whose time is up, once; it appends the streams it marked to due,
// and places every stream it looked at again, in the bucket of its next
// due time. ok is false, and the heartbeat marked stopped, when no stream
// is left.
func (h *heartbeat) takeDue(due []*stream, now int64) (_ []*stream, ok bool) {
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
		for _, s := range bucket {
			var mark uint32
			// Due within the tick counts as due: a ping up to a tick early
			// is harmless, and every leaves more than a tick of slack.
			if h.tickOf(s.beat.due.Load()) <= h.next {
				s.beat.due.Store(now + int64(h.every))
				mark |= duePing
			}
			if s.beat.ends != 0 && h.endTick(s.beat.ends) <= h.next {
				s.beat.ends = 0
				mark |= dueEnd
			}
			if mark != 0 {
				s.pending.Or(mark)
				due = append(due, s)
			}
			h.place(s)
		}
		clear(bucket)
		h.spare = bucket[:0]
	}
	return due, true
}
