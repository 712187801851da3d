package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub/auth"
	"github.com/stephub/stephub/internal/testdb"
)

// jwtLike matches anything shaped like a JWT: three base64url parts joined
// by dots. No log line may hold one, whoever's it is.
var jwtLike = regexp.MustCompile(`[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)

// rawQuery matches the query parameters of stream and sign-in URLs.
var rawQuery = regexp.MustCompile(`[?&](token|ticket|last_event_id)=`)

// checkNoTokenShapes fails for anything in logs shaped like a token or a
// raw query, showing only its start.
func checkNoTokenShapes(t *testing.T, logs string) {
	t.Helper()
	for _, bad := range append(jwtLike.FindAllString(logs, -1), rawQuery.FindAllString(logs, -1)...) {
		t.Errorf("the log holds %.16q…; want no token and no raw query", bad)
	}
}

// TestLogsCarryNoToken drives the server through every way a token reaches
// it: headers and ?token= on API calls, SSE and WebSocket streams, watch
// tickets, the dashboard's sign-in link, worker and admin tokens, a token
// signed with another secret, at the debug level, through shutdown. The log must hold
// none of them, nor any raw URL; and each request line must give its route
// pattern, status and duration in seconds.
func TestLogsCarryNoToken(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"LOG_LEVEL": "debug", "STEP_DELAY": "5ms"})
		token := userToken(t, "secretive")
		other, err := auth.NewSigner("not-the-server-secret")
		if err != nil {
			t.Fatal(err)
		}
		forged, err := other.Issue("mallory", "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}

		v := generate(t, s, token) // Authorization header
		openStream(t, s, token, v.ID, "").readAll(t)
		openStream(t, s, token, v.ID, "3").readAll(t)
		conn, _, err := dialWS(t, s, token, v.ID, "&last_event_id=2", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		readWS(t, conn)
		conn.Close()
		ticket, _ := issueTicket(t, s, token, v.ID)
		openSSE(t, streamURL(s, v.ID, "?ticket="+ticket), "", nil).readAll(t)
		requests := []struct {
			method, path, token string
			body                any
			want                int
		}{
			{"GET", "/?token=" + token, "", nil, http.StatusOK},
			{"GET", fmt.Sprintf("/videos/%d?token=%s", v.ID, token), "", nil, http.StatusOK},
			{"GET", fmt.Sprintf("/api/v1/videos/%d?token=%s", v.ID, token), "", nil, http.StatusOK},
			{"GET", "/api/v1/users/me?token=" + forged, "", nil, http.StatusUnauthorized},
			{"GET", "/api/v1/users/me", forged, nil, http.StatusUnauthorized},
			{"GET", fmt.Sprintf("/api/v1/videos/%d/stream?token=%s", v.ID, forged), "", nil, http.StatusUnauthorized},
			{"POST", fmt.Sprintf("/api/v1/videos/%d/cancel?token=%s", v.ID, token), "", nil, http.StatusConflict},
			{"PUT", "/api/v1/admin/users/secretive", testAdminToken, map[string]any{"credits": 5000}, http.StatusOK},
			{"POST", fmt.Sprintf("/api/v1/videos/%d/events", v.ID), testWorkerToken, map[string]any{"step": 9, "message": "late", "progress": 100}, http.StatusConflict},
			{"GET", "/api/v1/nowhere?token=" + token, "", nil, http.StatusNotFound},
		}
		for _, r := range requests {
			if resp, body := call(t, r.method, s.URL+r.path, r.token, r.body, nil); resp.StatusCode != r.want {
				t.Errorf("%s %s: %d %s; want %d", r.method, strings.ReplaceAll(r.path, token, "…"), resp.StatusCode, body, r.want)
			}
		}
		s.Stop(t) // the shutdown's lines too

		logs := s.logs.String()
		for _, secret := range []string{token, forged, ticket, testWorkerToken, testAdminToken, testJWTSecret} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log holds the secret %.12s…", secret)
			}
		}
		checkNoTokenShapes(t, logs)

		requestLines := 0
		for line := range strings.Lines(logs) {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("log line %q is not JSON: %v", line, err)
				continue
			}
			for _, key := range []string{"url", "uri", "path", "query", "token", "authorization"} {
				if _, ok := rec[key]; ok {
					t.Errorf("log line %q has the key %s", line, key)
				}
			}
			if rec["msg"] != "request" {
				continue
			}
			requestLines++
			route, _ := rec["route"].(string)
			_, isStatus := rec["status"].(float64)
			d, isSeconds := rec["duration_s"].(float64)
			if !strings.HasPrefix(route, "/") && route != "unmatched" || idPath.MatchString(route) || !isStatus || !isSeconds || d < 0 || d > 60 {
				t.Errorf("request line %q: want a route pattern, a status and duration_s in seconds", line)
			}
		}
		if want := len(requests) + 6; requestLines < want {
			t.Errorf("%d request lines; want at least %d, one per request", requestLines, want)
		}
	})
}

// TestSignInLinkStaysOutOfTheLog starts the server without JWT_SECRET: it
// prints a sign-in link, token included, on stdout for the developer, and
// the log must not repeat it.
func TestSignInLinkStaysOutOfTheLog(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"JWT_SECRET": ""})
	s.Stop(t)
	_, token, ok := strings.Cut(s.out.String(), "token=")
	token, _, _ = strings.Cut(strings.TrimSpace(token), "&")
	if !ok || token == "" {
		t.Fatalf("stdout %q: want a sign-in link with a token", s.out.String())
	}
	if strings.Contains(s.logs.String(), token) {
		t.Errorf("the log holds the sign-in token")
	}
	checkNoTokenShapes(t, s.logs.String())
}

// TestDebugLevel: LOG_LEVEL=debug adds a line per claim of a video and, on
// PostgreSQL, per batch of hints sent to the other nodes; the default
// level adds none of them.
func TestDebugLevel(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		for _, level := range []string{"debug", "info"} {
			s := startServer(t, url, map[string]string{"PIPELINE": "external", "LOG_LEVEL": level})
			v := generate(t, s, userToken(t, "debugged"))
			c := claimVideo(t, s)
			postWorker(t, s, v.ID, workerStep(1), leased(c.LeaseToken))
			wants := []string{fmt.Sprintf(`"level":"DEBUG","msg":"claimed","video_id":%d,"attempt":1,"from_step":0,"builtin":false`, v.ID)}
			if strings.HasSuffix(t.Name(), "postgres") {
				wants = append(wants, `"level":"DEBUG","msg":"hints sent","events":1`)
			}
			// The hint goes out just after the post's answer: give it a
			// moment before the server stops.
			for deadline := time.Now().Add(5 * time.Second); level == "debug" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if strings.Contains(s.logs.String(), wants[len(wants)-1]) {
					break
				}
			}
			s.Stop(t)
			logs := s.logs.String()
			for _, want := range wants {
				if got := strings.Contains(logs, want); got != (level == "debug") {
					t.Errorf("LOG_LEVEL=%s: the log holds %s: %v; want %v\n%s", level, want, got, level == "debug", logs)
				}
			}
		}
	})
}
