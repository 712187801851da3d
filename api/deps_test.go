package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stephub/stephub"
	"github.com/stephub/stephub/api"
	"github.com/stephub/stephub/metrics"
)

// These tests run the API on a real listener with small fakes of the jobs
// service and the store: what they prove needs no database, only one that
// answers as told — a dead one included.

// fakeDatabase is up until down is set.
type fakeDatabase struct {
	mu   sync.Mutex
	down error
}

func (d *fakeDatabase) Ping(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.down
}

func (d *fakeDatabase) set(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = err
}

// takingVideos takes every post; any other method of api.Videos panics.
type takingVideos struct{ api.Videos }

func (takingVideos) ForecastPost(context.Context, int64, string, string) error { return nil }

// postingJobs answers Post with what it is given and records the steps it
// was asked to store; any other method of api.Jobs, but RunsEveryVideo,
// panics.
type postingJobs struct {
	api.Jobs
	mu         sync.Mutex
	steps      []stephub.Step
	ev         stephub.Event
	leaseToken string
	err        error
}

func (j *postingJobs) RunsEveryVideo() bool { return false }

func (j *postingJobs) Post(_ context.Context, videoID int64, step stephub.Step) (stephub.Event, string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.steps = append(j.steps, step)
	return j.ev, j.leaseToken, j.err
}

func (j *postingJobs) answer(ev stephub.Event, leaseToken string, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ev, j.leaseToken, j.err = ev, leaseToken, err
}

const workerToken = "worker-token-for-tests"

// serve runs the API with deps on a real listener until the test ends.
func serve(t *testing.T, deps api.Deps) *httptest.Server {
	t.Helper()
	deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	deps.Metrics = metrics.New(prometheus.NewRegistry())
	srv := httptest.NewServer(api.NewServer(api.Config{WorkerToken: workerToken}, deps))
	t.Cleanup(srv.Close)
	return srv
}

// call sends req and returns the status and the decoded JSON body.
func call(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: %d with a body that is not JSON: %v", req.Method, req.URL.Path, resp.StatusCode, err)
	}
	return resp, body
}

// TestReadyzFollowsTheDatabase: /readyz answers 503 while the database
// does not answer its ping, and 200 again once it does.
func TestReadyzFollowsTheDatabase(t *testing.T) {
	db := &fakeDatabase{}
	srv := serve(t, api.Deps{Database: db})
	for _, tt := range []struct {
		down       error
		wantStatus int
		wantBody   string
	}{
		{nil, http.StatusOK, "ok"},
		{errors.New("connection refused"), http.StatusServiceUnavailable, "database unreachable"},
		{nil, http.StatusOK, "ok"},
	} {
		db.set(tt.down)
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/readyz", nil)
		resp, body := call(t, req)
		if resp.StatusCode != tt.wantStatus || body["status"] != tt.wantBody {
			t.Errorf("database down: %v: /readyz = %d %v; want %d with status %q", tt.down, resp.StatusCode, body, tt.wantStatus, tt.wantBody)
		}
	}
}

// TestWorkerPostAnswers runs a worker's post through to the jobs service
// and back: the step and the lease token reach Post; its event and new
// lease token reach the worker; a refusal is the worker's to read, and an
// error of the service's own is a 500, or a 503 while the database is down.
func TestWorkerPostAnswers(t *testing.T) {
	db := &fakeDatabase{}
	jobs := &postingJobs{}
	srv := serve(t, api.Deps{Database: db, Videos: takingVideos{}, Jobs: jobs})
	post := func() (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/videos/7/events",
			strings.NewReader(`{"step": 2, "message": "rendering", "progress": 20}`))
		req.Header.Set("Authorization", "Bearer "+workerToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Lease-Token", "held")
		return call(t, req)
	}

	jobs.answer(stephub.Event{ID: 3}, "fresh", nil)
	resp, body := post()
	if resp.StatusCode != http.StatusAccepted || body["id"] != 3.0 || resp.Header.Get("Lease-Token") != "fresh" {
		t.Errorf("a stored post: %d %v, Lease-Token %q; want 202 with id 3, Lease-Token fresh",
			resp.StatusCode, body, resp.Header.Get("Lease-Token"))
	}
	jobs.mu.Lock()
	got := jobs.steps
	jobs.mu.Unlock()
	want := stephub.Step{Step: 2, Message: "rendering", Progress: 20, Status: stephub.StatusProcessing, LeaseToken: "held"}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("Post was given %+v; want one step %+v", got, want)
	}

	failure := errors.New("the disk is full")
	for _, tt := range []struct {
		name       string
		postErr    error
		down       error
		wantStatus int
		wantCode   string
	}{
		{"a lost lease", stephub.ErrLeaseLost, nil, http.StatusConflict, stephub.CodeLeaseLost},
		{"a failure", failure, nil, http.StatusInternalServerError, stephub.CodeInternal},
		{"a failure with the database down", failure, errors.New("connection refused"), http.StatusServiceUnavailable, stephub.CodeUnavailable},
	} {
		jobs.answer(stephub.Event{}, "", tt.postErr)
		db.set(tt.down)
		resp, body := post()
		e, _ := body["error"].(map[string]any)
		if resp.StatusCode != tt.wantStatus || e["code"] != tt.wantCode || resp.Header.Get("Lease-Token") != "" {
			t.Errorf("%s: %d %v, Lease-Token %q; want %d with code %q and no Lease-Token",
				tt.name, resp.StatusCode, body, resp.Header.Get("Lease-Token"), tt.wantStatus, tt.wantCode)
		}
	}
}
