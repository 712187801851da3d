package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stephub/stephub/internal/testdb"
)

// claim is a worker's claim as the API answers it.
type claim struct {
	Video      video  `json:"video"`
	LeaseToken string `json:"lease_token"`
}

// claimVideo claims the oldest pending video as a worker, failing the test
// unless one comes within a few seconds.
func claimVideo(t *testing.T, s *testServer) claim {
	t.Helper()
	resp, body := call(t, "POST", s.URL+"/api/v1/worker/claim?wait=5s", testWorkerToken, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("claim: %d %s; want 200", resp.StatusCode, body)
	}
	return decodeJSON[claim](t, body)
}

// leased is the header of a post by the holder of the lease token.
func leased(token string) map[string]string {
	return map[string]string{"Lease-Token": token}
}

// TestLeaseLostToAnotherWorker lets worker A's lease run out while worker B
// claims the video: A's posts with its old token are refused with
// lease_lost, whatever their body, and store nothing; B's go through.
// B's token fences the lease: a post without one is refused with
// lease_held.
func TestLeaseLostToAnotherWorker(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external", "LEASE": "1s"})
		token := userToken(t, "fenced")
		v := generate(t, s, token)
		st := openStream(t, s, token, v.ID, "")

		a := claimVideo(t, s)
		if a.Video.ID != v.ID || a.LeaseToken == "" {
			t.Fatalf("claim: video %d with lease token %q; want video %d and a token", a.Video.ID, a.LeaseToken, v.ID)
		}
		resp, body := postWorker(t, s, v.ID, workerStep(1), leased(a.LeaseToken))
		checkAnswer(t, "A's first step", resp, body, http.StatusAccepted, "")
		// A goes silent: after its lease the video is queued again.
		if evs := st.take(t, 2); evs[1].Status != "pending" {
			t.Fatalf("events %+v; want A's step, then the video queued again", evs)
		}

		b := claimVideo(t, s)
		if b.Video.ID != v.ID || b.LeaseToken == "" || b.LeaseToken == a.LeaseToken {
			t.Fatalf("second claim: video %d with lease token %q; want video %d and a token other than A's", b.Video.ID, b.LeaseToken, v.ID)
		}
		resp, body = postWorker(t, s, v.ID, workerStep(2), leased(a.LeaseToken))
		checkAnswer(t, "A's step after losing its lease", resp, body, http.StatusConflict, "lease_lost")
		resp, body = postWorker(t, s, v.ID, "{broken", leased(a.LeaseToken))
		checkAnswer(t, "A's broken step after losing its lease", resp, body, http.StatusConflict, "lease_lost")
		resp, body = postWorker(t, s, v.ID, workerStep(2), leased(b.LeaseToken))
		checkAnswer(t, "B's step", resp, body, http.StatusAccepted, "")
		resp, body = postWorker(t, s, v.ID, workerStep(3), nil)
		checkAnswer(t, "a step without a token", resp, body, http.StatusConflict, "lease_held")
		for n := 3; n <= stephubSteps; n++ {
			resp, body = postWorker(t, s, v.ID, workerStep(n), leased(b.LeaseToken))
			checkAnswer(t, fmt.Sprintf("B's step %d", n), resp, body, http.StatusAccepted, "")
		}

		rest := st.readAll(t)
		if len(rest) != stephubSteps-1 {
			t.Fatalf("after the requeue: %+v; want B's steps 2 to %d only", rest, stephubSteps)
		}
		for i, ev := range rest {
			if ev.ID != int64(i+3) || ev.Step != i+2 {
				t.Errorf("event %+v; want id %d at step %d", ev, i+3, i+2)
			}
		}
		resp, body = postWorker(t, s, v.ID, workerStep(stephubSteps), leased(b.LeaseToken))
		checkAnswer(t, "B's step after the end", resp, body, http.StatusConflict, "video_finished")
	})
}

// TestLeaseWithoutToken: workers that never send a Lease-Token keep
// working while nobody posts with the token. A post to a pending video
// claims it and its answer carries the new lease's token; once a post
// carried that token, only posts with it are taken.
func TestLeaseWithoutToken(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external"})
		token := userToken(t, "curl")

		claimed := generate(t, s, token)
		if c := claimVideo(t, s); c.Video.ID != claimed.ID {
			t.Fatalf("claimed video %d; want %d", c.Video.ID, claimed.ID)
		}
		postWorkerJob(t, s, claimed.ID, 0, 1, stephubSteps)

		v := generate(t, s, token)
		resp, body := postWorker(t, s, v.ID, workerStep(1), nil)
		checkAnswer(t, "a post to a pending video", resp, body, http.StatusAccepted, "")
		lease := resp.Header.Get("Lease-Token")
		if lease == "" {
			t.Fatal("a post that claimed a pending video has no Lease-Token in its answer")
		}
		resp, body = postWorker(t, s, v.ID, workerStep(2), nil)
		checkAnswer(t, "a second post without a token", resp, body, http.StatusAccepted, "")
		if got := resp.Header.Get("Lease-Token"); got != "" {
			t.Errorf("a post that claimed nothing answered Lease-Token %q; want none", got)
		}
		resp, body = postWorker(t, s, v.ID, workerStep(3), leased(lease))
		checkAnswer(t, "a post with the token", resp, body, http.StatusAccepted, "")
		resp, body = postWorker(t, s, v.ID, workerStep(4), nil)
		checkAnswer(t, "a post without the token once it was sent", resp, body, http.StatusConflict, "lease_held")
		resp, body = postWorker(t, s, v.ID, workerStep(4), leased("made-up"))
		checkAnswer(t, "a post with another token", resp, body, http.StatusConflict, "lease_lost")
		resp, body = postWorker(t, s, v.ID, workerStep(4), leased(lease))
		checkAnswer(t, "the holder's next post", resp, body, http.StatusAccepted, "")
	})
}

// TestMockLeaseRefusesWorkers posts into a video that the built-in
// pipeline runs: without a token the post is refused with lease_held, with
// a token that is not the pipeline's with lease_lost, and the job completes
// its steps as if nobody had posted.
func TestMockLeaseRefusesWorkers(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"STEP_DELAY": "100ms"})
		token := userToken(t, "mocked")
		v := generate(t, s, token)
		st := openStream(t, s, token, v.ID, "")
		seen := st.take(t, 1)
		intruder := map[string]any{"step": 8, "message": "not mine", "progress": 99}
		resp, body := postWorker(t, s, v.ID, intruder, nil)
		checkAnswer(t, "a post without a token", resp, body, http.StatusConflict, "lease_held")
		resp, body = postWorker(t, s, v.ID, "{broken", nil)
		checkAnswer(t, "a broken post without a token", resp, body, http.StatusConflict, "lease_held")
		resp, body = postWorker(t, s, v.ID, intruder, leased("someone-elses"))
		checkAnswer(t, "a post with a token", resp, body, http.StatusConflict, "lease_lost")
		checkComplete(t, "the mock job", append(seen, st.readAll(t)...))

		// Nor can a worker take a video the pipeline has not claimed yet
		// (the user's credits pay for 9 more).
		for range 9 {
			v := generate(t, s, token)
			resp, body := postWorker(t, s, v.ID, workerStep(1), nil)
			checkAnswer(t, "a post right after generate", resp, body, http.StatusConflict, "lease_held")
		}
	})
}
