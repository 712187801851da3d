package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/internal/logbuf"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/storage"
)

// apiError is what the tests read of an error response.
type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// wantRefused fails unless the response is status with a field error on
// field.
func wantRefused(t *testing.T, resp *http.Response, body []byte, status int, field string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, body %s; want %d", resp.StatusCode, body, status)
	}
	if got := decodeJSON[apiError](t, body); got.Error.Fields[field] == "" {
		t.Errorf("body %s; want a field error on %q", body, field)
	}
}

// openStore opens the server's database beside it, to check what a refused
// request left there.
func openStore(t *testing.T, url string) *storage.Store {
	t.Helper()
	st, err := storage.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// wantNoUser fails if the user id exists. PostgreSQL cannot even look up
// an id with NUL or invalid UTF-8, let alone hold one.
func wantNoUser(t *testing.T, st *storage.Store, id string) {
	t.Helper()
	if st.Dialect() == storage.DialectPostgres && (!utf8.ValidString(id) || strings.ContainsRune(id, 0)) {
		return
	}
	if _, err := st.User(t.Context(), id); !errors.Is(err, stephub.ErrNotFound) {
		t.Errorf("user %.20q after the refusal: %v; want ErrNotFound", id, err)
	}
}

// TestNULAndOverlongInputs sends, on both databases, every string that
// reaches storage with what PostgreSQL cannot store (NUL, invalid UTF-8) or
// over its length: each is refused with a field error, the same on both,
// and leaves nothing behind.
func TestNULAndOverlongInputs(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external"})
		st := openStore(t, url)
		alice := userToken(t, "alice")

		t.Run("generate", func(t *testing.T) {
			for _, tc := range []struct{ name, body, field string }{
				{"NUL in prompt", `{"prompt": "A cat surfing\u0000 a wave", "model": "sora-2"}`, "prompt"},
				{"NUL in model", `{"prompt": "A cat surfing a wave", "model": "sora-2\u0000"}`, "model"},
				{"NUL in reference_image_url", `{"prompt": "A cat surfing a wave", "model": "sora-2", "reference_image_url": "https://example.com/a\u0000.png"}`, "reference_image_url"},
			} {
				resp, body := call(t, "POST", s.URL+"/api/v1/videos/generate", alice, tc.body, nil)
				t.Run(tc.name, func(t *testing.T) { wantRefused(t, resp, body, 422, tc.field) })
			}
			// Nothing was taken or created.
			if c := credits(t, s, alice); c != 1000 {
				t.Errorf("credits = %d; want 1000", c)
			}
			if vs, err := st.ListVideos(t.Context(), "alice", 0, 10); err != nil || len(vs) != 0 {
				t.Errorf("alice's videos = %v, %v; want none", vs, err)
			}
		})

		t.Run("worker", func(t *testing.T) {
			v := generate(t, s, alice)
			events := fmt.Sprintf("%s/api/v1/videos/%d/events", s.URL, v.ID)
			for _, tc := range []struct {
				name, body, key, field string
			}{
				{"NUL in error", `{"step": 1, "message": "boom", "progress": 5, "status": "failed", "error": "out of\u0000 memory"}`, "", "error"},
				{"NUL in message", `{"step": 1, "message": "render\u0000ing", "progress": 5}`, "", "message"},
				{"NUL in video_url", `{"step": 9, "message": "done", "progress": 100, "status": "completed", "video_url": "/v\u0000.mp4"}`, "", "video_url"},
				{"invalid UTF-8 in data", "{\"step\": 1, \"message\": \"m\", \"progress\": 5, \"data\": {\"x\": \"a\xffb\"}}", "", "data"},
				{"invalid UTF-8 Idempotency-Key", `{"step": 1, "message": "m", "progress": 5}`, "key-\xff", "Idempotency-Key"},
				{"over-long Idempotency-Key", `{"step": 1, "message": "m", "progress": 5}`, strings.Repeat("k", 256), "Idempotency-Key"},
			} {
				resp, body := call(t, "POST", events, testWorkerToken, tc.body, map[string]string{"Idempotency-Key": tc.key})
				t.Run(tc.name, func(t *testing.T) { wantRefused(t, resp, body, 422, tc.field) })
			}
			resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, v.ID), alice, nil, nil)
			if got := decodeJSON[video](t, body); resp.StatusCode != 200 || got.Status != "pending" || got.Step != 0 {
				t.Errorf("video after the refused posts: %d %s; want pending at step 0", resp.StatusCode, body)
			}
			if evs, err := st.EventsAfter(t.Context(), v.ID, 0); err != nil || len(evs) != 0 {
				t.Errorf("events after the refused posts = %d, %v; want none", len(evs), err)
			}

			// An escaped NUL inside data is six ASCII characters of JSON,
			// which both databases store: it reaches watchers unchanged.
			postWorkerStep(t, s, v.ID, `{"step": 1, "message": "m", "progress": 5, "data": {"note": "a\u0000b"}}`)
			// And the worker can still fail the video, which refunds it.
			postWorkerStep(t, s, v.ID, `{"step": 1, "message": "boom", "progress": 5, "status": "failed", "error": "out of memory"}`)
			resp, body = call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d/stream?token=%s", s.URL, v.ID, alice), "", nil, nil)
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"data":{"note":"a\u0000b"}`) {
				t.Errorf("stream: %d %s; want the data with its escaped NUL", resp.StatusCode, body)
			}
			if c := credits(t, s, alice); c != 1000 {
				t.Errorf("credits after the failure = %d; want 1000 (refunded)", c)
			}
		})

		t.Run("token", func(t *testing.T) {
			signer := mustSigner(t, testJWTSecret)
			for _, tc := range []struct{ name, sub, email, field string }{
				{"10 KB sub", incompressible(10 << 10), "", "sub"},
				{"NUL in sub", "bob\x00", "", "sub"},
				{"over-long email", "carol", strings.Repeat("e", 320) + "@example.com", "email"},
				{"NUL in email", "dave", "dave\x00@example.com", "email"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					tok, err := signer.Issue(tc.sub, tc.email, time.Hour)
					if err != nil {
						t.Fatal(err)
					}
					resp, body := call(t, "GET", s.URL+"/api/v1/users/me", tok, nil, nil)
					wantRefused(t, resp, body, 401, tc.field)
					if code := decodeJSON[apiError](t, body).Error.Code; code != stephub.CodeUnauthorized {
						t.Errorf("code %q; want %q", code, stephub.CodeUnauthorized)
					}
					wantNoUser(t, st, tc.sub)
				})
			}
		})

		t.Run("admin", func(t *testing.T) {
			for _, tc := range []struct{ name, path, id string }{
				{"over-long id", strings.Repeat("i", 256), strings.Repeat("i", 256)},
				{"NUL in id", "eve%00", "eve\x00"},
				{"invalid UTF-8 id", "eve%FF", "eve\xff"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					resp, body := call(t, "PUT", s.URL+"/api/v1/admin/users/"+tc.path, testAdminToken, `{"credits": 5}`, nil)
					wantRefused(t, resp, body, 422, "id")
					wantNoUser(t, st, tc.id)
				})
			}
		})
	})
}

// incompressible returns n random letters: PostgreSQL compresses a
// repetitive string under its index row limit, which random ones exceed.
func incompressible(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(rand.IntN(26))
	}
	return string(b)
}

// TestCreditsBounded checks on both databases that the admin API refuses
// balances above stephub.MaxCredits, and that a refund at the maximum
// neither overflows nor takes a balance past it.
func TestCreditsBounded(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external"})
		alice := userToken(t, "alice")
		put := func(n int64) (*http.Response, []byte) {
			return call(t, "PUT", s.URL+"/api/v1/admin/users/alice", testAdminToken, `{"credits": `+strconv.FormatInt(n, 10)+`}`, nil)
		}
		if resp, body := put(500); resp.StatusCode != 200 {
			t.Fatalf("put 500: %d %s", resp.StatusCode, body)
		}
		for _, n := range []int64{math.MaxInt64, stephub.MaxCredits + 1} {
			resp, body := put(n)
			wantRefused(t, resp, body, 422, "credits")
		}
		if c := credits(t, s, alice); c != 500 {
			t.Errorf("credits after the refused puts = %d; want 500", c)
		}

		// A video's cost is out while the admin tops the balance up to the
		// maximum; its refund stops there.
		if resp, body := put(stephub.MaxCredits); resp.StatusCode != 200 {
			t.Fatalf("put the maximum: %d %s", resp.StatusCode, body)
		}
		v := generate(t, s, alice)
		if resp, body := put(stephub.MaxCredits); resp.StatusCode != 200 {
			t.Fatalf("put the maximum again: %d %s", resp.StatusCode, body)
		}
		resp, body := call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/cancel", s.URL, v.ID), alice, nil, nil)
		if got := decodeJSON[video](t, body); resp.StatusCode != 200 || got.Status != "cancelled" {
			t.Fatalf("cancel: %d %s; want 200, cancelled", resp.StatusCode, body)
		}
		resp, body = call(t, "GET", s.URL+"/api/v1/users/me", alice, nil, nil)
		want := `"credits":` + strconv.FormatInt(stephub.MaxCredits, 10) + `,`
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("users/me: %d %s; want 200 with %s", resp.StatusCode, body, want)
		}

		// The same through a worker that fails the job.
		v = generate(t, s, alice)
		if resp, body := put(stephub.MaxCredits); resp.StatusCode != 200 {
			t.Fatalf("put the maximum: %d %s", resp.StatusCode, body)
		}
		postWorkerStep(t, s, v.ID, `{"step": 1, "message": "boom", "progress": 5, "status": "failed", "error": "out of memory"}`)
		if c := credits(t, s, alice); c != stephub.MaxCredits {
			t.Errorf("credits after the failure = %d; want %d", c, stephub.MaxCredits)
		}
	})
}

// TestNewUserCreditsBounded checks that serve refuses to give new users more
// than stephub.MaxCredits.
func TestNewUserCreditsBounded(t *testing.T) {
	vars := map[string]string{"ADDR": "127.0.0.1:0", "DATABASE_URL": testdb.SQLite(t),
		"NEW_USER_CREDITS": strconv.FormatInt(stephub.MaxCredits+1, 10)}
	// Should serve start after all, it stops here rather than hang.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var out, logs logbuf.Buffer
	err := run(ctx, []string{"serve"}, func(k string) string { return vars[k] }, &out, &logs)
	if err == nil || !strings.Contains(err.Error(), "-new-user-credits") {
		t.Errorf("run = %v; want an error about -new-user-credits", err)
	}
}
