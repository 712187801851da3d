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

// Credentials with a small scope and a life: watch tickets, the dashboard's
// session cookie, streams that end with their credential, and static
// tokens kept out of URLs.

// issueTicket asks for a watch ticket of a video with token in the
// Authorization header, and returns it with its expiry.
func issueTicket(t *testing.T, s *testServer, token string, videoID int64) (string, time.Time) {
	t.Helper()
	resp, body := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/ticket", s.URL, videoID), token, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ticket for video %d: %d %s; want 200", videoID, resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("ticket's Cache-Control %q; want no-store", cc)
	}
	tk := decodeJSON[struct {
		Ticket    string    `json:"ticket"`
		ExpiresAt time.Time `json:"expires_at"`
	}](t, body)
	if tk.Ticket == "" || tk.ExpiresAt.IsZero() {
		t.Fatalf("ticket answer %s; want a ticket and expires_at", body)
	}
	return tk.Ticket, tk.ExpiresAt
}

// streamURL is the address of a video's SSE stream with query.
func streamURL(s *testServer, videoID int64, query string) string {
	return fmt.Sprintf("%s/api/v1/videos/%d/stream%s", s.URL, videoID, query)
}

// sessionCookieOf returns the stephub_session cookie that resp sets, or nil.
func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "stephub_session" {
			return c
		}
	}
	return nil
}

