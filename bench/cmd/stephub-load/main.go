// Command stephub-load measures a running stephub server on loopback: it
// opens many SSE and WebSocket subscribers over a set of videos, posts
// events through the worker route at a set rate, each carrying its send
// time, and prints one line: deliveries, losses, latency, and the server's
// CPU time and memory read from /proc.
//
// The server must run with PIPELINE=external (so that only the load's events
// reach the videos), MAX_STREAMS_PER_USER=0, and the tokens given here.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "stephub-load:", err)
		os.Exit(1)
	}
}

// config is one load run.
type config struct {
	Server      string
	Watch       []string // base URLs subscribers connect to, each video's spread over them
	JWTSecret   string
	WorkerToken string
	AdminToken  string
	Videos      int
	Subscribers int
	Transport   string // sse, ws or mixed
	Rate        float64
	Duration    time.Duration
	Warmup      time.Duration // the start of Duration whose events are not timed
	Posters     int
	SourceIPs   int
	PID         int
	Settle      time.Duration
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("stephub-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.Server, "server", "http://127.0.0.1:8000", "the server's base URL, where events are posted")
	watch := fs.String("watch", "", "the base URLs subscribers connect to, comma-separated, e.g. other nodes of a cluster; each video's subscribers are spread over them (default: -server)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", envOr(getenv, "JWT_SECRET", "stephub-dev-secret-do-not-use-in-production"), "the server's JWT secret (env JWT_SECRET)")
	fs.StringVar(&c.WorkerToken, "worker-token", getenv("WORKER_TOKEN"), "the server's worker token (env WORKER_TOKEN)")
	fs.StringVar(&c.AdminToken, "admin-token", getenv("ADMIN_TOKEN"), "the server's admin token, to give the load user credits (env ADMIN_TOKEN)")
	fs.IntVar(&c.Videos, "videos", 1, "videos to watch")
	fs.IntVar(&c.Subscribers, "subscribers", 100, "subscribers in all, spread evenly over the videos")
	fs.StringVar(&c.Transport, "transport", "sse", "sse, ws, or mixed (alternating)")
	fs.Float64Var(&c.Rate, "rate", 100, "events per second in all, spread over the videos; 0 posts none (an idle run)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to post events (or to hold idle connections)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "how long, from the start of -duration, events are delivered and counted but not timed, to measure the steady state without the first event of each video")
	fs.IntVar(&c.Posters, "posters", 16, "concurrent event posters")
	fs.IntVar(&c.SourceIPs, "source-ips", 8, "client source addresses 127.0.0.2, 127.0.0.3, … to spread sockets over")
	fs.IntVar(&c.PID, "pid", 0, "the server's process id, to read its CPU time and memory from /proc")
	fs.DurationVar(&c.Settle, "settle", 30*time.Second, "how long to wait for the last deliveries")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	for _, u := range strings.Split(*watch, ",") {
		if u = strings.TrimSpace(u); u != "" {
			c.Watch = append(c.Watch, u)
		}
	}
	if len(c.Watch) == 0 {
		c.Watch = []string{c.Server}
	}
	for _, u := range c.Watch {
		if !strings.HasPrefix(u, "http://") {
			return config{}, fmt.Errorf("-watch %q: want an http:// base URL", u)
		}
	}
	switch {
	case c.WorkerToken == "":
		return config{}, errors.New("-worker-token is required")
	case c.AdminToken == "":
		return config{}, errors.New("-admin-token is required")
	case c.Videos < 1 || c.Subscribers < 0 || c.Posters < 1 || c.SourceIPs < 1 || c.SourceIPs > 250:
		return config{}, errors.New("-videos, -posters and -source-ips (≤ 250) must be positive, -subscribers not negative")
	case c.Transport != "sse" && c.Transport != "ws" && c.Transport != "mixed":
		return config{}, fmt.Errorf("-transport %q: want sse, ws or mixed", c.Transport)
	case c.Rate < 0:
		return config{}, errors.New("-rate must not be negative")
	case c.Warmup < 0 || c.Warmup >= c.Duration && c.Rate > 0:
		return config{}, errors.New("-warmup must be shorter than -duration, and not negative")
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	res, err := newLoad(cfg, stderr).run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res)
	return nil
}
