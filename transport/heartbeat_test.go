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
		h := newHeartbeat(new(liveGroup), interval)
		h.running = true // no goroutine: only the schedule is under test
		s := &stream{}
		h.add(s, time.Time{})
		written := h.now()
		h.postpone(s)
		if latest := time.Duration(s.beat.due.Load()-written) + h.tick; latest > interval {
			t.Errorf("interval %v: a ping may come %v after the last write; want at most the interval", interval, latest)
		}
		if h.tick <= 0 || h.tick > interval/10 {
			t.Errorf("interval %v: tick %v; want a small fraction of it", interval, h.tick)
		}
	}
}

// TestHeartbeatWheel runs the wheel's ticks by hand: a stream comes up in
// the tick it is due, not before; one that wrote meanwhile waits for its
// new due time; one removed never comes up, and removing it twice is
// harmless; one due more than a ring ahead of a heartbeat that fell behind
// still comes up in its own tick.
func TestHeartbeatWheel(t *testing.T) {
	h := newHeartbeat(new(liveGroup), 15*time.Second)
	h.running = true                  // no goroutine: the ticks are run below
	h.epoch = h.epoch.Add(-time.Hour) // room for the ticks before now
	base := h.tickOf(h.now())
	ring := int64(len(h.wheel))
	h.next = base - 20 // the heartbeat is 20 ticks behind
	// dueAt registers a stream due at the start of tick k.
	dueAt := func(k int64) *stream {
		s := &stream{}
		h.add(s, time.Time{})
		h.mu.Lock()
		defer h.mu.Unlock()
		h.unplace(s)
		s.beat.due.Store(k * int64(h.tick))
		h.place(s)
		return s
	}
	early := dueAt(base + 2)
	written := dueAt(base + 4)
	gone := dueAt(base + 6)
	far := dueAt(base + ring + 5)
	written.beat.due.Store((base + 30) * int64(h.tick)) // a write, which only moves due
	h.remove(gone)
	h.remove(gone)
	if h.count != 3 {
		t.Fatalf("%d streams registered after removing one of four twice; want 3", h.count)
	}

	names := map[*stream]string{early: "early", written: "written", gone: "gone", far: "far"}
	came := make(map[string][]int64)
	for k := base - 20; k <= base+ring+10; k++ {
		due, ok := h.takeDue(nil, k*int64(h.tick))
		if !ok {
			t.Fatalf("tick %d: the heartbeat stopped with streams registered", k-base)
		}
		for _, s := range due {
			came[names[s]] = append(came[names[s]], k-base)
		}
	}
	for name, want := range map[string]int64{"early": 2, "written": 30, "far": ring + 5} {
		if got := came[name]; len(got) == 0 || got[0] != want {
			t.Errorf("%s came up at ticks %v from now; want first at %d", name, got, want)
		}
	}
	if got := came["gone"]; len(got) > 0 {
		t.Errorf("a removed stream came up at ticks %v", got)
	}
	// Pinged at tick 2, early is next due an interval after that.
	if got := came["early"]; len(got) > 1 && got[1] < 2+int64(h.every/h.tick) {
		t.Errorf("early came up again at tick %d, less than an interval after its ping", got[1])
	}
	for _, s := range []*stream{early, written, far} {
		h.remove(s)
	}
	if _, ok := h.takeDue(nil, (base+ring+11)*int64(h.tick)); ok || h.running {
		t.Error("the heartbeat runs on with no stream registered")
	}
}

// TestHeartbeatEndsStreams runs the wheel's ticks by hand for streams
// given a time to end: one comes up with its end marked in the first tick
// that starts after that time, never earlier, and only once; one whose
// time has passed already comes up in the next tick.
func TestHeartbeatEndsStreams(t *testing.T) {
	h := newHeartbeat(new(liveGroup), 15*time.Second)
	h.running = true                  // no goroutine: the ticks are run below
	h.epoch = h.epoch.Add(-time.Hour) // room for the ticks before now
	base := h.tickOf(h.now())
	h.next = base
	tick := int64(h.tick)

	timed := &stream{}
	h.add(timed, time.Time{})
	h.mu.Lock()
	h.unplace(timed)
	timed.beat.ends = (base+3)*tick + 1 // just inside tick 3
	h.place(timed)
	h.mu.Unlock()
	late := &stream{}
	h.add(late, time.Now().Add(-time.Minute))
	far := &stream{} // a credential of the year 5138: past the clock's range
	h.add(far, time.Unix(99999999999, 0))

	names := map[*stream]string{timed: "timed", late: "late", far: "far"}
	came := make(map[string][]int64)
	for k := base; k <= base+20; k++ {
		due, _ := h.takeDue(nil, k*tick)
		for _, s := range due {
			came[names[s]] = append(came[names[s]], k-base)
		}
	}
	for name, want := range map[string]int64{"timed": 4, "late": 0} {
		if got := came[name]; len(got) != 1 || got[0] != want {
			t.Errorf("%s came up at ticks %v from now; want once, at %d", name, got, want)
		}
	}
	if got := came["far"]; len(got) != 0 || far.pending.Load() != 0 {
		t.Errorf("far came up at ticks %v with %b pending; want never", got, far.pending.Load())
	}
	for _, s := range []*stream{timed, late} {
		if got := s.pending.Load(); got != dueEnd {
			t.Errorf("%s has %b pending; want the end alone", names[s], got)
		}
	}
}
