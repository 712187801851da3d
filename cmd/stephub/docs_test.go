package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/stephub/stephub/internal/testdb"
)

// docBlock returns the first shell block of the doc path (from the
// repository's root) that holds marker, or fails the test.
func docBlock(t *testing.T, path, marker string) string {
	t.Helper()
	for _, b := range docShellBlocks(t) {
		if strings.HasPrefix(b.key, path+": ") && strings.Contains(b.text, marker) {
			return b.text
		}
	}
	t.Fatalf("%s has no shell block with %q", path, marker)
	return ""
}

// TestDocCurlWorker runs the curl worker of docs/workers.md as written, against a
// server on its worker token, with a video pending: it claims the video,
// takes its id and lease token from the claim, and its post is stored
// under that lease.
func TestDocCurlWorker(t *testing.T) {
	for _, tool := range []string{"curl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the curl worker needs it", tool)
		}
	}
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external", "WORKER_TOKEN": "secret"})
	token := userToken(t, "curled")
	generate(t, s, token) // one that is not the first: the example must not assume an id
	v := generate(t, s, token)
	resp, body := call(t, "POST", s.URL+"/api/v1/worker/claim", "secret", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("claiming the first video: %d %s", resp.StatusCode, body)
	}

	script := strings.ReplaceAll(docBlock(t, "docs/workers.md", "/api/v1/worker/claim"), "http://localhost:8000", s.URL)
	out, err := exec.Command("sh", "-eu", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the curl worker: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf(`{"video":{"id":%d,`, v.ID)) || !strings.HasSuffix(string(out), `{"id":1}`+"\n") {
		t.Errorf("the curl worker printed:\n%s\nwant the claim of video %d, then {\"id\":1}", out, v.ID)
	}
	// The post carried the lease's token: the lease is fenced.
	resp, body = call(t, "POST", fmt.Sprintf("%s/api/v1/videos/%d/events", s.URL, v.ID), "secret", workerStep(2), nil)
	checkAnswer(t, "a post without the lease token after the example's", resp, body, 409, "lease_held")
	if evs := openStream(t, s, token, v.ID, "").take(t, 1); evs[0].Message != "🔍 Checking" || evs[0].Progress != 5 {
		t.Errorf("the video's first event: %+v; want the example's step", evs[0])
	}
}
