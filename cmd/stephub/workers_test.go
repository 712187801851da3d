package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/logbuf"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/pipeline"
	"github.com/stephub/stephub/storage"
	"github.com/stephub/stephub/worker"
)

// startWorker runs a reference worker against s until the returned stop is
// called (or the test ends); stop returns once the worker has. The worker
// logs to logs, or nowhere if it is nil.
func startWorker(t *testing.T, s *testServer, concurrency int, delay string, logs *logbuf.Buffer) (stop func()) {
	t.Helper()
	d, err := pipeline.ParseDelay(delay)
	if err != nil {
		t.Fatal(err)
	}
	var out io.Writer = io.Discard
	if logs != nil {
		out = logs
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		worker.Run(ctx, worker.Config{
			Server: s.URL, Token: testWorkerToken, Concurrency: concurrency, StepDelay: d,
			ClaimWait: time.Second, Logger: slog.New(slog.NewJSONHandler(out, nil)),
		})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestWorkersRunEveryVideo runs thirty videos through three reference
// workers: every video completes, is claimed once, and streams its events
// complete and in order.
func TestWorkersRunEveryVideo(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external", "NEW_USER_CREDITS": "5000"})
		token := userToken(t, "busy")
		for range 3 {
			startWorker(t, s, 2, "1ms-5ms", nil)
		}
		var ids []int64
		for range 30 {
			ids = append(ids, generate(t, s, token).ID)
		}
		for _, id := range ids {
			checkComplete(t, fmt.Sprintf("video %d", id), openStream(t, s, token, id, "").readAll(t))
		}
		store, err := storage.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		for _, id := range ids {
			v, err := store.Video(context.Background(), id)
			if err != nil || v.Status != "completed" || v.Attempts != 1 {
				t.Errorf("video %d: %s after %d claims (%v); want completed after 1", id, v.Status, v.Attempts, err)
			}
		}
	})
}

// checkNoRepeats fails unless events are what watchers of a job whose
// worker was lost must see: ids 1..n in order, steps never going back,
// wantRequeues events saying the job went back to the queue, and the given
// end.
func checkNoRepeats(t *testing.T, events []event, wantRequeues int, wantLast string) {
	t.Helper()
	requeued := 0
	for i, ev := range events {
		if ev.ID != int64(i+1) {
			t.Errorf("event %d has id %d; want %d", i, ev.ID, i+1)
		}
		if i > 0 && ev.Step < events[i-1].Step {
			t.Errorf("event %d goes back from step %d to %d", ev.ID, events[i-1].Step, ev.Step)
		}
		if ev.Status == "pending" {
			requeued++
		}
	}
	if requeued != wantRequeues {
		t.Errorf("%d requeue events; want %d: %+v", requeued, wantRequeues, events)
	}
	if last := events[len(events)-1]; last.Status != wantLast {
		t.Errorf("last event %+v; want status %s", last, wantLast)
	}
}

// TestWorkerLostMidJob stops a worker without a word in the middle of a job.
// After its lease, the job goes to another worker, or fails and is refunded
// when no attempt is left; its watcher sees it all, nothing repeated.
func TestWorkerLostMidJob(t *testing.T) {
	for _, tc := range []struct {
		name, attempts, want string
		takeOver             bool
	}{
		{"taken over", "3", "completed", true},
		{"attempts used up", "1", "failed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testdb.ForEach(t, func(t *testing.T, url string) {
				s := startServer(t, url, map[string]string{"PIPELINE": "external", "LEASE": "1s", "MAX_ATTEMPTS": tc.attempts})
				token := userToken(t, "unlucky")
				v := generate(t, s, token)
				stopFirst := startWorker(t, s, 1, "200ms", nil)
				st := openStream(t, s, token, v.ID, "")
				seen := st.take(t, 3)
				stopFirst()
				if tc.takeOver {
					startWorker(t, s, 1, "1ms", nil)
				}
				seen = append(seen, st.readAll(t)...)
				wantRequeues, wantCredits := 1, int64(900)
				if !tc.takeOver {
					wantRequeues, wantCredits = 0, 1000 // failed at once, refunded
				}
				checkNoRepeats(t, seen, wantRequeues, tc.want)
				if got := credits(t, s, token); got != wantCredits {
					t.Errorf("credits = %d; want %d", got, wantCredits)
				}
			})
		})
	}
}

