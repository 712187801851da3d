package main

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stephub/stephub/internal/testdb"
)

// TestRestartMidJob stops the server while a job runs and a tab watches it.
// The stream ends so that the tab reconnects; after the restart the job goes
// on from its last stored step, and the tab, resuming by Last-Event-ID, sees
// every event exactly once.
func TestRestartMidJob(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		env := map[string]string{"STEP_DELAY": "100ms"}
		s := startServer(t, url, env)
		token := userToken(t, "restarter")
		v := generate(t, s, token)
		st := openStream(t, s, token, v.ID, "")
		seen := st.take(t, 3)

		s.Stop(t)
		// The stream ends with the server, possibly after events sent
		// while it stopped.
		for {
			_, ev, err := st.next(t)
			if err != nil {
				if !errors.Is(err, errStreamEnd) {
					t.Logf("stream ended with %v", err)
				}
				break
			}
			seen = append(seen, ev)
		}
		s2 := startServer(t, url, env)
		back := openStream(t, s2, token, v.ID, fmt.Sprint(seen[len(seen)-1].ID))
		seen = append(seen, back.readAll(t)...)
		checkComplete(t, "across the restart", seen)

		resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s2.URL, v.ID), token, nil, nil)
		if got := decodeJSON[video](t, body); resp.StatusCode != http.StatusOK || got.Status != "completed" {
			t.Errorf("video after the restart: %d %s; want completed", resp.StatusCode, body)
		}
		if got := credits(t, s2, token); got != 900 {
			t.Errorf("credits = %d; want 900: one generate, no refund", got)
		}
	})
}