// TestTicketWatchesOneVideo issues a watch ticket and streams with it over
// SSE and WebSocket; then checks that it opens nothing else: not another
// video's streams, no other route (as ?ticket=, as a bearer token or as
// ?token=), no cancel over its WebSocket; that a user token is no ticket,
// and an expired or forged ticket none either; and who may ask for one.
func TestTicketWatchesOneVideo(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	alice, bob := userToken(t, "alice"), userToken(t, "bob")
	a, b := generate(t, s, alice), generate(t, s, alice)
	postWorkerJob(t, s, a.ID, 0, 1, stephubSteps)

	tk, expires := issueTicket(t, s, alice, a.ID)
	if left := time.Until(expires); left <= 9*time.Minute || left > 10*time.Minute {
		t.Errorf("ticket expires in %v; want the default 10 minutes", left)
	}
	checkComplete(t, "SSE with a ticket", openSSE(t, streamURL(s, a.ID, "?ticket="+tk), "", nil).readAll(t))
	conn, _, err := dialWSQuery(t, s, a.ID, "?ticket="+tk, nil)
	if err != nil {
		t.Fatalf("WebSocket with a ticket: %v", err)
	}
	events, code := readWS(t, conn)
	checkComplete(t, "WebSocket with a ticket", events)
	if code != websocket.CloseNormalClosure {
		t.Errorf("WebSocket with a ticket closed with %d; want 1000", code)
	}

	t.Run("streams refuse", func(t *testing.T) {
		signer := mustSigner(t, testJWTSecret)
		expired, _, err := signer.IssueTicket("alice", a.ID, time.Now().Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		forged, _, err := mustSigner(t, "not-the-secret").IssueTicket("alice", a.ID, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			video  int64
			query  string
			header http.Header
		}{
			{"the ticket on another video", b.ID, "?ticket=" + tk, nil},
			{"an expired ticket", a.ID, "?ticket=" + expired, nil},
			{"a forged ticket", a.ID, "?ticket=" + forged, nil},
			{"a user token as a ticket", a.ID, "?ticket=" + alice, nil},
			{"the ticket as a bearer token", a.ID, "", http.Header{"Authorization": {"Bearer " + tk}}},
			{"the ticket as ?token=", a.ID, "?token=" + tk, nil},
		} {
			h := map[string]string{}
			for k, v := range tc.header {
				h[k] = v[0]
			}
			if resp, body := call(t, "GET", streamURL(s, tc.video, tc.query), "", nil, h); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("SSE, %s: %d %s; want 401", tc.name, resp.StatusCode, body)
			}
			if _, resp, err := dialWSQuery(t, s, tc.video, tc.query, tc.header); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("WebSocket, %s: %v, %v; want 401", tc.name, resp, err)
			}
		}
	})

	t.Run("other routes refuse", func(t *testing.T) {
		valid := map[string]any{"prompt": "A lighthouse in a storm", "model": "sora-2"}
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/api/v1/videos", nil},
			{"GET", fmt.Sprintf("/api/v1/videos/%d", a.ID), nil},
			{"POST", fmt.Sprintf("/api/v1/videos/%d/cancel", a.ID), nil},
			{"POST", fmt.Sprintf("/api/v1/videos/%d/ticket", a.ID), nil},
			{"POST", "/api/v1/videos/generate", valid},
			{"GET", "/api/v1/users/me", nil},
			{"POST", fmt.Sprintf("/api/v1/videos/%d/events", a.ID), workerStep(1)},
			{"POST", "/api/v1/worker/claim?wait=0s", nil},
			{"PUT", "/api/v1/admin/users/alice", map[string]any{"credits": 1}},
			{"POST", "/api/v1/session", nil},
		} {
			sep := "?"
			if strings.Contains(r.path, "?") {
				sep = "&"
			}
			for how, req := range map[string]struct{ path, token string }{
				"?ticket=":       {r.path + sep + "ticket=" + tk, ""},
				"a bearer token": {r.path, tk},
				"?token=":        {r.path + sep + "token=" + tk, ""},
			} {
				if resp, body := call(t, r.method, s.URL+req.path, req.token, r.body, nil); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s %s with the ticket as %s: %d %s; want 401", r.method, r.path, how, resp.StatusCode, body)
				}
			}
		}
	})

	t.Run("its WebSocket only watches", func(t *testing.T) {
		tb, _ := issueTicket(t, s, alice, b.ID)
		conn, _, err := dialWSQuery(t, s, b.ID, "?ticket="+tb, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.WriteJSON(map[string]string{"type": "cancel"}); err != nil {
			t.Fatal(err)
		}
		// The server reads frames in order: its answer to the close frame
		// comes after it has dealt with the cancel.
		if err := conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
			t.Fatal(err)
		}
		if _, code := readWS(t, conn); code != websocket.CloseNormalClosure {
			t.Errorf("close answered with %d; want 1000", code)
		}
		resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, b.ID), alice, nil, nil)
		if v := decodeJSON[video](t, body); resp.StatusCode != http.StatusOK || v.Status != "pending" {
			t.Errorf("after a cancel over a ticket's WebSocket the video is %s (%d); want pending", v.Status, resp.StatusCode)
		}
	})

	t.Run("who gets one", func(t *testing.T) {
		ticketPath := func(id any) string { return fmt.Sprintf("%s/api/v1/videos/%v/ticket", s.URL, id) }
		cookie := "stephub_session=" + alice
		for _, tc := range []struct {
			name   string
			url    string
			token  string
			header map[string]string
			status int
		}{
			{"nobody", ticketPath(a.ID), "", nil, 401},
			{"?token= (header or cookie only)", ticketPath(a.ID) + "?token=" + alice, "", nil, 401},
			{"the cookie without X-Requested-With", ticketPath(a.ID), "", map[string]string{"Cookie": cookie}, 401},
			{"the cookie with X-Requested-With", ticketPath(a.ID), "", map[string]string{"Cookie": cookie, "X-Requested-With": "stephub"}, 200},
			{"another user", ticketPath(a.ID), bob, nil, 404},
			{"an unknown video", ticketPath(999999), alice, nil, 404},
			{"a video id that is no number", ticketPath("abc"), alice, nil, 404},
		} {
			if resp, body := call(t, "POST", tc.url, tc.token, nil, tc.header); resp.StatusCode != tc.status {
				t.Errorf("%s: %d %s; want %d", tc.name, resp.StatusCode, body, tc.status)
			}
		}
		// A ticket never outlives the token that asked for it.
		short, err := mustSigner(t, testJWTSecret).Issue("alice", "", 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, expires := issueTicket(t, s, short, a.ID); time.Until(expires) > 30*time.Second {
			t.Errorf("a ticket asked for with a token that expires in 30 s expires in %v", time.Until(expires))
		}
	})
}

