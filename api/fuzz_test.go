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
