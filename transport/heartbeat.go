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
type heartbeat struct {
	st       *Streamer
	interval time.Duration
	tick     time.Duration

	mu      sync.Mutex
	beats   map[*beat]struct{}
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
}

func newHeartbeat(st *Streamer, interval time.Duration) *heartbeat {
	// A ping is at most a fifteenth of the interval late.
	tick := min(max(interval/15, 5*time.Millisecond), time.Second)
	return &heartbeat{st: st, interval: interval, tick: tick, beats: make(map[*beat]struct{})}
}

// add registers a stream; its first ping comes within one interval.
func (h *heartbeat) add(ping func() error, fail func()) *beat {
	// Due a tick early: found up to a tick late, a ping still comes within
	// the interval of the last write, as the contract promises.
	b := &beat{every: h.interval - h.tick, ping: ping, fail: fail}
	b.postpone()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beats[b] = struct{}{}
	if !h.running {
		h.running = true
		h.st.goLive(h.run)
	}
	return b
}

// postpone moves the next ping one interval from now.
func (b *beat) postpone() { b.due.Store(time.Now().UnixNano() + int64(b.every)) }

func (h *heartbeat) remove(b *beat) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.beats, b)
}

// run pings the streams that are due, every tick, until none is left.
func (h *heartbeat) run() {
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var due []*beat
	for range t.C {
		now := time.Now().UnixNano()
		due = due[:0]
		h.mu.Lock()
		if len(h.beats) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		for b := range h.beats {
			if b.due.Load() <= now {
				due = append(due, b)
			}
		}
		h.mu.Unlock()
		for _, b := range due {
			b.postpone()
			if err := b.ping(); err != nil {
				b.fail()
			}
		}
		clear(due)
	}
}

// isTimeout reports whether err is a write that ran out of time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
