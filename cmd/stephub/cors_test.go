package main

import (
	"fmt"
	"testing"

	"github.com/stephub/stephub/internal/testdb"
)

// TestCORS checks that allowed origins get CORS headers on JSON routes,
// streams and preflights, and that other origins get none.
func TestCORS(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"ALLOWED_ORIGINS": "http://localhost:3000, https://app.example"})
	token := userToken(t, "cors")
	v := generate(t, s, token)
	stream := fmt.Sprintf("%s/api/v1/videos/%d/stream?token=%s", s.URL, v.ID, token)

	for _, tc := range []struct {
		name, method, url, origin string
		header                    map[string]string
		wantStatus                int
		wantAllow                 string
	}{
		{"JSON route, allowed", "GET", s.URL + "/api/v1/users/me", "http://localhost:3000", nil, 200, "http://localhost:3000"},
		{"JSON route, second origin", "GET", s.URL + "/api/v1/users/me", "https://app.example", nil, 200, "https://app.example"},
		{"JSON route, other origin", "GET", s.URL + "/api/v1/users/me", "https://evil.example", nil, 200, ""},
		{"stream, allowed", "GET", stream, "http://localhost:3000", nil, 200, "http://localhost:3000"},
		{"error, allowed", "GET", s.URL + "/api/v1/videos/999999", "http://localhost:3000", nil, 404, "http://localhost:3000"},
		{"preflight, allowed", "OPTIONS", s.URL + "/api/v1/videos/generate", "http://localhost:3000",
			map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}, 204, "http://localhost:3000"},
		{"preflight, other origin", "OPTIONS", s.URL + "/api/v1/videos/generate", "https://evil.example",
			map[string]string{"Access-Control-Request-Method": "POST"}, 204, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Origin": tc.origin}
			for k, v := range tc.header {
				hdr[k] = v
			}
			tok := token
			if tc.method == "OPTIONS" {
				tok = "" // browsers send preflights without credentials
			}
			resp, _ := call(t, tc.method, tc.url, tok, nil, hdr)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d; want %d", resp.StatusCode, tc.wantStatus)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.wantAllow {
				t.Errorf("Access-Control-Allow-Origin = %q; want %q", got, tc.wantAllow)
			}
			if got := resp.Header.Get("Vary"); got != "Origin" {
				t.Errorf("Vary = %q; want Origin", got)
			}
			if tc.method == "OPTIONS" && tc.wantAllow != "" {
				if resp.Header.Get("Access-Control-Allow-Methods") == "" || resp.Header.Get("Access-Control-Allow-Headers") == "" {
					t.Errorf("preflight lacks Allow-Methods or Allow-Headers: %v", resp.Header)
				}
			}
		})
	}
}
