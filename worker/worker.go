// Package worker is stephub's reference worker: it claims videos from a
// stephub server and runs the mock pipeline's eight steps on each, through
// the same HTTP API that workers in any language use. It shows how to write
// one: claim with a long poll, post each step with the claim's lease token
// (so that a post after the lease was lost stores nothing) and an
// Idempotency-Key (so that a retried post is stored once), retry what the
// network loses, and stop a job as soon as the server answers 409.
package worker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/pipeline"
)

// Config is what a worker needs.
type Config struct {
	// Server is the stephub base URL, like http://localhost:8000.
	Server string
	// Token is the server's WORKER_TOKEN.
	Token string
	// Concurrency is how many jobs run at once; 0 means 1.
	Concurrency int
	// StepDelay is the pause between steps.
	StepDelay pipeline.Delay
	// ClaimWait is each claim's long poll; 0 means 30s.
	ClaimWait time.Duration
	// Logger, if set, is told what the worker does.
	Logger *slog.Logger
	// Client sends the requests; nil means a client with a timeout above
	// ClaimWait.
	Client *http.Client
}

// errStop tells a job to stop: the server refused its next step.
var errStop = errors.New("worker: the server stopped the job")

// errLeaseLost is the errStop of a job whose lease ran out: the video went
// back to the queue, and maybe to another worker.
var errLeaseLost = fmt.Errorf("%w: its lease was lost", errStop)

// job is a claimed video and the token of its lease.
type job struct {
	video stephub.Video
	lease string
}

// Run claims and runs jobs, Concurrency at a time, until ctx ends. A job
// that ctx interrupts is left as it is: its lease runs out and the server
// gives it to another worker.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Server == "" || cfg.Token == "" {
		return errors.New("worker: the server URL and the worker token are required")
	}
	cfg.Server = strings.TrimSuffix(cfg.Server, "/")
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.ClaimWait <= 0 {
		cfg.ClaimWait = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.ClaimWait + 30*time.Second}
	}
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() { loop(ctx, cfg) })
	}
	wg.Wait()
	return nil
}

// loop claims one job after another until ctx ends. A claim the server
// refuses (a wrong token, say) is retried with backoff, not at once: it
// will not pass before someone fixes it.
func loop(ctx context.Context, cfg Config) {
	var refused pipeline.Backoff
	for ctx.Err() == nil {
		j, ok, err := claim(ctx, cfg)
		if errors.Is(err, errStop) {
			wait := refused.Next()
			cfg.Logger.Error("claim refused", "err", err, "retry_in_s", wait.Seconds())
			pipeline.Sleep(ctx, wait)
			continue
		}
		refused.Reset()
		if !ok {
			continue
		}
		id := j.video.ID
		cfg.Logger.Info("claimed", "video_id", id, "from_step", j.video.Step)
		err = runJob(ctx, cfg, j)
		switch {
		case err == nil:
			cfg.Logger.Info("job done", "video_id", id)
		case errors.Is(err, errLeaseLost):
			cfg.Logger.Warn("job lost: its lease ran out before its next step", "video_id", id, "err", err)
		case errors.Is(err, errStop):
			cfg.Logger.Info("job stopped by the server", "video_id", id, "err", err)
		case ctx.Err() != nil:
		default:
			cfg.Logger.Warn("job abandoned", "video_id", id, "err", err)
		}
	}
}

// claim long-polls for a job; ok is false when none came. It fails when
// ctx ends, or with errStop when the server refuses the claim.
func claim(ctx context.Context, cfg Config) (j job, ok bool, err error) {
	var out struct {
		Video      stephub.Video `json:"video"`
		LeaseToken string        `json:"lease_token"`
	}
	url := fmt.Sprintf("%s/api/v1/worker/claim?wait=%s", cfg.Server, cfg.ClaimWait)
	status, err := send(ctx, cfg, url, nil, nil, &out)
	if err != nil {
		return job{}, false, err
	}
	return job{video: out.Video, lease: out.LeaseToken}, status == http.StatusOK, nil
}

// runJob posts the steps of j's video from where the server has it: a job
// taken over from a lost worker starts again at the step it was at.
func runJob(ctx context.Context, cfg Config, j job) error {
	v := j.video
	// Keys are unique to this claim, so a retried post is stored once and a
	// later claim's posts are new.
	nonce := make([]byte, 8)
	rand.Read(nonce)
	claimID := hex.EncodeToString(nonce)
	first := max(v.Step, 1)
	for n := first; n <= stephub.TotalSteps+1; n++ {
		if n > first && !pipeline.Sleep(ctx, cfg.StepDelay.Next()) {
			return ctx.Err()
		}
		step := pipeline.Step(n)
		body := map[string]any{
			"step":     step.Step,
			"message":  step.Message,
			"progress": max(step.Progress, v.Progress),
			"data":     map[string]any{"worker": claimID},
		}
		if step.Status.Terminal() {
			body["status"], body["video_url"] = step.Status, step.VideoURL
		}
		url := fmt.Sprintf("%s/api/v1/videos/%d/events", cfg.Server, v.ID)
		header := http.Header{"Lease-Token": {j.lease}, "Idempotency-Key": {fmt.Sprintf("%s-%d", claimID, n)}}
		if _, err := send(ctx, cfg, url, body, header, nil); err != nil {
			return err
		}
	}
	return nil
}

// send POSTs body (nil for none) as JSON with header on top, and decodes a
// 200's answer into out, retrying network failures and 5xx/429 answers with
// backoff until ctx ends. It returns errStop for a 4xx answer: 409 when the
// job was cancelled or is over, or its lease lost (errLeaseLost) or held by
// another runner, 422 for a step the server will never take.
func send(ctx context.Context, cfg Config, url string, body any, header http.Header, out any) (int, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	var failing pipeline.Backoff
	for {
		status, answer, err := post(ctx, cfg, url, payload, header)
		switch {
		case err == nil && status < 300:
			if out != nil && status == http.StatusOK {
				return status, json.Unmarshal(answer, out)
			}
			return status, nil
		case err == nil && status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			stop := errStop
			if errorCode(answer) == stephub.CodeLeaseLost {
				stop = errLeaseLost
			}
			return status, fmt.Errorf("%w: %d %s", stop, status, bytes.TrimSpace(answer))
		case ctx.Err() != nil:
			return 0, ctx.Err()
		}
		wait := failing.Next()
		cfg.Logger.Warn("request failed; retrying", "status", status, "err", err, "retry_in_s", wait.Seconds())
		if !pipeline.Sleep(ctx, wait) {
			return 0, ctx.Err()
		}
	}
}

// errorCode returns the code of a stephub error answer, or "".
func errorCode(answer []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(answer, &e) // anything else has no code
	return e.Error.Code
}

func post(ctx context.Context, cfg Config, url string, payload []byte, header http.Header) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, err
}
