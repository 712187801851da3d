package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub/auth"
	"github.com/stephub/stephub/internal/testdb"
)

// TestErrorCases sends every error of the contract's route table, checks the
// status and code of each, and then that the server still serves.
func TestErrorCases(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external", "MAX_STREAMS_PER_USER": "1"})
	alice, bob := userToken(t, "alice"), userToken(t, "bob")

	pending := generate(t, s, alice)
	finished := generate(t, s, alice)
	resp, body := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/events", s.URL, finished.ID), testWorkerToken,
		map[string]any{"step": 9, "message": "done", "progress": 100, "status": "completed", "video_url": "/v.mp4"}, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("worker completes a video: %d %s", resp.StatusCode, body)
	}
	cancelled := generate(t, s, alice)
	if resp, body := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/cancel", s.URL, cancelled.ID), alice, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("cancel: %d %s", resp.StatusCode, body)
	}
	admin := func(user, body string) {
		if resp, data := call(t, "PUT", s.URL+"/api/v1/admin/users/"+user, testAdminToken, body, nil); resp.StatusCode != 200 {
			t.Fatalf("admin put %s: %d %s", user, resp.StatusCode, data)
		}
	}
	admin("poor", `{"credits": 50}`)
	admin("lapsed", `{"credits": 0, "subscription_status": "inactive"}`)
	poor, lapsed := userToken(t, "poor"), userToken(t, "lapsed")

	signer, _ := auth.NewSigner(testJWTSecret)
	expired, _ := signer.Issue("alice", "", -time.Minute)
	forger, _ := auth.NewSigner("not-the-secret")
	forged, _ := forger.Issue("alice", "", time.Hour)
	unsigned := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0."

	valid := `{"prompt": "A lighthouse in a storm, cinematic", "model": "sora-2"}`
	huge := `{"prompt": "` + strings.Repeat("x", 70<<10) + `", "model": "sora-2"}`
	path := func(id int64, rest string) string { return fmt.Sprintf("/api/v1/videos/%d%s", id, rest) }
	step := func(extra string) string {
		return `{"step": 2, "message": "rendering", "progress": 30` + extra + `}`
	}

	// The pending video's only allowed stream stays open through the table.
	held := openStream(t, s, alice, pending.ID, "")

	cases := []struct {
		name         string
		method, path string
		token        string
		body         string
		header       map[string]string
		status       int
		code         string
	}{
		// Authentication, on every kind of route.
		{"no token", "POST", "/api/v1/videos/generate", "", valid, nil, 401, "unauthorized"},
		{"expired token", "POST", "/api/v1/videos/generate", expired, valid, nil, 401, "unauthorized"},
		{"malformed token", "GET", "/api/v1/users/me", "not.a.jwt", "", nil, 401, "unauthorized"},
		{"forged token", "GET", "/api/v1/users/me", forged, "", nil, 401, "unauthorized"},
		{"unsigned token", "GET", "/api/v1/users/me", unsigned, "", nil, 401, "unauthorized"},
		{"basic auth", "GET", "/api/v1/videos", "", "", map[string]string{"Authorization": "Basic YTpi"}, 401, "unauthorized"},
		{"list without token", "GET", "/api/v1/videos", "", "", nil, 401, "unauthorized"},
		{"get without token", "GET", path(pending.ID, ""), "", "", nil, 401, "unauthorized"},
		{"cancel without token", "POST", path(pending.ID, "/cancel"), "", "", nil, 401, "unauthorized"},
		{"stream without token", "GET", path(pending.ID, "/stream"), "", "", nil, 401, "unauthorized"},
		{"stream with forged ?token", "GET", path(pending.ID, "/stream?token="+forged), "", "", nil, 401, "unauthorized"},
		{"worker route without token", "POST", path(pending.ID, "/events"), "", step(""), nil, 401, "unauthorized"},
		{"worker route with a user token", "POST", path(pending.ID, "/events"), alice, step(""), nil, 401, "unauthorized"},
		{"admin route with a user token", "PUT", "/api/v1/admin/users/x", alice, `{"credits": 5}`, nil, 401, "unauthorized"},
		{"admin route with the worker token", "PUT", "/api/v1/admin/users/x", testWorkerToken, `{"credits": 5}`, nil, 401, "unauthorized"},

		// Generate, in the contract's order: 401, 415, 413, 400, 422, 403, 402.
		{"401 before 415", "POST", "/api/v1/videos/generate", "", valid, map[string]string{"Content-Type": "text/plain"}, 401, "unauthorized"},
		{"no content type", "POST", "/api/v1/videos/generate", alice, valid, map[string]string{"Content-Type": ""}, 415, "unsupported_media_type"},
		{"form content type", "POST", "/api/v1/videos/generate", alice, valid, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"415 before 413", "POST", "/api/v1/videos/generate", alice, huge, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"body over 64 KiB", "POST", "/api/v1/videos/generate", alice, huge, nil, 413, "body_too_large"},
		{"413 before 400", "POST", "/api/v1/videos/generate", alice, "{" + strings.Repeat("x", 70<<10), nil, 413, "body_too_large"},
		{"not JSON", "POST", "/api/v1/videos/generate", alice, `{"prompt": `, nil, 400, "invalid_json"},
		{"empty body", "POST", "/api/v1/videos/generate", alice, "", nil, 400, "invalid_json"},
		{"array body", "POST", "/api/v1/videos/generate", alice, `[1, 2]`, nil, 422, "validation_failed"},
		{"prompt not a string", "POST", "/api/v1/videos/generate", alice, `{"prompt": 12345678901, "model": "sora-2"}`, nil, 422, "validation_failed"},
		{"missing prompt", "POST", "/api/v1/videos/generate", alice, `{"model": "sora-2"}`, nil, 422, "validation_failed"},
		{"prompt short after trimming", "POST", "/api/v1/videos/generate", alice, `{"prompt": "   123456789   ", "model": "sora-2"}`, nil, 422, "validation_failed"},
		{"prompt too long", "POST", "/api/v1/videos/generate", alice, `{"prompt": "` + strings.Repeat("y", 2001) + `", "model": "sora-2"}`, nil, 422, "validation_failed"},
		{"unknown model", "POST", "/api/v1/videos/generate", alice, `{"prompt": "A lighthouse in a storm", "model": "sora-3"}`, nil, 422, "validation_failed"},
		{"reference image not http", "POST", "/api/v1/videos/generate", alice, `{"prompt": "A lighthouse in a storm", "model": "sora-2", "reference_image_url": "ftp://x/y.png"}`, nil, 422, "validation_failed"},
		{"reference image not a string", "POST", "/api/v1/videos/generate", alice, `{"prompt": "A lighthouse in a storm", "model": "sora-2", "reference_image_url": 7}`, nil, 422, "validation_failed"},
		{"422 before 403", "POST", "/api/v1/videos/generate", lapsed, `{"prompt": "short"}`, nil, 422, "validation_failed"},
		{"subscription inactive", "POST", "/api/v1/videos/generate", lapsed, valid, nil, 403, "subscription_inactive"},
		{"insufficient credits", "POST", "/api/v1/videos/generate", poor, valid, nil, 402, "insufficient_credits"},

		// Reading videos.
		{"limit 0", "GET", "/api/v1/videos?limit=0", alice, "", nil, 422, "validation_failed"},
		{"limit 101", "GET", "/api/v1/videos?limit=101", alice, "", nil, 422, "validation_failed"},
		{"limit not a number", "GET", "/api/v1/videos?limit=ten", alice, "", nil, 422, "validation_failed"},
		{"bad cursor", "GET", "/api/v1/videos?cursor=abc", alice, "", nil, 422, "validation_failed"},
		{"unknown video", "GET", "/api/v1/videos/999999", alice, "", nil, 404, "not_found"},
		{"another user's video", "GET", path(pending.ID, ""), bob, "", nil, 404, "not_found"},
		{"id not a number", "GET", "/api/v1/videos/abc", alice, "", nil, 404, "not_found"},
		{"id zero", "GET", "/api/v1/videos/0", alice, "", nil, 404, "not_found"},
		{"id negative", "GET", "/api/v1/videos/-3", alice, "", nil, 404, "not_found"},

		// Cancel.
		{"cancel another user's video", "POST", path(pending.ID, "/cancel"), bob, "", nil, 404, "not_found"},
		{"cancel an unknown video", "POST", "/api/v1/videos/999999/cancel", alice, "", nil, 404, "not_found"},
		{"cancel a finished video", "POST", path(finished.ID, "/cancel"), alice, "", nil, 409, "video_finished"},
		{"cancel a cancelled video", "POST", path(cancelled.ID, "/cancel"), alice, "", nil, 409, "video_finished"},

		// Streams.
		{"Last-Event-ID not a number", "GET", path(finished.ID, "/stream"), alice, "", map[string]string{"Last-Event-ID": "abc"}, 400, "bad_last_event_id"},
		{"Last-Event-ID negative", "GET", path(finished.ID, "/stream"), alice, "", map[string]string{"Last-Event-ID": "-1"}, 400, "bad_last_event_id"},
		{"last_event_id query not a number", "GET", path(finished.ID, "/stream?last_event_id=x"), alice, "", nil, 400, "bad_last_event_id"},
		{"header wins over query", "GET", path(finished.ID, "/stream?last_event_id=1"), alice, "", map[string]string{"Last-Event-ID": "x"}, 400, "bad_last_event_id"},
		{"Last-Event-ID beyond the last event", "GET", path(finished.ID, "/stream"), alice, "", map[string]string{"Last-Event-ID": "50"}, 400, "bad_last_event_id"},
		{"stream another user's video", "GET", path(finished.ID, "/stream"), bob, "", nil, 404, "not_found"},
		{"stream an unknown video", "GET", "/api/v1/videos/999999/stream", alice, "", nil, 404, "not_found"},
		{"too many streams", "GET", path(pending.ID, "/stream"), alice, "", nil, 429, "too_many_streams"},
		{"nothing left to send", "GET", path(finished.ID, "/stream"), alice, "", map[string]string{"Last-Event-ID": "1"}, 204, ""},

		// Worker events.
		{"worker: unknown video", "POST", "/api/v1/videos/999999/events", testWorkerToken, step(""), nil, 404, "not_found"},
		{"worker: unknown video, before the body", "POST", "/api/v1/videos/999999/events", testWorkerToken, "{broken", nil, 404, "not_found"},
		{"worker: cancelled video", "POST", path(cancelled.ID, "/events"), testWorkerToken, step(""), nil, 409, "video_cancelled"},
		{"worker: finished video, before the body", "POST", path(finished.ID, "/events"), testWorkerToken, "{broken", nil, 409, "video_finished"},
		{"worker: not JSON", "POST", path(pending.ID, "/events"), testWorkerToken, "{broken", nil, 400, "invalid_json"},
		{"worker: no content type", "POST", path(pending.ID, "/events"), testWorkerToken, step(""), map[string]string{"Content-Type": ""}, 415, "unsupported_media_type"},
		{"worker: body over 64 KiB", "POST", path(pending.ID, "/events"), testWorkerToken, step(`, "data": {"x": "` + strings.Repeat("z", 70<<10) + `"}`), nil, 413, "body_too_large"},
		{"worker: data over 4 KiB", "POST", path(pending.ID, "/events"), testWorkerToken, step(`, "data": {"x": "` + strings.Repeat("z", 5<<10) + `"}`), nil, 422, "validation_failed"},
		{"worker: data not an object", "POST", path(pending.ID, "/events"), testWorkerToken, step(`, "data": "frames"`), nil, 422, "validation_failed"},
		{"worker: progress 150", "POST", path(pending.ID, "/events"), testWorkerToken, `{"step": 2, "message": "m", "progress": 150}`, nil, 422, "validation_failed"},
		{"worker: step 0", "POST", path(pending.ID, "/events"), testWorkerToken, `{"step": 0, "message": "m", "progress": 1}`, nil, 422, "validation_failed"},
		{"worker: step as a string", "POST", path(pending.ID, "/events"), testWorkerToken, `{"step": "2", "message": "m", "progress": 1}`, nil, 422, "validation_failed"},
		{"worker: no message", "POST", path(pending.ID, "/events"), testWorkerToken, `{"step": 2, "progress": 1}`, nil, 422, "validation_failed"},
		{"worker: unknown status", "POST", path(pending.ID, "/events"), testWorkerToken, step(`, "status": "cancelled"`), nil, 422, "validation_failed"},
		{"worker: completed without a URL", "POST", path(pending.ID, "/events"), testWorkerToken, step(`, "status": "completed"`), nil, 422, "validation_failed"},
		{"worker: failed without an error", "POST", path(pending.ID, "/events"), testWorkerToken, step(`, "status": "failed"`), nil, 422, "validation_failed"},

		// Admin.
		{"admin: negative credits", "PUT", "/api/v1/admin/users/x", testAdminToken, `{"credits": -1}`, nil, 422, "validation_failed"},
		{"admin: credits not an integer", "PUT", "/api/v1/admin/users/x", testAdminToken, `{"credits": 1.5}`, nil, 422, "validation_failed"},
		{"admin: unknown status", "PUT", "/api/v1/admin/users/x", testAdminToken, `{"subscription_status": "paused"}`, nil, 422, "validation_failed"},
		{"admin: nothing to change", "PUT", "/api/v1/admin/users/x", testAdminToken, `{}`, nil, 422, "validation_failed"},
		{"admin: not JSON", "PUT", "/api/v1/admin/users/x", testAdminToken, `credits=5`, nil, 400, "invalid_json"},

		// Outside the table.
		{"unknown route", "GET", "/api/v1/nothing", alice, "", nil, 404, "not_found"},
		{"wrong method", "DELETE", path(pending.ID, ""), alice, "", nil, 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			} else if tc.method == "POST" || tc.method == "PUT" {
				body = ""
			}
			resp, data := call(t, tc.method, s.URL+tc.path, tc.token, body, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, body %s; want %d", resp.StatusCode, data, tc.status)
			}
			if tc.code == "" {
				return
			}
			got := decodeJSON[struct {
				Error struct {
					Code, Message string
					Fields        map[string]string
				}
			}](t, data)
			if got.Error.Code != tc.code || got.Error.Message == "" {
				t.Errorf("error = %s; want code %q with a message", data, tc.code)
			}
			if tc.code == "validation_failed" && tc.body != `[1, 2]` && len(got.Error.Fields) == 0 {
				t.Errorf("validation error without fields: %s", data)
			}
		})
	}

	// Nothing above changed the pending video or its stream.
	resp, body = call(t, "GET", s.URL+path(pending.ID, ""), alice, nil, nil)
	if v := decodeJSON[video](t, body); resp.StatusCode != 200 || v.Status != "pending" || v.Step != 0 {
		t.Errorf("pending video after the bad posts: %d %s; want pending at step 0", resp.StatusCode, body)
	}
	held.Close()

	// And the server still serves.
	if resp, _ := call(t, "GET", s.URL+"/healthz", "", nil, nil); resp.StatusCode != 200 {
		t.Errorf("healthz = %d; want 200", resp.StatusCode)
	}
	generate(t, s, alice)
}
