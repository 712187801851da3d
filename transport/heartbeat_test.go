package transport

import (
	"testing"
	"time"
)

// TestHeartbeatPingsWithinInterval checks the schedule: a stream is due
// early enough that, found by a tick up to one tick late, its ping still
// comes within the interval of its last write, for the contract's "at
// least every 15 s".
func TestHeartbeatPingsWithinInterval(t *testing.T) {
	for _, interval := range []time.Duration{15 * time.Second, time.Second, 50 * time.Millisecond} {
		h := newHeartbeat(New(Config{}), interval)
		h.running = true // no goroutine: only the schedule is under test
		b := h.add(func() error { return nil }, func() {})
		b.postpone()
		written := time.Now()
		if latest := time.Unix(0, b.due.Load()).Add(h.tick); latest.Sub(written) > interval {
			t.Errorf("interval %v: a ping may come %v after the last write; want at most the interval", interval, latest.Sub(written))
		}
		if h.tick <= 0 || h.tick > interval/10 {
			t.Errorf("interval %v: tick %v; want a small fraction of it", interval, h.tick)
		}
	}
}
