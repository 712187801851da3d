package eta_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stephub/stephub/eta"
)

const steps = 8

// runJobs reports n jobs to e whose every step took d.
func runJobs(e *eta.Estimator, n int, d time.Duration) {
	for range n {
		for step := 1; step <= steps; step++ {
			e.Observe(step, d)
		}
	}
}

func TestRemainingFromThePrior(t *testing.T) {
	e := eta.New(steps, 2*time.Second)
	tests := []struct {
		step int
		want time.Duration
	}{
		{-1, 16 * time.Second},
		{0, 16 * time.Second},
		{1, 16 * time.Second},
		{2, 14 * time.Second},
		{8, 2 * time.Second},
		{9, 0}, // the terminal step
		{42, 0},
	}
	for _, tt := range tests {
		if got := e.Remaining(tt.step); got != tt.want {
			t.Errorf("Remaining(%d) = %v; want %v", tt.step, got, tt.want)
		}
	}
}

// TestRemainingFalls checks that the estimate shrinks at every step of a
// job, and reaches 0 at its end.
func TestRemainingFalls(t *testing.T) {
	e := eta.New(steps, time.Second)
	runJobs(e, 3, 300*time.Millisecond)
	prev := e.Remaining(1)
	for step := 2; step <= steps+1; step++ {
		got := e.Remaining(step)
		if got >= prev {
			t.Errorf("Remaining(%d) = %v; want below Remaining(%d) = %v", step, got, step-1, prev)
		}
		prev = got
	}
	if prev != 0 {
		t.Errorf("Remaining(%d) = %v; want 0", steps+1, prev)
	}
}

// TestLearnsFromRecentJobs checks that a new job's first estimate follows
// the jobs before it: larger after slow jobs than after fast ones, whichever
// came first.
func TestLearnsFromRecentJobs(t *testing.T) {
	const (
		fast  = 10 * time.Millisecond
		slow  = 200 * time.Millisecond
		prior = time.Second
	)
	tests := []struct {
		name string
		jobs func(e *eta.Estimator)
		want time.Duration // Remaining(1) afterwards
	}{
		{"no job yet", func(*eta.Estimator) {}, steps * prior},
		{"fast jobs", func(e *eta.Estimator) { runJobs(e, 5, fast) }, steps * fast},
		{"slow jobs", func(e *eta.Estimator) { runJobs(e, 5, slow) }, steps * slow},
		// Half and half: the mean of the window.
		{"fast then slow", func(e *eta.Estimator) { runJobs(e, 3, fast); runJobs(e, 3, slow) }, steps * (fast + slow) / 2},
		{"slow then fast", func(e *eta.Estimator) { runJobs(e, 3, slow); runJobs(e, 3, fast) }, steps * (fast + slow) / 2},
		// A full window of slow jobs forgets the fast ones.
		{"fast, then a window of slow", func(e *eta.Estimator) { runJobs(e, 50, fast); runJobs(e, eta.Window, slow) }, steps * slow},
	}
	for _, tt := range tests {
		e := eta.New(steps, prior)
		tt.jobs(e)
		if got := e.Remaining(1); got != tt.want {
			t.Errorf("%s: Remaining(1) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

// TestLearnsEachStep checks that a slow step weighs only on the estimates of
// the steps up to it.
func TestLearnsEachStep(t *testing.T) {
	e := eta.New(steps, 0)
	e.Observe(4, 3*time.Minute)
	tests := []struct {
		step int
		want time.Duration
	}{
		{1, 3 * time.Minute},
		{4, 3 * time.Minute},
		{5, 0},
	}
	for _, tt := range tests {
		if got := e.Remaining(tt.step); got != tt.want {
			t.Errorf("Remaining(%d) = %v; want %v", tt.step, got, tt.want)
		}
	}
}

// TestObserveIgnoresNonsense checks that what a worker may report outside
// the job's steps changes nothing.
func TestObserveIgnoresNonsense(t *testing.T) {
	e := eta.New(steps, time.Second)
	e.Observe(0, time.Hour)
	e.Observe(steps+1, time.Hour)
	e.Observe(1, -time.Hour)
	if got, want := e.Remaining(1), steps*time.Second; got != want {
		t.Errorf("Remaining(1) = %v; want %v", got, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := eta.New(steps, time.Second)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 1000 {
				e.Observe(i%steps+1, time.Second)
				e.Remaining(i % (steps + 2))
			}
		})
	}
	wg.Wait()
	if got, want := e.Remaining(1), steps*time.Second; got != want {
		t.Errorf("Remaining(1) = %v; want %v", got, want)
	}
}
