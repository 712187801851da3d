package main

import (
	"testing"
	"time"

	"github.com/stephub/stephub/internal/testdb"
)

// checkETAFalls fails unless every event of a whole job has an ETA, and
// the ETAs fall at every step and end at 0.
func checkETAFalls(t *testing.T, who string, evs []event) {
	t.Helper()
	if len(evs) != 9 {
		t.Fatalf("%s: %d events; want 9", who, len(evs))
	}
	for _, ev := range evs {
		if ev.ETA == nil {
			t.Fatalf("%s: event %+v has no eta_seconds", who, ev)
		}
	}
	for i := 1; i < 8; i++ {
		if *evs[i].ETA >= *evs[i-1].ETA {
			t.Errorf("%s: ETA at step %d = %v; want below step %d's %v", who, evs[i].Step, *evs[i].ETA, evs[i-1].Step, *evs[i-1].ETA)
		}
	}
	if got := *evs[7].ETA; got <= 0 {
		t.Errorf("%s: ETA at step 8 = %v; want above 0, the step has yet to run", who, got)
	}
	if last := evs[8]; last.Status != "completed" || *last.ETA != 0 {
		t.Errorf("%s: terminal event %s with ETA %v; want completed with 0", who, last.Status, *last.ETA)
	}
}

// TestETAFallsDuringJob watches mock jobs: the first one's ETA is made of the
// configured step delay, step by step; the next one's of what the first
// took, and still falls to 0.
func TestETAFallsDuringJob(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		const delay = 30 * time.Millisecond
		s := startServer(t, url, map[string]string{"STEP_DELAY": delay.String()})
		token := userToken(t, "patient")

		first := openStream(t, s, token, generate(t, s, token).ID, "").readAll(t)
		checkETAFalls(t, "first job", first)
		for i, ev := range first[:8] {
			// Nothing of step n or later has finished yet when step n
			// starts: each counts as the step delay.
			if want := (time.Duration(8-i) * delay).Seconds(); *ev.ETA != want {
				t.Errorf("first job: ETA at step %d = %v; want %v", ev.Step, *ev.ETA, want)
			}
		}

		second := openStream(t, s, token, generate(t, s, token).ID, "").readAll(t)
		checkETAFalls(t, "second job", second)
		// Each step of the first job took the delay and a little more.
		if got, low := *second[0].ETA, (8 * delay).Seconds(); got < low {
			t.Errorf("second job: first ETA = %v; want at least %v, what the first job's steps took", got, low)
		}
	})
}

// TestETALearnsFromWorkerJobs runs jobs whose steps a worker posts quickly,
// then slowly, on one server: a job that starts after the slow ones is told
// it has longer to go than one that started after the fast ones.
func TestETALearnsFromWorkerJobs(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external"})
		token := userToken(t, "learner")

		// firstETA starts a job at step 1 and returns the ETA its
		// watchers see; the job is left at step 1.
		firstETA := func() (int64, float64) {
			v := generate(t, s, token)
			postWorkerJob(t, s, v.ID, 0, 1, 1)
			st := openStream(t, s, token, v.ID, "")
			ev := st.take(t, 1)[0]
			st.Close()
			if ev.ETA == nil {
				t.Fatalf("video %d: first event %+v has no eta_seconds", v.ID, ev)
			}
			return v.ID, *ev.ETA
		}

		id, prior := firstETA()
		if want := 8 * 5.0; prior != want {
			t.Errorf("first job's first ETA = %v; want %v, 8 steps of the 5 s a worker's step is assumed to take", prior, want)
		}
		postWorkerJob(t, s, id, 0, 2, stephubSteps)
		fast := generate(t, s, token)
		postWorkerJob(t, s, fast.ID, 0, 1, stephubSteps)

		id, afterFast := firstETA()
		if afterFast >= prior {
			t.Errorf("first ETA after fast jobs = %v; want below the prior's %v", afterFast, prior)
		}
		postWorkerJob(t, s, id, 0, 2, stephubSteps)
		const slowStep = 80 * time.Millisecond
		for range 2 {
			slow := generate(t, s, token)
			postWorkerJob(t, s, slow.ID, slowStep, 1, stephubSteps)
		}

		_, afterSlow := firstETA()
		t.Logf("first ETAs: %v at start, %v after fast jobs, %v after slow jobs", prior, afterFast, afterSlow)
		if afterSlow <= afterFast {
			t.Errorf("first ETA after slow jobs = %v; want above the %v after fast jobs", afterSlow, afterFast)
		}
		// Two slow jobs of five: the mean of each step is at least 2/5
		// of a slow step.
		if low := (8 * 2 * slowStep / 5).Seconds(); afterSlow < low {
			t.Errorf("first ETA after slow jobs = %v; want at least %v", afterSlow, low)
		}
	})
}
