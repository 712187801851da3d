package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/internal/testdb"
)

// TestHeadAndOptions asks every GET route for its head and its options:
// HEAD gets what GET gets without the body, and OPTIONS the route's Allow.
func TestHeadAndOptions(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	alice := userToken(t, "alice")
	v := generate(t, s, alice)
	paths := []string{
		"/", fmt.Sprintf("/videos/%d", v.ID), "/static/app.js", stephub.MockVideoURL,
		"/healthz", "/readyz", "/metrics",
		"/api/v1/videos", fmt.Sprintf("/api/v1/videos/%d", v.ID), "/api/v1/users/me",
		fmt.Sprintf("/api/v1/videos/%d/stream", v.ID),
		fmt.Sprintf("/api/v1/videos/%d/ws", v.ID), // GET without an upgrade is a 400
		"/api/v1/videos/999",                      // a 404 has a head too
	}
	for _, path := range paths {
		head, body := call(t, "HEAD", s.URL+path, alice, nil, nil)
		if len(body) != 0 {
			t.Errorf("HEAD %s: %d bytes of body; want none", path, len(body))
		}
		if path == fmt.Sprintf("/api/v1/videos/%d/stream", v.ID) {
			// GET would stream until the job ends: compare with its
			// documented head.
			if head.StatusCode != http.StatusOK || head.Header.Get("Content-Type") != "text/event-stream" {
				t.Errorf("HEAD %s: %d %q; want 200 text/event-stream", path, head.StatusCode, head.Header.Get("Content-Type"))
			}
		} else {
			get, _ := call(t, "GET", s.URL+path, alice, nil, nil)
			if head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
				t.Errorf("HEAD %s: %d %q; GET gets %d %q", path, head.StatusCode, head.Header.Get("Content-Type"),
					get.StatusCode, get.Header.Get("Content-Type"))
			}
		}
		opts, _ := call(t, "OPTIONS", s.URL+path, "", nil, nil)
		if allow := opts.Header.Get("Allow"); opts.StatusCode != http.StatusNoContent ||
			!strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") || !strings.Contains(allow, "OPTIONS") {
			t.Errorf("OPTIONS %s: %d, Allow %q; want 204 with GET, HEAD and OPTIONS", path, opts.StatusCode, allow)
		}
	}
	for path, want := range map[string]string{
		"/api/v1/worker/claim":    "OPTIONS, POST",
		"/api/v1/admin/users/x":   "OPTIONS, PUT",
		"/api/v1/videos/1/cancel": "OPTIONS, POST",
		// POST reaches /api/v1/videos/:id only for generate.
		"/api/v1/videos/5":        "GET, HEAD, OPTIONS",
		"/api/v1/videos/generate": "GET, HEAD, OPTIONS, POST",
	} {
		opts, _ := call(t, "OPTIONS", s.URL+path, "", nil, nil)
		if got := opts.Header.Get("Allow"); opts.StatusCode != http.StatusNoContent || got != want {
			t.Errorf("OPTIONS %s: %d, Allow %q; want 204, %q", path, opts.StatusCode, got, want)
		}
	}
	// HEAD cannot open a WebSocket: it is answered as a GET without an
	// upgrade is.
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket",
		"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	if resp, _ := call(t, "HEAD", fmt.Sprintf("%s/api/v1/videos/%d/ws", s.URL, v.ID), alice, nil, upgrade); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("HEAD /ws with upgrade headers: %d %q; want 400", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// A method a route does not take is a 405 that says which it does.
	resp, body := call(t, "DELETE", s.URL+"/healthz", "", nil, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Errorf("DELETE /healthz: %d, Allow %q, %s; want 405 with Allow GET, HEAD, OPTIONS", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
}

// TestCanonicalNumbers checks that ids, cursors, limits and Last-Event-IDs
// have one spelling each: signs, leading zeros and spaces name nothing.
func TestCanonicalNumbers(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	alice := userToken(t, "alice")
	v := generate(t, s, alice)
	// A finished video: a stream opened by mistake ends by itself.
	postWorkerJob(t, s, v.ID, 0, 1, stephub.TotalSteps+1)

	id := fmt.Sprint(v.ID)
	for _, spelling := range []string{id, "+" + id, "0" + id, id + "%20", "%20" + id, id + ".0"} {
		want := http.StatusNotFound
		if spelling == id {
			want = http.StatusOK
		}
		if resp, body := call(t, "GET", s.URL+"/api/v1/videos/"+spelling, alice, nil, nil); resp.StatusCode != want {
			t.Errorf("GET /api/v1/videos/%s: %d %s; want %d", spelling, resp.StatusCode, body, want)
		}
	}
	for _, q := range []string{"limit=+5", "limit=05", "limit=5.0", "cursor=+9", "cursor=09", "cursor=-1"} {
		if resp, body := call(t, "GET", s.URL+"/api/v1/videos?"+q, alice, nil, nil); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("GET /api/v1/videos?%s: %d %s; want 422", q, resp.StatusCode, body)
		}
	}
	stream := fmt.Sprintf("%s/api/v1/videos/%d/stream", s.URL, v.ID)
	for _, last := range []string{"+1", "01", "-0", "0x1", "1.0"} {
		resp, body := call(t, "GET", stream, alice, nil, map[string]string{"Last-Event-ID": last})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), stephub.CodeBadLastEventID) {
			t.Errorf("stream with Last-Event-ID %q: %d %s; want 400 %s", last, resp.StatusCode, body, stephub.CodeBadLastEventID)
		}
	}
	for _, last := range []string{"%2B1", "+1", "%201", "1%20", "01"} { // a query's + is a space
		resp, body := call(t, "GET", stream+"?last_event_id="+last, alice, nil, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), stephub.CodeBadLastEventID) {
			t.Errorf("stream with ?last_event_id=%s: %d %s; want 400 %s", last, resp.StatusCode, body, stephub.CodeBadLastEventID)
		}
	}
	// The canonical spelling still resumes.
	st := openStream(t, s, alice, v.ID, "7")
	if got := st.readAll(t); len(got) != 2 || got[0].ID != 8 {
		t.Errorf("stream resumed after 7: %+v; want events 8 and 9", got)
	}
}

