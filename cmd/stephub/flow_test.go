package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/testdb"
)

// TestGenerateStreamComplete is the guide's curl walkthrough: generate, watch
// the stream to the end, and find the credits and the video as promised.
func TestGenerateStreamComplete(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, nil)
		token := userToken(t, "alice")
		before := credits(t, s, token)

		v := generate(t, s, token)
		st := openStream(t, s, token, v.ID, "")
		events := st.readAll(t)
		checkComplete(t, "stream", events)
		if st.retry != "3000" {
			t.Errorf("retry = %q; want 3000", st.retry)
		}
		wantMessages := []string{
			"🔍 Validating request parameters...",
			"📸 Processing reference image...",
			"🤖 Calling Sora 2 API...",
			"⏳ Waiting for AI processing (this may take 2-5 minutes)...",
			"🎬 Rendering video frames...",
		}
		for i, want := range wantMessages {
			if events[i].Message != want {
				t.Errorf("step %d message = %q; want %q", i+1, events[i].Message, want)
			}
		}
		for i, ev := range events[:8] {
			if want := 100 * (i + 1) / 9; ev.Progress != want || ev.Status != "processing" {
				t.Errorf("step %d: progress %d, status %s; want %d, processing", i+1, ev.Progress, ev.Status, want)
			}
		}

		if got := credits(t, s, token); got != before-100 {
			t.Errorf("credits = %d; want %d", got, before-100)
		}
		resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, v.ID), token, nil, nil)
		got := decodeJSON[video](t, body)
		if resp.StatusCode != http.StatusOK || got.Status != "completed" || got.Step != 9 || got.Progress != 100 ||
			got.VideoURL == nil || *got.VideoURL != "/uploads/videos/mock-video.mp4" {
			t.Errorf("video = %d %s; want 200, completed at step 9 with its URL", resp.StatusCode, body)
		}

		// Everything seen: nothing is left to send, and 204 stops EventSource.
		resp, _ = call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d/stream?token=%s", s.URL, v.ID, token), "", nil,
			map[string]string{"Last-Event-ID": "9"})
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("stream after the last event: status %d; want 204", resp.StatusCode)
		}
		// A late joiner of a finished video still gets the whole history.
		checkComplete(t, "late joiner", openStream(t, s, token, v.ID, "").readAll(t))

		// One log line per stream, with what it sent and why it ended.
		if !regexp.MustCompile(`"msg":"stream ended","transport":"sse","video_id":\d+,"user":"alice","duration_s":[0-9.e-]+,"events":9,"reason":"finished"`).MatchString(s.logs.String()) {
			t.Errorf("no stream line with 9 events in the log:\n%s", s.logs.String())
		}
	})
}

// TestCreditsRace sends ten generates at once against 300 credits: exactly
// three may succeed.
func TestCreditsRace(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"STEP_DELAY": "1h"})
		resp, body := call(t, "PUT", s.URL+"/api/v1/admin/users/racer", testAdminToken, map[string]any{"credits": 300}, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("admin put: %d %s", resp.StatusCode, body)
		}
		token := userToken(t, "racer")
		codes := make([]int, 10)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range codes {
			wg.Go(func() {
				<-start
				resp, _ := call(t, "POST", s.URL+"/api/v1/videos/generate", token,
					map[string]any{"prompt": fmt.Sprintf("racing prompt number %d", i), "model": "sora-2-pro"}, nil)
				codes[i] = resp.StatusCode
			})
		}
		close(start)
		wg.Wait()
		count := map[int]int{}
		for _, c := range codes {
			count[c]++
		}
		if count[http.StatusCreated] != 3 || count[http.StatusPaymentRequired] != 7 {
			t.Errorf("statuses = %v; want 3×201 and 7×402", count)
		}
		if got := credits(t, s, token); got != 0 {
			t.Errorf("credits = %d; want 0", got)
		}
		resp, body = call(t, "GET", s.URL+"/api/v1/videos", token, nil, nil)
		if n := len(decodeJSON[struct{ Videos []video }](t, body).Videos); resp.StatusCode != 200 || n != 3 {
			t.Errorf("videos listed = %d (status %d); want 3", n, resp.StatusCode)
		}
	})
}

