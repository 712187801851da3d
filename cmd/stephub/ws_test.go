package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/stephub/stephub/internal/testdb"
)

// dialWS opens a video's WebSocket with token in the query; query is
// appended to the URL.
func dialWS(t *testing.T, s *testServer, token string, videoID int64, query string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	return dialWSQuery(t, s, videoID, "?token="+token+query, header)
}

// dialWSQuery opens a video's WebSocket with query as the URL's query.
func dialWSQuery(t *testing.T, s *testServer, videoID int64, query string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	url := fmt.Sprintf("ws%s/api/v1/videos/%d/ws%s", strings.TrimPrefix(s.URL, "http"), videoID, query)
	conn, resp, err := websocket.DefaultDialer.Dial(url, header)
	if conn != nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// readWS reads events until the server closes, and returns them with the
// close code.
func readWS(t *testing.T, conn *websocket.Conn) ([]event, int) {
	t.Helper()
	var out []event
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("read: %v", err)
			}
			return out, ce.Code
		}
		var ev event
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("frame %q: %v", data, err)
		}
		out = append(out, ev)
	}
}

// TestWebSocketFlow watches jobs over WebSocket: the same events and ids as
// SSE, resumption with last_event_id, a close at once when nothing is left,
// and cancel from the client.
func TestWebSocketFlow(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"STEP_DELAY": "50ms"})
		token := userToken(t, "wsuser")
		v := generate(t, s, token)

		conn, _, err := dialWS(t, s, token, v.ID, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		events, code := readWS(t, conn)
		checkComplete(t, "websocket", events)
		if code != websocket.CloseNormalClosure {
			t.Errorf("close code %d; want 1000", code)
		}
		checkComplete(t, "sse after websocket", openStream(t, s, token, v.ID, "").readAll(t))

		conn, _, err = dialWS(t, s, token, v.ID, "&last_event_id=6", nil)
		if err != nil {
			t.Fatal(err)
		}
		if rest, code := readWS(t, conn); len(rest) != 3 || rest[0].ID != 7 || code != websocket.CloseNormalClosure {
			t.Errorf("resumed after 6: %+v, close %d; want events 7..9 and 1000", rest, code)
		}
		conn, _, err = dialWS(t, s, token, v.ID, "&last_event_id=9", nil)
		if err != nil {
			t.Fatal(err)
		}
		if rest, code := readWS(t, conn); len(rest) != 0 || code != websocket.CloseNormalClosure {
			t.Errorf("nothing left: %+v, close %d; want no event and 1000 at once", rest, code)
		}

		// Cancel from the client.
		slow := startServer(t, url, map[string]string{"STEP_DELAY": "1h"})
		v = generate(t, slow, token)
		before := credits(t, slow, token)
		conn, _, err = dialWS(t, slow, token, v.ID, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := conn.ReadMessage(); err != nil { // step 1
			t.Fatal(err)
		}
		if err := conn.WriteJSON(map[string]string{"type": "cancel"}); err != nil {
			t.Fatal(err)
		}
		rest, code := readWS(t, conn)
		if len(rest) != 1 || rest[0].Status != "cancelled" || rest[0].ID != 2 || code != websocket.CloseNormalClosure {
			t.Errorf("after cancel: %+v, close %d; want one cancelled event (id 2) and 1000", rest, code)
		}
		if got := credits(t, slow, token); got != before+100 {
			t.Errorf("credits = %d; want %d", got, before+100)
		}
	})
}

// TestWebSocketRefusals checks the errors answered before the upgrade.
func TestWebSocketRefusals(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{
		"STEP_DELAY": "1h", "MAX_STREAMS_PER_USER": "1", "ALLOWED_ORIGINS": "http://localhost:3000",
	})
	token := userToken(t, "wsrefused")
	v := generate(t, s, token)
	for _, tc := range []struct {
		name   string
		token  string
		id     int64
		query  string
		origin string
		status int
	}{
		{"no token", "", v.ID, "", "", 401},
		{"bad last_event_id", token, v.ID, "&last_event_id=x", "", 400},
		{"foreign origin", token, v.ID, "", "https://evil.example", 403},
		{"unknown video", token, 999999, "", "", 404},
		{"another user's video", userToken(t, "other"), v.ID, "", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			_, resp, err := dialWS(t, s, tc.token, tc.id, tc.query, h)
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Errorf("dial = %v, %v; want HTTP %d", resp, err, tc.status)
			}
		})
	}
	// Allowed: the server's own origin and a listed one. The cap of one
	// stream per user then refuses a second stream, on either transport.
	h := http.Header{"Origin": {s.URL}}
	held, _, err := dialWS(t, s, token, v.ID, "", h)
	if err != nil {
		t.Fatalf("own origin: %v", err)
	}
	if _, resp, err := dialWS(t, s, token, v.ID, "", http.Header{"Origin": {"http://localhost:3000"}}); err == nil || resp.StatusCode != 429 {
		t.Errorf("second stream: %v, %v; want 429", resp, err)
	}
	if resp, _ := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d/stream?token=%s", s.URL, v.ID, token), "", nil, nil); resp.StatusCode != 429 {
		t.Errorf("SSE beside a WebSocket: %d; want 429", resp.StatusCode)
	}
	held.Close()
	// A plain GET on the WebSocket route is a 400.
	if resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d/ws", s.URL, v.ID), token, nil, nil); resp.StatusCode != 400 {
		t.Errorf("GET without upgrade: %d %s; want 400", resp.StatusCode, body)
	}
}

// TestWebSocketShutdown stops the server under an open WebSocket: the
// client gets 1001 and, after the restart, resumes without gap or repeat.
func TestWebSocketShutdown(t *testing.T) {
	url := testdb.SQLite(t)
	env := map[string]string{"STEP_DELAY": "80ms"}
	s := startServer(t, url, env)
	token := userToken(t, "wsrestart")
	v := generate(t, s, token)
	conn, _, err := dialWS(t, s, token, v.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen []event
	for len(seen) < 2 {
		var ev event
		if err := conn.ReadJSON(&ev); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, ev)
	}
	s.Stop(t)
	rest, code := readWS(t, conn)
	seen = append(seen, rest...)
	if code != websocket.CloseGoingAway {
		t.Errorf("close code at shutdown %d; want 1001", code)
	}
	s2 := startServer(t, url, env)
	conn, _, err = dialWS(t, s2, token, v.ID, fmt.Sprintf("&last_event_id=%d", seen[len(seen)-1].ID), nil)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ = readWS(t, conn)
	checkComplete(t, "websocket across a restart", append(seen, rest...))
}
