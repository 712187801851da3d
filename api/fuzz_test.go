package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stephub/stephub"
)

// decodeFuzzed runs a body through decode as a request with contentType
// would, and checks that a refusal is a client error with its status.
func decodeFuzzed(t *testing.T, body []byte, contentType string, dst any) error {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	err := decode(httptest.NewRecorder(), r, dst)
	var e *stephub.Error
	if err != nil && (!errors.As(err, &e) || statusOf[e.Code] < 400 || statusOf[e.Code] >= 500) {
		t.Fatalf("decode(%q): %v; want a client error", body, err)
	}
	return err
}

// onlyKnownKeys reports whether body, accepted by decode, is an object whose
// keys are each one of names, once.
func onlyKnownKeys(body []byte, names map[string]bool) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, _ := dec.Token()
		key, _ := tok.(string)
		if !names[key] || seen[key] {
			return false
		}
		seen[key] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return true
}

// FuzzGenerateBody reads any body as a generate request: a refusal is a
// client error, and what is accepted is what the contract allows and what
// both databases store.
func FuzzGenerateBody(f *testing.F) {
	f.Add([]byte(`{"prompt": "A cat surfing a wave at sunset", "model": "sora-2"}`), "application/json")
	f.Add([]byte(`{"prompt": "  A lighthouse in a storm  ", "model": "sora-2-pro", "reference_image_url": "https://x.test/a.png"}`), "application/json; charset=utf-8")
	f.Add([]byte(`{"prompt": "A lighthouse\u0000 in a storm", "model": "sora-2"}`), "application/json")
	f.Add([]byte(`{"Prompt": "A lighthouse in a storm", "model": "sora-2", "model": "x"}`), "application/json")
	f.Add([]byte(`[1, 2]`), "text/plain")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		var req generateRequest
		if decodeFuzzed(t, body, contentType, &req) != nil || len(req.valid()) > 0 {
			return
		}
		n := utf8.RuneCountInString(req.Prompt)
		switch {
		case !onlyKnownKeys(body, namesOf(&req)):
			t.Fatalf("accepted %q, which has keys the request does not take", body)
		case n < minPromptChars || n > maxPromptChars || req.Prompt != strings.TrimSpace(req.Prompt):
			t.Fatalf("accepted prompt %q (%d characters)", req.Prompt, n)
		case textProblem(req.Prompt, maxPromptChars) != "":
			t.Fatalf("accepted prompt %q, which a database cannot store", req.Prompt)
		case !slices.Contains(models, req.Model):
			t.Fatalf("accepted model %q", req.Model)
		case req.ReferenceImageURL != nil && (!isHTTPURL(*req.ReferenceImageURL) || textProblem(*req.ReferenceImageURL, maxURLChars) != ""):
			t.Fatalf("accepted reference image URL %q", *req.ReferenceImageURL)
		}
	})
}

// FuzzWorkerBody reads any body and Idempotency-Key as a worker's post: a
// refusal is a client error, and an accepted step is one the contract
// allows and both databases store, its data a compact object.
func FuzzWorkerBody(f *testing.F) {
	f.Add([]byte(`{"step": 3, "message": "🤖 Calling Sora 2 API...", "progress": 33}`), "application/json", "job-3")
	f.Add([]byte(`{"step": 9, "message": "done", "progress": 100, "status": "completed", "video_url": "/v.mp4", "data": {"frames": 120}}`), "application/json", "")
	f.Add([]byte(`{"step": 2, "message": "oops", "progress": 20, "status": "failed", "error": "GPU\u0000 lost"}`), "application/json", "k")
	f.Add([]byte(`{"step": 1, "message": "a", "progress": 5, "data": {"x": 1, "x": 2}}`), "application/json", "\xff")
	f.Add([]byte(`{"step": 1, "message": "a", "progress": 5, "data": [1]}`), "application/json", "")
	f.Fuzz(func(t *testing.T, body []byte, contentType, key string) {
		var req workerEventRequest
		if decodeFuzzed(t, body, contentType, &req) != nil {
			return
		}
		st, problems := req.step(key)
		if len(problems) > 0 {
			return
		}
		switch {
		case !onlyKnownKeys(body, namesOf(&req)):
			t.Fatalf("accepted %q, which has keys the request does not take", body)
		case st.Step < 1 || st.Step > stephub.TotalSteps+1 || st.Progress < 0 || st.Progress > 100:
			t.Fatalf("accepted step %d, progress %d", st.Step, st.Progress)
		case st.Message == "" || textProblem(st.Message, maxMessageChars) != "":
			t.Fatalf("accepted message %q", st.Message)
		case st.Status == stephub.StatusCompleted && (st.VideoURL == nil || *st.VideoURL == ""),
			st.Status == stephub.StatusFailed && (st.Error == nil || *st.Error == ""),
			st.Status != stephub.StatusProcessing && st.Status != stephub.StatusCompleted && st.Status != stephub.StatusFailed:
			t.Fatalf("accepted status %q with video_url %v, error %v", st.Status, st.VideoURL, st.Error)
		case st.VideoURL != nil && textProblem(*st.VideoURL, maxURLChars) != "",
			st.Error != nil && textProblem(*st.Error, maxMessageChars) != "",
			textProblem(st.IdempotencyKey, maxIdempotencyKeyLen) != "":
			t.Fatalf("accepted a string a database cannot store: %q, %q, %q", deref(st.VideoURL), deref(st.Error), st.IdempotencyKey)
		}
		if st.Data != nil {
			var compact bytes.Buffer
			if json.Compact(&compact, st.Data) != nil || !bytes.Equal(compact.Bytes(), st.Data) ||
				st.Data[0] != '{' || len(st.Data) > maxDataBytes || !utf8.Valid(st.Data) {
				t.Fatalf("accepted data %q", st.Data)
			}
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
