// Package eta estimates how long a job has left to run, from how long each
// of its steps took in recent jobs.
package eta

import (
	"sync"
	"time"
)

// Window is how many recent durations of each step the estimate averages:
// enough that one odd job barely moves it, few enough that it follows a
// pipeline that got slower or faster within a few dozen jobs.
const Window = 20

// Estimator learns the typical duration of each step of a job, 1 to Steps,
// and sums them into the time a job has left. Until a step has been seen to
// finish, its duration is the prior given to New.
//
// It learns from the steps this process reports to it, so each node of a
// cluster learns on its own, and a restart starts over from the prior.
//
// An Estimator is safe for concurrent use and starts no goroutines.
type Estimator struct {
	prior time.Duration

	mu    sync.Mutex
	steps []window // index i holds step i+1
}

// window is a ring of a step's most recent durations.
type window struct {
	samples [Window]time.Duration
	n       int // samples held, up to Window
	next    int // where the next sample goes
	sum     time.Duration
}

// mean returns the average of the samples held, or prior when there are none.
func (w *window) mean(prior time.Duration) time.Duration {
	if w.n == 0 {
		return prior
	}
	return w.sum / time.Duration(w.n)
}

func (w *window) add(d time.Duration) {
	if w.n == Window {
		w.sum -= w.samples[w.next]
	} else {
		w.n++
	}
	w.samples[w.next] = d
	w.sum += d
	w.next = (w.next + 1) % Window
}

// New returns an Estimator for jobs of steps steps, each assumed to take
// prior until one is seen to finish.
func New(steps int, prior time.Duration) *Estimator {
	return &Estimator{prior: max(prior, 0), steps: make([]window, max(steps, 0))}
}

// Observe records that step ran for d. Steps outside 1..Steps, which a
// worker may report, are ignored, and so are negative durations.
func (e *Estimator) Observe(step int, d time.Duration) {
	if step < 1 || step > len(e.steps) || d < 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.steps[step-1].add(d)
}

// Remaining returns how long a job that has just begun step has left: the
// typical durations of step and of every step after it. A step past the last
// has nothing left; a step below 1 has every step ahead of it.
func (e *Estimator) Remaining(step int) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	var left time.Duration
	for i := max(step, 1) - 1; i < len(e.steps); i++ {
		left += e.steps[i].mean(e.prior)
	}
	return left
}
