package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/pipeline"
)

// devJWTSecret signs tokens when JWT_SECRET is unset, so that `make run` and
// `stephub token` work together out of the box. serve warns about it.
const devJWTSecret = "stephub-dev-secret-do-not-use-in-production"

// maxPingInterval is the contract's: a stream hears from the server at
// least every 15 s, so that proxies keep it open.
const maxPingInterval = 15 * time.Second

// config is every setting of serve; each flag falls back to its env var.
type config struct {
	Addr              string
	DatabaseURL       string
	JWTSecret         string
	AllowedOrigins    []string
	StepDelay         pipeline.Delay
	Pipeline          string
	WorkerToken       string
	AdminToken        string
	NewUserCredits    int64
	MaxStreamsPerUser int
	Lease             time.Duration
	MaxAttempts       int
	TicketTTL         time.Duration
	LogLevel          string
	DebugAddr         string
	// Broker is how the node hears of the other nodes' events: empty for
	// PostgreSQL's NOTIFY (nothing on SQLite), or nats://HOST:PORT.
	Broker string
	// EventRetention and VideoRetention keep finished videos' events, and
	// the videos themselves, this long; 0 keeps them forever.
	EventRetention, VideoRetention time.Duration
	// PingInterval is the longest a stream goes without a byte.
	PingInterval time.Duration
	// TLSCert and TLSKey are PEM files; when set, serve speaks HTTPS, and
	// with it HTTP/2, which lifts the six-connections-per-origin limit that
	// browsers keep on HTTP/1.1 for front ends that open a stream per tab.
	TLSCert, TLSKey string
}

// flagSet returns a FlagSet whose errors and help go to stderr.
func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("stephub "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// envOr returns the env var's value, or def when it is unset or empty.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// databaseFlag and secretFlag are shared by serve, token and migrate.
func databaseFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	return fs.String("database-url", envOr(getenv, "DATABASE_URL", "sqlite://./data/stephub.db"), "database: sqlite://PATH or postgres://… (env DATABASE_URL)")
}

func secretFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	return fs.String("jwt-secret", getenv("JWT_SECRET"), "HS256 secret of access tokens; a dev secret when empty (env JWT_SECRET)")
}

