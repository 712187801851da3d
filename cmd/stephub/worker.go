package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stephub/stephub/pipeline"
	"github.com/stephub/stephub/worker"
)

// runWorker runs the reference worker against a server until ctx ends.
func runWorker(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flagSet("worker", stderr)
	server := fs.String("server", envOr(getenv, "STEPHUB_SERVER", "http://localhost:8000"), "the server's base URL (env STEPHUB_SERVER)")
	token := fs.String("token", getenv("WORKER_TOKEN"), "the server's worker token (env WORKER_TOKEN)")
	concurrency := fs.Int("concurrency", 1, "jobs to run at once")
	delay := fs.String("step-delay", envOr(getenv, "STEP_DELAY", "2s-3s"), "pause between steps: a range A-B, one duration, or 0 (env STEP_DELAY)")
	logLevel := fs.String("log-level", envOr(getenv, "LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("worker: -token (or WORKER_TOKEN) is required")
	}
	if *concurrency < 1 {
		return fmt.Errorf("worker: -concurrency %d: want 1 or more", *concurrency)
	}
	stepDelay, err := pipeline.ParseDelay(*delay)
	if err != nil {
		return fmt.Errorf("worker: -step-delay: %w", err)
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	logger.Info("worker started", "server", *server, "concurrency", *concurrency)
	return worker.Run(ctx, worker.Config{
		Server:      *server,
		Token:       *token,
		Concurrency: *concurrency,
		StepDelay:   stepDelay,
		Logger:      logger,
	})
}