// TestThreeSubscribers watches one job from three tabs: one from the start,
// one joining halfway, and one that drops and reconnects with Last-Event-ID.
// Each must see every event exactly once, in order.
func TestThreeSubscribers(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"STEP_DELAY": "60ms"})
		token := userToken(t, "viewer")
		v := generate(t, s, token)

		first := openStream(t, s, token, v.ID, "")
		dropper := openStream(t, s, token, v.ID, "")

		var mu sync.Mutex
		var firstSeen []event
		halfway := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				_, ev, err := first.next(t)
				if err != nil {
					return
				}
				mu.Lock()
				firstSeen = append(firstSeen, ev)
				mu.Unlock()
				if ev.ID == 4 {
					close(halfway)
				}
			}
		})

		// The dropper reads three events, goes away, and comes back.
		var dropperSeen []event
		for range 3 {
			_, ev, err := dropper.next(t)
			if err != nil {
				t.Fatalf("dropper: %v", err)
			}
			dropperSeen = append(dropperSeen, ev)
		}
		dropper.Close()

		<-halfway
		joiner := openStream(t, s, token, v.ID, "")
		joinerSeen := joiner.readAll(t)

		back := openStream(t, s, token, v.ID, fmt.Sprint(dropperSeen[len(dropperSeen)-1].ID))
		dropperSeen = append(dropperSeen, back.readAll(t)...)
		wg.Wait()

		checkComplete(t, "from the start", firstSeen)
		checkComplete(t, "joined halfway", joinerSeen)
		checkComplete(t, "dropped and reconnected", dropperSeen)
	})
}

// TestCancelMidJob cancels a running job: the stream ends with a cancelled
// event at the step reached, no step follows, and the credits come back.
func TestCancelMidJob(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"STEP_DELAY": "100ms"})
		token := userToken(t, "canceller")
		v := generate(t, s, token)
		st := openStream(t, s, token, v.ID, "")
		seen := st.take(t, 2)
		resp, body := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/cancel", s.URL, v.ID), token, nil, nil)
		if got := decodeJSON[video](t, body); resp.StatusCode != http.StatusOK || got.Status != "cancelled" {
			t.Fatalf("cancel: %d %s; want 200 and status cancelled", resp.StatusCode, body)
		}
		seen = append(seen, st.readAll(t)...)
		last := seen[len(seen)-1]
		for i, ev := range seen {
			if ev.ID != int64(i+1) {
				t.Errorf("event %d has id %d; want %d", i, ev.ID, i+1)
			}
		}
		if last.Status != "cancelled" || last.Step != seen[len(seen)-2].Step || last.Progress != seen[len(seen)-2].Progress {
			t.Errorf("last event %+v; want cancelled at the step and progress before it (%+v)", last, seen[len(seen)-2])
		}
		if got := credits(t, s, token); got != 1000 {
			t.Errorf("credits = %d; want 1000: the 100 come back", got)
		}
		// The mock job was stopped: nothing is added later.
		time.Sleep(300 * time.Millisecond)
		resp, body = call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d/stream?token=%s", s.URL, v.ID, token), "", nil,
			map[string]string{"Last-Event-ID": fmt.Sprint(last.ID)})
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("stream after the cancel: %d %s; want 204", resp.StatusCode, body)
		}
	})
}

// TestWorkerEvents posts a job's steps as an external worker would: data
// passes through unchanged, a retried post with the same Idempotency-Key is
// stored once, and a failed job gives its credits back.
func TestWorkerEvents(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external"})
		token := userToken(t, "worked")
		v := generate(t, s, token)
		post := func(body string, key string) (int, string) {
			resp, data := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/events", s.URL, v.ID), testWorkerToken, body,
				map[string]string{"Idempotency-Key": key})
			return resp.StatusCode, string(data)
		}
		for _, tc := range []struct {
			body, key, want string
		}{
			{`{"step": 1, "message": "🔍 checking", "progress": 5, "data": {"frames": 0, "thumb": "https://x/t.png"}}`, "a", `{"id":1}`},
			{`{"step": 1, "message": "🔍 still checking", "progress": 9}`, "b", `{"id":2}`},
			{`{"step": 1, "message": "🔍 still checking", "progress": 9}`, "b", `{"id":2}`}, // a retry
			{`{"step": 3, "message": "💥", "progress": 30, "status": "failed", "error": "the model refused"}`, "c", `{"id":3}`},
		} {
			if code, body := post(tc.body, tc.key); code != http.StatusAccepted || strings.TrimSpace(body) != tc.want {
				t.Errorf("post %s: %d %s; want 202 %s", tc.body, code, body, tc.want)
			}
		}
		events := openStream(t, s, token, v.ID, "").readAll(t)
		if len(events) != 3 || events[2].Status != "failed" {
			t.Fatalf("stream = %+v; want 3 events, the last failed", events)
		}
		resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d/stream?token=%s", s.URL, v.ID, token), "", nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"data":{"frames":0,"thumb":"https://x/t.png"}`) ||
			!strings.Contains(string(body), `"status":"failed"`) || !strings.Contains(string(body), `"error":"the model refused"`) {
			t.Errorf("stream = %s; want the data object unchanged and the failure with its error", body)
		}
		if got := credits(t, s, token); got != 1000 {
			t.Errorf("credits = %d; want 1000 after the failure", got)
		}
		if code, body := post(`{"step": 4, "message": "late", "progress": 40}`, "d"); code != http.StatusConflict || !strings.Contains(body, "video_finished") {
			t.Errorf("post after the failure: %d %s; want 409 video_finished", code, body)
		}
	})
}