func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flagSet("serve", stderr)
	var c config
	fs.StringVar(&c.Addr, "addr", envOr(getenv, "ADDR", ":8000"), "listen address (env ADDR)")
	dbURL := databaseFlag(fs, getenv)
	secret := secretFlag(fs, getenv)
	origins := fs.String("allowed-origins", envOr(getenv, "ALLOWED_ORIGINS", "http://localhost:3000,http://localhost:8000"), "comma-separated origins that may call the API from a browser (env ALLOWED_ORIGINS)")
	delay := fs.String("step-delay", envOr(getenv, "STEP_DELAY", "2s-3s"), "mock pipeline pause between steps: a range A-B, one duration, or 0 (env STEP_DELAY)")
	fs.StringVar(&c.Pipeline, "pipeline", envOr(getenv, "PIPELINE", "mock"), "mock (built-in 8 steps) or external (workers post the steps) (env PIPELINE)")
	fs.StringVar(&c.WorkerToken, "worker-token", getenv("WORKER_TOKEN"), "bearer token of workers; empty shuts the worker routes (env WORKER_TOKEN)")
	fs.StringVar(&c.AdminToken, "admin-token", getenv("ADMIN_TOKEN"), "bearer token of admins; empty shuts the admin routes (env ADMIN_TOKEN)")
	credits := fs.String("new-user-credits", envOr(getenv, "NEW_USER_CREDITS", "1000"), "credits of a new user (env NEW_USER_CREDITS)")
	streams := fs.String("max-streams-per-user", envOr(getenv, "MAX_STREAMS_PER_USER", "50"), "concurrent streams per user on this node; 0 = no cap (env MAX_STREAMS_PER_USER)")
	lease := fs.String("lease", envOr(getenv, "LEASE", "30s"), "how long a claimed video may go without a worker post (env LEASE)")
	attempts := fs.String("max-attempts", envOr(getenv, "MAX_ATTEMPTS", "3"), "claims per video before it fails (env MAX_ATTEMPTS)")
	ticketTTL := fs.String("ticket-ttl", envOr(getenv, "TICKET_TTL", "10m"), "how long a watch ticket lets its holder stream one video (env TICKET_TTL)")
	eventRetention := fs.String("event-retention", envOr(getenv, "EVENT_RETENTION", "0"), "delete the events of videos finished longer ago than this, e.g. 30d or 720h; 0 keeps them (env EVENT_RETENTION)")
	videoRetention := fs.String("video-retention", envOr(getenv, "VIDEO_RETENTION", "0"), "delete videos finished longer ago than this, with their events, e.g. 365d; 0 keeps them (env VIDEO_RETENTION)")
	ping := fs.String("ping-interval", envOr(getenv, "PING_INTERVAL", "15s"), "the longest a stream goes silent before a heartbeat, at most 15s (env PING_INTERVAL)")
	fs.StringVar(&c.LogLevel, "log-level", envOr(getenv, "LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fs.StringVar(&c.TLSCert, "tls-cert", getenv("TLS_CERT"), "PEM certificate (chain) file: serve HTTPS and HTTP/2; needs -tls-key (env TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", getenv("TLS_KEY"), "PEM private key file of -tls-cert (env TLS_KEY)")
	fs.StringVar(&c.Broker, "broker", getenv("BROKER"), "how nodes on one PostgreSQL hear of each other's events: empty for PostgreSQL's NOTIFY, or nats://HOST:PORT[?subject=S] (env BROKER)")
	fs.StringVar(&c.DebugAddr, "debug-addr", getenv("DEBUG_ADDR"), "if set, serve Go's /debug/pprof on this address, e.g. 127.0.0.1:6060; keep it private (env DEBUG_ADDR)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}

	var err error
	c.DatabaseURL, c.JWTSecret = *dbURL, *secret
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	if c.StepDelay, err = pipeline.ParseDelay(*delay); err != nil {
		return config{}, fmt.Errorf("-step-delay: %w", err)
	}
	if c.Pipeline != "mock" && c.Pipeline != "external" {
		return config{}, fmt.Errorf("-pipeline: %q is neither mock nor external", c.Pipeline)
	}
	if c.NewUserCredits, err = strconv.ParseInt(*credits, 10, 64); err != nil || c.NewUserCredits < 0 || c.NewUserCredits > stephub.MaxCredits {
		return config{}, fmt.Errorf("-new-user-credits: %q is not an integer from 0 to %d", *credits, stephub.MaxCredits)
	}
	if c.MaxStreamsPerUser, err = strconv.Atoi(*streams); err != nil || c.MaxStreamsPerUser < 0 {
		return config{}, fmt.Errorf("-max-streams-per-user: %q is not a non-negative integer", *streams)
	}
	if c.Lease, err = time.ParseDuration(*lease); err != nil || c.Lease <= 0 {
		return config{}, fmt.Errorf("-lease: %q is not a positive duration", *lease)
	}
	if c.MaxAttempts, err = strconv.Atoi(*attempts); err != nil || c.MaxAttempts < 1 {
		return config{}, fmt.Errorf("-max-attempts: %q is not a positive integer", *attempts)
	}
	if c.TicketTTL, err = time.ParseDuration(*ticketTTL); err != nil || c.TicketTTL <= 0 {
		return config{}, fmt.Errorf("-ticket-ttl: %q is not a positive duration", *ticketTTL)
	}
	if c.PingInterval, err = time.ParseDuration(*ping); err != nil || c.PingInterval <= 0 || c.PingInterval > maxPingInterval {
		return config{}, fmt.Errorf("-ping-interval: %q is not a duration above 0 and at most %v", *ping, maxPingInterval)
	}
	if c.EventRetention, err = parseRetention(*eventRetention); err != nil {
		return config{}, fmt.Errorf("-event-retention: %w", err)
	}
	if c.VideoRetention, err = parseRetention(*videoRetention); err != nil {
		return config{}, fmt.Errorf("-video-retention: %w", err)
	}
	if c.Broker != "" && !strings.HasPrefix(c.Broker, "nats://") {
		return config{}, fmt.Errorf("-broker: %q is neither empty (PostgreSQL's NOTIFY) nor nats://HOST:PORT", c.Broker)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return config{}, fmt.Errorf("-tls-cert and -tls-key go together: give both or neither")
	}
	return c, nil
}

// parseRetention reads a retention: a whole number of days ("30d"), a Go
// duration ("720h"), or 0 for none.
func parseRetention(v string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a number of days like 30d, a duration like 720h, or 0", v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > math.MaxInt64/int(24*time.Hour) {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, bad
	}
	return d, nil
}