// TestWorkerLearnsOfCancel cancels a video while a worker runs it: the
// worker's next post is refused, it stops, the stream ends with the cancel
// and the credits come back.
func TestWorkerLearnsOfCancel(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external"})
		token := userToken(t, "changed-mind")
		v := generate(t, s, token)
		logs := &logbuf.Buffer{}
		startWorker(t, s, 1, "150ms", logs)
		st := openStream(t, s, token, v.ID, "")
		if _, _, err := st.next(t); err != nil {
			t.Fatal(err)
		}
		if resp, body := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/cancel", s.URL, v.ID), token, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("cancel: %d %s", resp.StatusCode, body)
		}
		rest := st.readAll(t)
		if len(rest) == 0 || rest[len(rest)-1].Status != "cancelled" {
			t.Fatalf("after the cancel: %+v; want the stream to end with it", rest)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), `"msg":"job stopped by the server","video_id":`+fmt.Sprint(v.ID)) {
			if time.Now().After(deadline) {
				t.Fatalf("the worker never stopped the job:\n%s", logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), "video_cancelled") {
			t.Errorf("the worker was not told video_cancelled:\n%s", logs.String())
		}
		if got := credits(t, s, token); got != 1000 {
			t.Errorf("credits = %d; want 1000", got)
		}
	})
}

// TestBadWorkerInput sends what a broken worker might, and checks each gets
// its error and leaves the video's stream as it was.
func TestBadWorkerInput(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	token := userToken(t, "victim")
	v := generate(t, s, token)
	path := fmt.Sprintf("%s/api/v1/videos/%d/events", s.URL, v.ID)
	post := func(tok, url, body string) (int, string) {
		resp, data := call(t, "POST", url, tok, body, nil)
		return resp.StatusCode, string(data)
	}
	if code, body := post(testWorkerToken, path, `{"step": 3, "message": "three", "progress": 33}`); code != 202 {
		t.Fatalf("good post: %d %s", code, body)
	}
	for _, tc := range []struct {
		name, token, url, body string
		status                 int
		code                   string
	}{
		{"wrong token", "not-the-token", path, `{"step": 4, "message": "m", "progress": 40}`, 401, "unauthorized"},
		{"unknown video", testWorkerToken, s.URL + "/api/v1/videos/424242/events", `{"step": 4, "message": "m", "progress": 40}`, 404, "not_found"},
		{"step going backwards", testWorkerToken, path, `{"step": 2, "message": "m", "progress": 40}`, 422, "validation_failed"},
		{"progress going backwards", testWorkerToken, path, `{"step": 3, "message": "m", "progress": 10}`, 422, "validation_failed"},
		{"progress 150", testWorkerToken, path, `{"step": 4, "message": "m", "progress": 150}`, 422, "validation_failed"},
		{"oversized message", testWorkerToken, path, `{"step": 4, "message": "` + strings.Repeat("m", 70<<10) + `", "progress": 40}`, 413, "body_too_large"},
		{"message too long", testWorkerToken, path, `{"step": 4, "message": "` + strings.Repeat("m", 1001) + `", "progress": 40}`, 422, "validation_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(tc.token, tc.url, tc.body)
			if code != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) {
				t.Errorf("got %d %s; want %d %s", code, body, tc.status, tc.code)
			}
		})
	}
	// The stream still holds just the good post.
	resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, v.ID), token, nil, nil)
	if got := decodeJSON[video](t, body); resp.StatusCode != 200 || got.Step != 3 || got.Progress != 33 {
		t.Errorf("video after bad posts: %s; want step 3 at 33%%", body)
	}
	// A second terminal event is refused.
	if code, body := post(testWorkerToken, path, `{"step": 9, "message": "done", "progress": 100, "status": "completed", "video_url": "/v.mp4"}`); code != 202 {
		t.Fatalf("completing: %d %s", code, body)
	}
	if code, body := post(testWorkerToken, path, `{"step": 9, "message": "again", "progress": 100, "status": "failed", "error": "x"}`); code != http.StatusConflict || !strings.Contains(body, "video_finished") {
		t.Errorf("second terminal event: %d %s; want 409 video_finished", code, body)
	}
	events := openStream(t, s, token, v.ID, "").readAll(t)
	if len(events) != 2 || events[0].Step != 3 || events[1].Status != "completed" {
		t.Errorf("stream = %+v; want the good post and the completion only", events)
	}
}

// TestWorkerBacksOffRefusedClaims runs a worker with a wrong token for a
// second: the server refuses its claims, and it retries them with growing
// pauses (100, 200, 400 ms…) rather than at once, saying why in its log.
func TestWorkerBacksOffRefusedClaims(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	logs := &logbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	worker.Run(ctx, worker.Config{Server: s.URL, Token: "not-the-worker-token", ClaimWait: time.Second,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})

	refused, _ := metricValue(scrapeMetrics(t, s), "stephub_http_requests_total", "route=/api/v1/worker/claim", "code=401")
	if refused < 2 || refused > 6 {
		t.Errorf("%v refused claims in a second; want a few retries, spaced by the backoff", refused)
	}
	if !strings.Contains(logs.String(), "claim refused") {
		t.Errorf("worker log says nothing of the refusal:\n%s", logs.String())
	}
}

