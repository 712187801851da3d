package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stephub/stephub/internal/testdb"
)

// TestParseRetention reads days, Go durations and 0, and refuses the rest.
func TestParseRetention(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"0", 0, false},
		{"30d", 30 * 24 * time.Hour, false},
		{"0d", 0, false},
		{"720h", 720 * time.Hour, false},
		{"1500ms", 1500 * time.Millisecond, false},
		{"-1h", 0, true},
		{"-3d", 0, true},
		{"1.5d", 0, true},
		{"d", 0, true},
		{"99999999999999d", 0, true},
		{"soon", 0, true},
		{"", 0, true},
	} {
		got, err := parseRetention(tc.in)
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("parseRetention(%q) = %v, %v; want %v, bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// TestRetentionDeletesOldData runs a server with EVENT_RETENTION=1s: the
// events of a finished video go, its stream then has nothing to send (SSE
// 204, WebSocket closed with 1000 at once) while GET still shows it, and
// a running video keeps its events. A restart with VIDEO_RETENTION=1s
// deletes the finished video too. The metric counts what went.
func TestRetentionDeletesOldData(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external", "EVENT_RETENTION": "1s", "LEASE": "1m"})
		token := userToken(t, "forgetful")
		done := generate(t, s, token)
		postWorkerJob(t, s, done.ID, 0, 1, stephubSteps)
		running := generate(t, s, token)
		c := claimVideo(t, s)
		if c.Video.ID != running.ID {
			t.Fatalf("claimed video %d; want %d", c.Video.ID, running.ID)
		}
		postWorker(t, s, running.ID, workerStep(1), leased(c.LeaseToken))

		waitForMetrics(t, s, 10*time.Second, []want{
			{"stephub_retention_deleted_total", []string{"kind=events"}, stephubSteps},
			{"stephub_retention_deleted_total", []string{"kind=videos"}, 0},
		})
		resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, done.ID), token, nil, nil)
		if v := decodeJSON[video](t, body); resp.StatusCode != http.StatusOK || v.Status != "completed" || v.VideoURL == nil {
			t.Errorf("GET the video whose events went: %d %s; want 200, completed, with its video URL", resp.StatusCode, body)
		}
		// A stream that waits for events instead would hang: the client
		// gives up after 5 s.
		impatient := http.Client{Timeout: 5 * time.Second}
		for _, lastID := range []string{"", "3"} {
			req, err := http.NewRequest("GET", streamURL(s, done.ID, "?token="+token), nil)
			if err != nil {
				t.Fatal(err)
			}
			if lastID != "" {
				req.Header.Set("Last-Event-ID", lastID)
			}
			resp, err := impatient.Do(req)
			if err != nil {
				t.Errorf("SSE stream with Last-Event-ID %q of a video whose events went: %v; want 204", lastID, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("SSE stream with Last-Event-ID %q of a video whose events went: %d; want 204", lastID, resp.StatusCode)
			}
		}
		conn, _, err := dialWS(t, s, token, done.ID, "", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		frames, code := readWS(t, conn)
		conn.Close()
		if len(frames) != 0 || code != websocket.CloseNormalClosure {
			t.Errorf("WebSocket of a video whose events went: %d events, close %d; want none, 1000", len(frames), code)
		}
		st := openStream(t, s, token, running.ID, "")
		if evs := st.take(t, 1); evs[0].Step != 1 {
			t.Errorf("the running video's stream begins with %+v; want its step 1", evs[0])
		}
		st.Close()
		s.Stop(t)

		s = startServer(t, url, map[string]string{"PIPELINE": "external", "VIDEO_RETENTION": "1s", "LEASE": "1m"})
		waitForMetrics(t, s, 10*time.Second, []want{
			{"stephub_retention_deleted_total", []string{"kind=videos"}, 1},
			{"stephub_retention_deleted_total", []string{"kind=events"}, 0},
		})
		if resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, done.ID), token, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET the deleted video: %d %s; want 404", resp.StatusCode, body)
		}
		resp, body = call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, running.ID), token, nil, nil)
		if v := decodeJSON[video](t, body); resp.StatusCode != http.StatusOK || v.Status != "processing" {
			t.Errorf("GET the running video: %d %s; want 200, processing", resp.StatusCode, body)
		}
		if !strings.Contains(s.logs.String(), `"msg":"retention deleted","kind":"videos","videos":1`) {
			t.Errorf("no log line of the deletion:\n%s", s.logs.String())
		}
	})
}
