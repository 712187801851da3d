package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stephub/stephub/api"
	"github.com/stephub/stephub/auth"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/jobs"
	"github.com/stephub/stephub/metrics"
	"github.com/stephub/stephub/storage"
	"github.com/stephub/stephub/transport"
	"github.com/stephub/stephub/web"
	"github.com/stephub/stephub/web/docs"
)

// Server timeouts. There is no overall write timeout: streams run for as
// long as their job, and the transport sets a deadline around each write
// that waits instead.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	// shutdownTimeout bounds the wait for requests in flight at shutdown.
	shutdownTimeout = 10 * time.Second
	// An HTTP/2 connection that sent nothing for h2PingAfter is pinged,
	// and closed if the ping is not answered within h2PingTimeout; one
	// that takes no byte of a pending write for h2WriteTimeout is closed.
	// That is how a dead HTTP/2 peer of an idle stream is noticed.
	h2PingAfter    = 30 * time.Second
	h2PingTimeout  = 15 * time.Second
	h2WriteTimeout = transport.DefaultWriteTimeout
)

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	devMode := cfg.JWTSecret == ""
	if devMode {
		logger.Warn("JWT_SECRET is not set: using the development secret; set it before exposing this server")
		cfg.JWTSecret = devJWTSecret
	}
	signer, err := auth.NewSigner(cfg.JWTSecret)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("-tls-cert, -tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}

	store, err := storage.Open(ctx, cfg.DatabaseURL, storage.WithLease(cfg.Lease))
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}

	broker, engine, closeBroker, err := openBroker(cfg.Broker, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	defer closeBroker()

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	h := hub.New(hub.Options{History: store, Observer: m})
	var clusterObserver jobs.ClusterObserver
	if broker != nil {
		clusterObserver = m.Broker(engine)
	}
	svc := jobs.New(jobs.Options{
		Store:           store,
		Publisher:       h,
		Observer:        m,
		Broker:          broker,
		ClusterObserver: clusterObserver,
		Logger:          logger,
		Mock:            cfg.Pipeline == "mock",
		StepDelay:       cfg.StepDelay,
		Lease:           cfg.Lease,
		MaxAttempts:     cfg.MaxAttempts,
		EventRetention:  cfg.EventRetention,
		VideoRetention:  cfg.VideoRetention,
	})
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer svc.Close()

	handler := api.NewServer(api.Config{
		AllowedOrigins:    cfg.AllowedOrigins,
		NewUserCredits:    cfg.NewUserCredits,
		WorkerToken:       cfg.WorkerToken,
		AdminToken:        cfg.AdminToken,
		MaxStreamsPerUser: cfg.MaxStreamsPerUser,
		TicketTTL:         cfg.TicketTTL,
		Stream:            transport.Config{PingInterval: cfg.PingInterval},
	}, api.Deps{Logger: logger, Store: store, Jobs: svc, Hub: h, Signer: signer, Metrics: m, Static: web.Handler(), Docs: docs.Handler()})

	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout:  h2PingAfter,
			PingTimeout:      h2PingTimeout,
			WriteByteTimeout: h2WriteTimeout,
		},
	}
	// Streams end only when the hub lets them go, so Shutdown closes it.
	srv.RegisterOnShutdown(h.Close)
	if devMode {
		if err := printSignInLink(stdout, signer, ln.Addr().String(), tlsConfig != nil); err != nil {
			ln.Close()
			return err
		}
	}
	logger.Info("listening", "addr", ln.Addr().String(), "database", store.Dialect(), "broker", engine, "pipeline", cfg.Pipeline, "version", version)

	// SSE connections that end cleanly come back through the listener,
	// to serve their client's next request.
	ln = handler.Listen(ln)
	srv.ConnState = handler.ConnState
	served := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			// ServeTLS turns HTTP/2 on by itself.
			served <- srv.ServeTLS(ln, "", "")
			return
		}
		served <- srv.Serve(ln)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = errors.Join(srv.Shutdown(shutdownCtx), handler.Wait(shutdownCtx))
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// The user that the sign-in link of dev mode signs in: the README's curl
// walkthrough uses the same, so its videos show on the dashboard.
const (
	devUser     = "demo"
	devEmail    = "demo@example.com"
	devTokenTTL = 24 * time.Hour
)

// printSignInLink prints a link that signs a browser in to the dashboard as
// devUser. It goes to stdout and never to the log: the token in it is a
// credential, and logs travel further than a terminal.
func printSignInLink(w io.Writer, signer *auth.Signer, addr string, https bool) error {
	token, err := signer.Issue(devUser, devEmail, devTokenTTL)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "Sign in: %s\n", signInURL(addr, https, token))
	return err
}

// signInURL is the dashboard's address on the listener addr with token in
// the query. A listener on every interface (":8000") is reached as
// localhost.
func signInURL(addr string, https bool, token string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	u := url.URL{Scheme: "http", Host: host, Path: "/", RawQuery: url.Values{"token": {token}}.Encode()}
	if https {
		u.Scheme = "https"
	}
	return u.String()
}

// newLogger logs JSON, or text when stderr is a terminal.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// serveDebug serves the runtime profiles on their own listener, apart from
// the API, so that they are never exposed by accident with it. The returned
// func stops it.
func serveDebug(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	logger.Info("serving profiles", "addr", ln.Addr().String())
	return func() {
		srv.Close()
		<-done
	}, nil
}