// TestStreamEndsWhenCredentialExpires opens streams with credentials that
// expire within two seconds: a ticket (TICKET_TTL=2s) over SSE and over
// WebSocket, and a short-lived user token in the Authorization header over
// SSE. Each stream ends at its credential's expiry, not before, after the
// events posted before it (SSE: the end of the response; WebSocket: close
// 4001); a stream opened again with a fresh credential and the last id
// seen gets the rest of the job, so that the two hold it whole, once. The
// ends are logged as credential_expired and not counted as drops.
func TestStreamEndsWhenCredentialExpires(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external", "TICKET_TTL": "2s"})
	token := userToken(t, "expiring")
	// open opens a stream resuming after the event id after, with a fresh
	// credential, and returns a func that reads it to its end, and the
	// credential's expiry; code is the WebSocket close code, or 0.
	type opener func(t *testing.T, v video, after int64) (read func() (events []event, code int), expires time.Time)
	sse := func(credential func(t *testing.T, v video) (query string, header http.Header, expires time.Time)) opener {
		return func(t *testing.T, v video, after int64) (func() ([]event, int), time.Time) {
			query, header, expires := credential(t, v)
			st := openSSE(t, streamURL(s, v.ID, query), fmt.Sprint(after), header)
			return func() ([]event, int) { return st.readAll(t), 0 }, expires
		}
	}
	withTicket := func(t *testing.T, v video) (string, http.Header, time.Time) {
		tk, expires := issueTicket(t, s, token, v.ID)
		return "?ticket=" + tk, nil, expires
	}
	withToken := func(t *testing.T, v video) (string, http.Header, time.Time) {
		short, err := mustSigner(t, testJWTSecret).Issue("expiring", "", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		claims, err := mustSigner(t, testJWTSecret).Verify(short)
		if err != nil {
			t.Fatal(err)
		}
		return "", http.Header{"Authorization": {"Bearer " + short}}, claims.ExpiresAt.Time
	}
	ws := func(t *testing.T, v video, after int64) (func() ([]event, int), time.Time) {
		tk, expires := issueTicket(t, s, token, v.ID)
		conn, _, err := dialWSQuery(t, s, v.ID, fmt.Sprintf("?ticket=%s&last_event_id=%d", tk, after), nil)
		if err != nil {
			t.Fatal(err)
		}
		return func() ([]event, int) { return readWS(t, conn) }, expires
	}

	t.Run("streams", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			open      opener
			closeCode int // of the stream that expires, 0 for SSE
		}{
			{"SSE with a ticket", sse(withTicket), 0},
			{"WebSocket with a ticket", ws, 4001},
			{"SSE with a user token", sse(withToken), 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				v := generate(t, s, token)
				read, expires := tc.open(t, v, 0)
				postWorkerJob(t, s, v.ID, 0, 1, 3)
				first, code := read()
				if ended := time.Now(); ended.Before(expires) || ended.After(expires.Add(3*time.Second)) {
					t.Errorf("the stream ended at %v, its credential expiring at %v; want at that expiry", ended.Format(time.StampMilli), expires.Format(time.StampMilli))
				}
				if code != tc.closeCode {
					t.Errorf("the expired stream closed with %d; want %d", code, tc.closeCode)
				}
				if len(first) != 3 {
					t.Fatalf("before the expiry: %d events %+v; want the 3 posted", len(first), first)
				}
				postWorkerJob(t, s, v.ID, 0, 4, stephubSteps)
				read, _ = tc.open(t, v, first[len(first)-1].ID)
				rest, code := read()
				if tc.closeCode != 0 && code != websocket.CloseNormalClosure {
					t.Errorf("the resumed stream closed with %d; want 1000", code)
				}
				checkComplete(t, tc.name+", across the expiry", append(first, rest...))
			})
		}
	})

	waitForMetrics(t, s, 5*time.Second, []want{
		{"stephub_connections_active", nil, 0},
		{"stephub_subscriber_drops_total", nil, 0},
	})
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.logs.String(), `"reason":"credential_expired"`) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 stream ended lines with reason credential_expired:\n%s", s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStaticTokensOnlyInHeader checks that WORKER_TOKEN and ADMIN_TOKEN
// open their routes in the Authorization header, and never as ?token=.
func TestStaticTokensOnlyInHeader(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	v := generate(t, s, userToken(t, "static"))
	for _, r := range []struct {
		method, path, token string
		body                any
		want                int
	}{
		{"POST", "/api/v1/worker/claim?wait=0s", testWorkerToken, nil, http.StatusOK},
		{"POST", fmt.Sprintf("/api/v1/videos/%d/events", v.ID), testWorkerToken, workerStep(1), http.StatusAccepted},
		{"PUT", "/api/v1/admin/users/static", testAdminToken, map[string]any{"credits": 5000}, http.StatusOK},
	} {
		sep := "?"
		if strings.Contains(r.path, "?") {
			sep = "&"
		}
		if resp, body := call(t, r.method, s.URL+r.path+sep+"token="+r.token, "", r.body, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s with ?token=: %d %s; want 401", r.method, r.path, resp.StatusCode, body)
		}
		if resp, body := call(t, r.method, s.URL+r.path, r.token, r.body, nil); resp.StatusCode != r.want {
			t.Errorf("%s %s with the token in the header: %d %s; want %d", r.method, r.path, resp.StatusCode, body, r.want)
		}
	}
}