// TestStrictJSON sends bodies that encoding/json alone would take: keys in
// another case, repeated keys, unknown keys. Each is a 422 naming the key,
// and nothing is stored.
func TestStrictJSON(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, db string) {
		{
			s := startServer(t, db, map[string]string{"PIPELINE": "external"})
			alice := userToken(t, "alice")
			before := credits(t, s, alice)
			generateURL := s.URL + "/api/v1/videos/generate"
			for body, field := range map[string]string{
				`{"Prompt": "A lighthouse in a storm", "model": "sora-2"}`:                        "Prompt",
				`{"prompt": "A lighthouse in a storm", "MODEL": "sora-2"}`:                        "MODEL",
				`{"prompt": "A lighthouse in a storm", "model": "sora-2", "model": "sora-2-pro"}`: "model",
				`{"prompt": "A lighthouse in a storm", "model": "sora-2", "duration": 10}`:        "duration",
			} {
				resp, data := call(t, "POST", generateURL, alice, body, nil)
				if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), `"`+field+`":`) {
					t.Errorf("generate %s: %d %s; want 422 naming %s", body, resp.StatusCode, data, field)
				}
			}
			if got := credits(t, s, alice); got != before {
				t.Errorf("credits after refused generates: %d; want %d", got, before)
			}
			resp, data := call(t, "GET", s.URL+"/api/v1/videos", alice, nil, nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), `"videos":[]`) {
				t.Errorf("videos after refused generates: %d %s; want none", resp.StatusCode, data)
			}

			v := generate(t, s, alice)
			eventsURL := fmt.Sprintf("%s/api/v1/videos/%d/events", s.URL, v.ID)
			for body, field := range map[string]string{
				`{"step": 1, "message": "a", "progress": 5, "Status": "completed", "video_url": "/v.mp4"}`:    "Status",
				`{"step": 9, "message": "a", "progress": 100, "status": "completed", "status": "processing"}`: "status",
				`{"step": 1, "message": "a", "progress": 5, "data": {"frames": 1, "frames": 2}}`:              "data",
				`{"step": 1, "message": "a", "progress": 5, "data": {"a": [{"x": 1, "x": 1}]}}`:               "data",
			} {
				resp, data := call(t, "POST", eventsURL, testWorkerToken, body, nil)
				if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), `"`+field+`":`) {
					t.Errorf("worker post %s: %d %s; want 422 naming %s", body, resp.StatusCode, data, field)
				}
			}
			resp, data = call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, v.ID), alice, nil, nil)
			if got := decodeJSON[video](t, data); resp.StatusCode != http.StatusOK || got.Status != "pending" || got.Step != 0 {
				t.Errorf("video after refused posts: %d %s; want pending at step 0", resp.StatusCode, data)
			}

			resp, data = call(t, "PUT", s.URL+"/api/v1/admin/users/alice", testAdminToken, `{"Credits": 5}`, nil)
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(data), `"Credits":`) {
				t.Errorf("admin put with Credits: %d %s; want 422 naming Credits", resp.StatusCode, data)
			}
		}
	})
}

// TestStreamSlotFreedAtOnce closes a stream and opens the next at once,
// again and again, with the user at the cap: the closed one's slot is
// there for the next, over SSE and over WebSocket.
func TestStreamSlotFreedAtOnce(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external", "MAX_STREAMS_PER_USER": "2"})
	alice := userToken(t, "alice")
	v := generate(t, s, alice)
	openStream(t, s, alice, v.ID, "")
	for i := range 100 {
		st := openStream(t, s, alice, v.ID, "")
		st.Close()
		conn, resp, err := dialWS(t, s, alice, v.ID, "", nil)
		if err != nil {
			t.Fatalf("try %d: WebSocket after closing a stream: %v (status %v)", i, err, resp.Status)
		}
		conn.Close()
	}
}
