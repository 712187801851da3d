// Package worker is stephub's reference worker: it claims videos from a
// stephub server and runs the mock pipeline's eight steps on each, through
// the same HTTP API that workers in any language use. It shows how to write
// one: claim with a long poll, post each step with an Idempotency-Key so that
// a retried post is stored once, retry what the network loses, and stop a job
// as soon as the server answers 409.
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
		v, ok, err := claim(ctx, cfg)
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
		cfg.Logger.Info("claimed", "video_id", v.ID, "from_step", v.Step)
		err = runJob(ctx, cfg, v)
		switch {
		case err == nil:
			cfg.Logger.Info("job done", "video_id", v.ID)
		case errors.Is(err, errStop):
			cfg.Logger.Info("job stopped by the server", "video_id", v.ID, "err", err)
		case ctx.Err() != nil:
		default:
			cfg.Logger.Warn("job abandoned", "video_id", v.ID, "err", err)
		}
	}
}

// claim long-polls for a job; ok is false when none came. It fails when
// ctx ends, or with errStop when the server refuses the claim.
func claim(ctx context.Context, cfg Config) (v stephub.Video, ok bool, err error) {
	var out struct {
		Video stephub.Video `json:"video"`
	}
	url := fmt.Sprintf("%s/api/v1/worker/claim?wait=%s", cfg.Server, cfg.ClaimWait)
	status, err := send(ctx, cfg, url, nil, "", &out)
	if err != nil {
		return stephub.Video{}, false, err
	}
	return out.Video, status == http.StatusOK, nil
}

// runJob posts the steps of v from where the server has it: a job taken
// over from a lost worker starts again at the step it was at.
func runJob(ctx context.Context, cfg Config, v stephub.Video) error {
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
		if _, err := send(ctx, cfg, url, body, fmt.Sprintf("%s-%d", claimID, n), nil); err != nil {
			return err
		}
	}
	return nil
}

// send POSTs body (nil for none) as JSON and decodes a 200's answer into
// out, retrying network failures and 5xx/429 answers with backoff until ctx
// ends. It returns errStop for a 4xx answer: 409 when the job was cancelled
// or is over, 422 for a step the server will never take.
func send(ctx context.Context, cfg Config, url string, body any, idempotencyKey string, out any) (int, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	var failing pipeline.Backoff
	for {
		status, answer, err := post(ctx, cfg, url, payload, idempotencyKey)
		switch {
		case err == nil && status < 300:
			if out != nil && status == http.StatusOK {
				return status, json.Unmarshal(answer, out)
			}
			return status, nil
		case err == nil && status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			return status, fmt.Errorf("%w: %d %s", errStop, status, bytes.TrimSpace(answer))
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

func post(ctx context.Context, cfg Config, url string, payload []byte, idempotencyKey string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, answer, err
}