// TestSessionCookie signs a browser in and out the ways the dashboard does:
// the sign-in link, POST and DELETE /api/v1/session. The cookie is
// HttpOnly, SameSite=Strict, Secure behind HTTPS, and lasts as long as its
// token; it signs in API calls, those that change something only with
// X-Requested-With, and never a stream.
func TestSessionCookie(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"STEP_DELAY": "1h"})
	token := userToken(t, "cookie")
	get := func(t *testing.T, path string, header map[string]string) *http.Cookie {
		t.Helper()
		resp, body := call(t, "GET", s.URL+path, "", nil, header)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return sessionCookieOf(resp)
	}

	c := get(t, "/?token="+token, nil)
	if c == nil || c.Value != token || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Fatalf("the sign-in link's cookie: %+v; want the token, HttpOnly, SameSite=Strict, Path=/, not Secure over HTTP", c)
	}
	if c.MaxAge < 3590 || c.MaxAge > 3600 {
		t.Errorf("the cookie's Max-Age is %d; want the token's hour", c.MaxAge)
	}
	if c := get(t, "/videos/1?token="+token, map[string]string{"X-Forwarded-Proto": "https"}); c == nil || !c.Secure {
		t.Errorf("behind HTTPS the cookie is %+v; want Secure", c)
	}
	if c := get(t, "/videos/1?token=not-a-token", nil); c == nil || c.MaxAge >= 0 {
		t.Errorf("a sign-in link with a bad token sets %+v; want the cookie cleared", c)
	}
	if c := get(t, "/", nil); c != nil {
		t.Errorf("GET / without a token sets %+v; want no cookie", c)
	}
	// A sign-in link followed from another site's page neither signs in
	// nor out (login CSRF); one typed in the address bar does.
	for _, link := range []string{"/?token=" + token, "/?token=not-a-token"} {
		if c := get(t, link, map[string]string{"Sec-Fetch-Site": "cross-site"}); c != nil {
			t.Errorf("GET %s from another site sets %+v; want no cookie", link[:12], c)
		}
	}
	if c := get(t, "/?token="+token, map[string]string{"Sec-Fetch-Site": "none"}); c == nil || c.Value != token {
		t.Errorf("GET /?token= typed in the address bar sets %+v; want the session", c)
	}

	cookie := map[string]string{"Cookie": "stephub_session=" + token}
	withHeader := map[string]string{"Cookie": "stephub_session=" + token, "X-Requested-With": "stephub"}
	valid := map[string]any{"prompt": "A lighthouse in a storm", "model": "sora-2"}
	if resp, body := call(t, "GET", s.URL+"/api/v1/users/me", "", nil, cookie); resp.StatusCode != http.StatusOK {
		t.Errorf("users/me with the cookie: %d %s; want 200", resp.StatusCode, body)
	}
	if resp, body := call(t, "POST", s.URL+"/api/v1/videos/generate", "", valid, cookie); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "X-Requested-With") {
		t.Errorf("generate with the cookie alone: %d %s; want 401 naming X-Requested-With", resp.StatusCode, body)
	}
	resp, body := call(t, "POST", s.URL+"/api/v1/videos/generate", "", valid, withHeader)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("generate with the cookie and X-Requested-With: %d %s; want 201", resp.StatusCode, body)
	}
	v := decodeJSON[video](t, body)
	for _, path := range []string{"/stream", "/ws"} {
		if resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d%s", s.URL, v.ID, path), "", nil, cookie); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with the cookie: %d %s; want 401 (streams take tickets)", path, resp.StatusCode, body)
		}
	}
	tk, _ := issueTicket(t, s, token, v.ID)
	if resp, body := call(t, "GET", s.URL+"/api/v1/users/me", "", nil, map[string]string{"Cookie": "stephub_session=" + tk}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("users/me with a ticket in the cookie: %d %s; want 401", resp.StatusCode, body)
	}

	// POST /api/v1/session takes the token from the header alone.
	for _, tc := range []struct {
		name   string
		url    string
		token  string
		header map[string]string
		status int
	}{
		{"the header", s.URL + "/api/v1/session", token, nil, http.StatusNoContent},
		{"?token=", s.URL + "/api/v1/session?token=" + token, "", nil, http.StatusUnauthorized},
		{"the cookie", s.URL + "/api/v1/session", "", withHeader, http.StatusUnauthorized},
		{"a ticket", s.URL + "/api/v1/session", tk, nil, http.StatusUnauthorized},
	} {
		resp, body := call(t, "POST", tc.url, tc.token, nil, tc.header)
		c := sessionCookieOf(resp)
		if resp.StatusCode != tc.status || (tc.status == http.StatusNoContent) != (c != nil && c.Value == token && c.HttpOnly) {
			t.Errorf("sign in with %s: %d %s, cookie %+v; want %d, and the cookie only with success", tc.name, resp.StatusCode, body, c, tc.status)
		}
	}

	resp, body = call(t, "DELETE", s.URL+"/api/v1/session", "", nil, cookie)
	if c := sessionCookieOf(resp); resp.StatusCode != http.StatusNoContent || c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("sign out: %d %s, cookie %+v; want 204 and the cookie cleared", resp.StatusCode, body, c)
	}
}
