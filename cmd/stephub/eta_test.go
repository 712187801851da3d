package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/testdb"
)

// etaEvent is what the ETA tests read of an event.
type etaEvent struct {
	ID     int64    `json:"id"`
	Step   int      `json:"step"`
	Status string   `json:"status"`
	ETA    *float64 `json:"eta_seconds"`
}

// readETAs reads st's events until the server closes it or, with limit
// above 0, until limit events have come.
func readETAs(t *testing.T, st *sseStream, limit int) []etaEvent {
	t.Helper()
	var out []etaEvent
	for limit <= 0 || len(out) < limit {
		line, err := st.r.ReadString('\n')
		if err != nil {
			return out
		}
		data, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "data: ")
		if !ok {
			continue
		}
		var ev etaEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %s: %v", data, err)
		}
		if ev.ETA == nil {
			t.Fatalf("event %s has no eta_seconds", data)
		}
		out = append(out, ev)
	}
	return out
}

// checkETAFalls fails unless a whole job's ETAs fall at every step and end
// at 0.
func checkETAFalls(t *testing.T, who string, evs []etaEvent) {
	t.Helper()
	if len(evs) != 9 {
		t.Fatalf("%s: %d events; want 9", who, len(evs))
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

		first := readETAs(t, openStream(t, s, token, generate(t, s, token).ID, ""), 0)
		checkETAFalls(t, "first job", first)
		for i, ev := range first[:8] {
			// Nothing of step n or later has finished yet when step n
			// starts: each counts as the step delay.
			if want := (time.Duration(8-i) * delay).Seconds(); *ev.ETA != want {
				t.Errorf("first job: ETA at step %d = %v; want %v", ev.Step, *ev.ETA, want)
			}
		}

		second := readETAs(t, openStream(t, s, token, generate(t, s, token).ID, ""), 0)
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
			postWorkerJob(t, s, v.ID, 0, 1)
			st := openStream(t, s, token, v.ID, "")
			evs := readETAs(t, st, 1)
			st.Close()
			if len(evs) != 1 {
				t.Fatalf("video %d: no first event", v.ID)
			}
			return v.ID, *evs[0].ETA
		}
		// finish posts the rest of a job started by firstETA.
		finish := func(videoID int64, pause time.Duration) {
			for n := 2; n <= 9; n++ {
				time.Sleep(pause)
				body := fmt.Sprintf(`{"step": %d, "message": "step %d", "progress": %d}`, n, n, 100*n/9)
				if n == 9 {
					body = `{"step": 9, "message": "done", "progress": 100, "status": "completed", "video_url": "/v.mp4"}`
				}
				postWorkerStep(t, s, videoID, body)
			}
		}

		id, prior := firstETA()
		if want := 8 * 5.0; prior != want {
			t.Errorf("first job's first ETA = %v; want %v, 8 steps of the 5 s a worker's step is assumed to take", prior, want)
		}
		finish(id, 0)
		fast := generate(t, s, token)
		postWorkerJob(t, s, fast.ID, 0, stephubSteps)

		id, afterFast := firstETA()
		if afterFast >= prior {
			t.Errorf("first ETA after fast jobs = %v; want below the prior's %v", afterFast, prior)
		}
		finish(id, 0)
		const slowStep = 80 * time.Millisecond
		for range 2 {
			slow := generate(t, s, token)
			postWorkerJob(t, s, slow.ID, slowStep, stephubSteps)
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