// TestWorkerLosesItsLease runs a reference worker too slow for its lease:
// the video goes back to the queue between two of its steps, its next post
// (carrying the lost lease's token) is refused with lease_lost, and it stops
// the job, says so, and claims the video again from its stored step.
func TestWorkerLosesItsLease(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external", "LEASE": "1s", "MAX_ATTEMPTS": "2"})
		token := userToken(t, "sluggish")
		v := generate(t, s, token)
		logs := &logbuf.Buffer{}
		startWorker(t, s, 1, "2500ms", logs)
		events := openStream(t, s, token, v.ID, "").readAll(t)
		var got []string
		for _, ev := range events {
			got = append(got, fmt.Sprintf("%d:%s", ev.Step, ev.Status))
		}
		// Claimed twice, each time from step 1; the second lease runs out
		// too, and with it the attempts.
		if want := "1:processing 1:pending 1:processing 1:failed"; strings.Join(got, " ") != want {
			t.Errorf("events %s; want %s", strings.Join(got, " "), want)
		}
		if !strings.Contains(logs.String(), `"msg":"job lost: its lease ran out before its next step"`) ||
			!strings.Contains(logs.String(), "lease_lost") {
			t.Errorf("the worker did not say it lost its lease:\n%s", logs.String())
		}
	})
}

// postWorker posts body to a video's events as a worker, with header on
// top, and returns the answer.
func postWorker(t *testing.T, s *testServer, videoID int64, body any, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	return call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/events", s.URL, videoID), testWorkerToken, body, header)
}

// checkAnswer fails unless the answer has the status and, for an error,
// the code.
func checkAnswer(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || (code != "" && !strings.Contains(string(body), `"code":"`+code+`"`)) {
		t.Errorf("%s: %d %s; want %d %s", what, resp.StatusCode, body, status, code)
	}
}

// TestWorkerToldToStopFirst posts to a cancelled and to a completed video,
// with and without an Idempotency-Key, bodies good and bad: each answer is
// 409 video_cancelled or video_finished, given before the body is read
// (the answer closes the connection), and nothing is stored. A retry of a
// post stored before the end still gets its first answer.
func TestWorkerToldToStopFirst(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external"})
		token := userToken(t, "stopper")
		keyed := map[string]string{"Idempotency-Key": "first"}

		completed := generate(t, s, token)
		resp, body := postWorker(t, s, completed.ID, workerStep(1), keyed)
		checkAnswer(t, "first step", resp, body, http.StatusAccepted, "")
		first := decodeJSON[struct{ ID int64 }](t, body)
		postWorkerJob(t, s, completed.ID, 0, 2, stephubSteps)

		cancelled := generate(t, s, token)
		resp, body = postWorker(t, s, cancelled.ID, workerStep(1), keyed)
		checkAnswer(t, "first step", resp, body, http.StatusAccepted, "")
		if resp, body := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/cancel", s.URL, cancelled.ID), token, nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("cancel: %d %s", resp.StatusCode, body)
		}

		good := `{"step": 5, "message": "late", "progress": 60}`
		bodies := []struct {
			name, body string
			header     map[string]string
		}{
			{"a good body", good, nil},
			{"not JSON", "{broken", nil},
			{"not application/json", good, map[string]string{"Content-Type": "text/plain"}},
			{"over 64 KiB", `{"step": 5, "message": "` + strings.Repeat("m", 70<<10) + `", "progress": 60}`, nil},
			{"the wrong shape", `{"step": "five", "progress": 150}`, nil},
		}
		for _, v := range []struct {
			name string
			id   int64
			code string
		}{
			{"cancelled", cancelled.ID, "video_cancelled"},
			{"completed", completed.ID, "video_finished"},
		} {
			for _, b := range bodies {
				for _, key := range []string{"", "never-stored", "\xff\xfe not UTF-8", strings.Repeat("k", 300)} {
					what := fmt.Sprintf("%s video, %s, Idempotency-Key %q", v.name, b.name, key)
					header := map[string]string{"Idempotency-Key": key}
					for k, val := range b.header {
						header[k] = val
					}
					resp, body := postWorker(t, s, v.id, b.body, header)
					checkAnswer(t, what, resp, body, http.StatusConflict, v.code)
					if !resp.Close {
						t.Errorf("%s: the answer keeps the connection open; want it sent before the body, with Connection: close", what)
					}
				}
			}
			// The retry of a post stored before the end is answered as
			// the first time.
			resp, body := postWorker(t, s, v.id, workerStep(1), keyed)
			checkAnswer(t, v.name+" video, a stored post retried", resp, body, http.StatusAccepted, "")
			if got := decodeJSON[struct{ ID int64 }](t, body); got.ID != first.ID {
				t.Errorf("%s video, a stored post retried: id %d; want %d, the first answer's", v.name, got.ID, first.ID)
			}
		}

		if evs := openStream(t, s, token, completed.ID, "").readAll(t); len(evs) != stephubSteps {
			t.Errorf("completed video has %d events; want %d: the refused posts stored nothing", len(evs), stephubSteps)
		}
		if evs := openStream(t, s, token, cancelled.ID, "").readAll(t); len(evs) != 2 || evs[1].Status != "cancelled" {
			t.Errorf("cancelled video's events: %+v; want the first step and the cancel", evs)
		}
	})
}
