package jobs_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/jobs"
	"github.com/stephub/stephub/metrics"
	"github.com/stephub/stephub/storage"
)

// workerStepPrior mirrors the package's guess for a worker's step, which the
// first job's ETA is made of.
const workerStepPrior = 5 * time.Second

// newService returns a worker-pipeline Service on a real store, hub and
// metrics registry, and a user "u1" to run jobs for.
func newService(t *testing.T, url string) (*jobs.Service, *storage.Store, *prometheus.Registry) {
	t.Helper()
	store, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if _, err := store.EnsureUser(t.Context(), "u1", "", 100_000); err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	h := hub.New(hub.Options{History: store, Observer: m})
	t.Cleanup(h.Close)
	svc := jobs.New(jobs.Options{Store: store, Publisher: h, Observer: m})
	t.Cleanup(svc.Close)
	return svc, store, reg
}

// workerJob posts a whole job to svc as a worker would, pausing before each
// step but the first, and returns the stored events.
func workerJob(t *testing.T, svc *jobs.Service, videoID int64, pause time.Duration) []stephub.Event {
	t.Helper()
	var evs []stephub.Event
	for n := 1; n <= stephub.TotalSteps+1; n++ {
		if n > 1 {
			time.Sleep(pause)
		}
		st := stephub.Step{Step: n, Message: fmt.Sprintf("step %d", n), Progress: 100 * n / (stephub.TotalSteps + 1)}
		if n > stephub.TotalSteps {
			st.Status, st.VideoURL = stephub.StatusCompleted, new("/v.mp4")
		}
		ev, _, err := svc.Post(t.Context(), videoID, st)
		if err != nil {
			t.Fatalf("Post(step %d): %v", n, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func newVideo(t *testing.T, svc *jobs.Service) stephub.Video {
	t.Helper()
	v, err := svc.Generate(t.Context(), "u1", "a cat surfing a wave at sunset", "sora-2", nil)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return v
}

// sampleCount returns the number of observations, or the value, of the
// series of name whose labels include label=value ("" for none).
func sampleCount(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && !hasLabel(m, label, value) {
				continue
			}
			switch {
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("%s{%s=%q}: no such series", name, label, value)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func eta(ev stephub.Event) float64 {
	if ev.ETASeconds == nil {
		return -1
	}
	return *ev.ETASeconds
}

// TestPostETA checks the ETA of a worker's job: the prior at first, falling
// at every step, 0 at the end, and learned by the next job.
func TestPostETA(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		svc, _, _ := newService(t, url)
		const pause = 10 * time.Millisecond
		first := workerJob(t, svc, newVideo(t, svc).ID, pause)

		if got, want := eta(first[0]), (stephub.TotalSteps * workerStepPrior).Seconds(); got != want {
			t.Errorf("first job's first ETA = %v; want %v, the prior of every step", got, want)
		}
		for i := 1; i < stephub.TotalSteps; i++ {
			if eta(first[i]) >= eta(first[i-1]) {
				t.Errorf("ETA of step %d = %v; want below step %d's %v", i+1, eta(first[i]), i, eta(first[i-1]))
			}
		}
		if got := eta(first[stephub.TotalSteps]); got != 0 {
			t.Errorf("terminal ETA = %v; want 0", got)
		}

		// The first job's steps took about pause each: the next job's
		// estimate is made of those, not of the prior.
		second := workerJob(t, svc, newVideo(t, svc).ID, 0)
		low, high := (stephub.TotalSteps * pause).Seconds(), (stephub.TotalSteps*workerStepPrior).Seconds()/2
		if got := eta(second[0]); got < low || got > high {
			t.Errorf("second job's first ETA = %v; want between %v and %v, learned from the first job", got, low, high)
		}
	})
}

// TestPostRecordsOnce checks what a job reports to the observer: every step
// it moved past, once, and every event once, however often it is posted.
func TestPostRecordsOnce(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		svc, _, reg := newService(t, url)
		workerJob(t, svc, newVideo(t, svc).ID, 0)

		v := newVideo(t, svc)
		for range 2 { // a worker's retry of the same post
			st := stephub.Step{Step: 1, Message: "step 1", Progress: 11, IdempotencyKey: "k1"}
			if _, _, err := svc.Post(t.Context(), v.ID, st); err != nil {
				t.Fatalf("Post: %v", err)
			}
		}
		if _, err := svc.Cancel(t.Context(), "u1", v.ID); err != nil {
			t.Fatalf("Cancel: %v", err)
		}

		tests := []struct {
			name, label, value string
			want               float64
		}{
			{"stephub_events_published_total", "", "", 9 + 2},
			{"stephub_jobs_total", "status", "completed", 1},
			{"stephub_jobs_total", "status", "cancelled", 1},
		}
		for step := 1; step <= stephub.TotalSteps; step++ {
			tests = append(tests, struct {
				name, label, value string
				want               float64
			}{"stephub_step_duration_seconds", "step", fmt.Sprint(step), 1})
		}
		for _, tt := range tests {
			if got := sampleCount(t, reg, tt.name, tt.label, tt.value); got != tt.want {
				t.Errorf("%s{%s=%q} = %v; want %v", tt.name, tt.label, tt.value, got, tt.want)
			}
		}
	})
}
