package storage_test

import (
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/storage"
)

// stepPause is how long the step timing tests let a step run; every timing
// they check must be at least that.
const stepPause = 20 * time.Millisecond

// checkStepDone fails unless a ended the step want (0: none), having run
// at least atLeast.
func checkStepDone(t *testing.T, what string, a storage.Appended, want int, atLeast time.Duration) {
	t.Helper()
	switch got := a.StepDone; {
	case want == 0 && got != nil:
		t.Errorf("%s: StepDone = %+v; want nil", what, *got)
	case want == 0:
	case got == nil:
		t.Errorf("%s: StepDone = nil; want step %d", what, want)
	case got.Step != want || got.Duration < atLeast || got.Duration > atLeast+10*time.Second:
		t.Errorf("%s: StepDone = %+v; want step %d, at least %v", what, *got, want, atLeast)
	}
}

// TestStepTimingCompletedJob plays a whole job, with a repeated step (a
// worker's percent progress) and a skipped one: each step the job moved past
// is timed once, from its first event, and the terminal step is not.
func TestStepTimingCompletedJob(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")

		completed := step(9)
		completed.Status = stephub.StatusCompleted
		tests := []struct {
			post stephub.Step
			want int // the step it ends; 0: none
			// pauses is how many pauses the ended step ran for.
			pauses int
		}{
			{step(1), 0, 0},
			{stephub.Step{Step: 1, Message: "still step 1", Progress: 12}, 0, 0},
			{step(2), 1, 2},
			{step(4), 2, 1}, // step 3 never ran
			{step(5), 4, 1},
			{step(6), 5, 1},
			{step(7), 6, 1},
			{step(8), 7, 1},
			{completed, 8, 1},
		}
		timed := 0
		for i, tt := range tests {
			if i > 0 {
				time.Sleep(stepPause)
			}
			a := mustAppended(t, s, v.ID, tt.post)
			checkStepDone(t, "post "+tt.post.Message, a, tt.want, time.Duration(tt.pauses)*stepPause)
			if a.StepDone != nil {
				timed++
			}
		}
		if timed != 7 {
			t.Errorf("timed steps = %d; want 7 (1, 2, 4..8)", timed)
		}
	})
}

// TestStepTimingUnfinishedSteps checks the events that end no step: a job
// that fails or is cancelled, or goes back to the queue, has not finished
// the step it was at.
func TestStepTimingUnfinishedSteps(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		mustUser(t, s, "u1", 1000)

		failed := step(3)
		failed.Status, failed.Error = stephub.StatusFailed, ptr("the model refused")
		requeued := step(3)
		requeued.Status = stephub.StatusPending
		for _, next := range []stephub.Step{failed, requeued} {
			v := mustVideo(t, s, "u1")
			mustAppended(t, s, v.ID, step(2))
			checkStepDone(t, "post step 3 "+string(next.Status), mustAppended(t, s, v.ID, next), 0, 0)
		}

		v := mustVideo(t, s, "u1")
		mustAppended(t, s, v.ID, step(2))
		_, a, err := s.Cancel(t.Context(), "u1", v.ID, "cancelled")
		if err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		checkStepDone(t, "cancel", a, 0, 0)
	})
}

// TestStepTimingAcrossStores starts a step through one Store and ends it
// through another, as two nodes, or a process and its restart, do.
func TestStepTimingAcrossStores(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		first := mustOpen(t, url)
		mustUser(t, first, "u1", 1000)
		v := mustVideo(t, first, "u1")
		mustAppended(t, first, v.ID, step(1))
		first.Close()

		time.Sleep(stepPause)
		second := mustOpen(t, url)
		checkStepDone(t, "step 2 through the second store", mustAppended(t, second, v.ID, step(2)), 1, stepPause)
	})
}

// TestStepTimingRepeat checks that a repeated idempotent post reports no
// timing: the first post did.
func TestStepTimingRepeat(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		mustUser(t, s, "u1", 1000)
		v := mustVideo(t, s, "u1")
		mustAppended(t, s, v.ID, step(1))
		second := step(2)
		second.IdempotencyKey = "k2"
		checkStepDone(t, "first post", mustAppended(t, s, v.ID, second), 1, 0)
		a := mustAppended(t, s, v.ID, second)
		if !a.Repeat {
			t.Fatalf("second post: Repeat = false; want true")
		}
		checkStepDone(t, "repeated post", a, 0, 0)
	})
}

// TestTerminalEventETA checks that every terminal event says nothing is left
// to run, whatever ETA its poster gave, and that other events keep theirs.
func TestTerminalEventETA(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := mustOpen(t, url)
		mustUser(t, s, "u1", 1000)

		withETA := func(st stephub.Step, status stephub.Status) stephub.Step {
			st.Status, st.ETASeconds = status, ptr(12.5)
			if status == stephub.StatusFailed {
				st.Error = ptr("broken")
			}
			if status == stephub.StatusCompleted {
				st.VideoURL = ptr("/v.mp4")
			}
			return st
		}
		tests := []struct {
			status stephub.Status
			want   float64
		}{
			{stephub.StatusProcessing, 12.5},
			{stephub.StatusCompleted, 0},
			{stephub.StatusFailed, 0},
		}
		for _, tt := range tests {
			v := mustVideo(t, s, "u1")
			ev := mustAppend(t, s, v.ID, withETA(step(9), tt.status))
			if ev.ETASeconds == nil || *ev.ETASeconds != tt.want {
				t.Errorf("%s event: ETASeconds = %v; want %v", tt.status, ev.ETASeconds, tt.want)
			}
		}

		v := mustVideo(t, s, "u1")
		mustAppend(t, s, v.ID, withETA(step(2), stephub.StatusProcessing))
		_, a, err := s.Cancel(t.Context(), "u1", v.ID, "cancelled")
		if err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if got := a.Event.ETASeconds; got == nil || *got != 0 {
			t.Errorf("cancelled event: ETASeconds = %v; want 0", got)
		}
	})
}
