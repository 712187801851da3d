package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub/internal/testdb"
)

// TestClaimOfGoneWorkerTakesNothing starts a long-polling claim and hangs
// up while it waits, as a worker that is stopped does. The video generated
// next stays pending, with no attempt spent, and goes to the next worker.
// Claims with a body, which the route does not take, are tried too:
// net/http notices a client hang up only once the body is read.
func TestClaimOfGoneWorkerTakesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func() io.Reader
	}{
		{"no body", func() io.Reader { return nil }},
		{"JSON body", func() io.Reader { return strings.NewReader("{}") }},
		// A reader of unknown length goes chunked.
		{"chunked empty body", func() io.Reader { return io.MultiReader() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testdb.ForEach(t, func(t *testing.T, url string) {
				s := startServer(t, url, map[string]string{"PIPELINE": "external"})
				token := userToken(t, "abandoned")

				ctx, cancel := context.WithCancel(context.Background())
				req, err := http.NewRequestWithContext(ctx, "POST", s.URL+"/api/v1/worker/claim?wait=30s", tc.body())
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+testWorkerToken)
				answered := make(chan error, 1)
				go func() {
					resp, err := http.DefaultClient.Do(req)
					if err == nil {
						resp.Body.Close()
					}
					answered <- err
				}()
				// Let the claim reach its wait, then stop the worker.
				time.Sleep(300 * time.Millisecond)
				cancel()
				if err := <-answered; err == nil {
					t.Fatal("the dropped claim got an answer")
				}
				// Give the server a moment to see the hang-up.
				time.Sleep(100 * time.Millisecond)

				v := generate(t, s, token)
				time.Sleep(300 * time.Millisecond)
				got, err := openStore(t, url).Video(context.Background(), v.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != "pending" || got.Attempts != 0 {
					t.Fatalf("video after a dropped claim: %s after %d claims; want pending after 0", got.Status, got.Attempts)
				}
				if c := claimVideo(t, s); c.Video.ID != v.ID || c.LeaseToken == "" {
					t.Fatalf("the next worker claimed video %d; want %d", c.Video.ID, v.ID)
				}
			})
		})
	}
}
