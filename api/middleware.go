package api

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type routeKey struct{}

// routeOf returns the pattern of the route serving r, or "unmatched".
func routeOf(r *http.Request) string {
	if route, ok := r.Context().Value(routeKey{}).(string); ok {
		return route
	}
	return "unmatched"
}

// observe wraps a route's handler: it remembers the route pattern for
// routeOf, and when the request is done logs one line and records its metrics
// by pattern, never by raw path, which would carry ids and tokens.
func (s *Server) observe(route string, h http.Handler) http.Handler {
	// Wrapping happens while the router is built, so the route's series
	// are exported from the first scrape, as the contract wants.
	s.Metrics.Route(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, hijacked: http.StatusOK}
		if r.Header.Get("Upgrade") != "" {
			rec.hijacked = http.StatusSwitchingProtocols
		}
		h.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, route)))
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		d := time.Since(start)
		s.Metrics.ObserveRequest(route, rec.status, d)
		s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", rec.status),
			// Seconds as a number, which log queries can compare and
			// sum; slog.Duration would write nanoseconds.
			slog.Float64("duration_s", d.Seconds()),
		)
	})
}

// statusRecorder notes the status a handler sends. Unwrap lets
// http.ResponseController reach the connection beneath, for flushes,
// deadlines and WebSocket hijacks.
type statusRecorder struct {
	http.ResponseWriter
	status int
	// hijacked is the status a taken-over connection answers: 101 for a
	// protocol upgrade, 200 for a stream that writes its own head.
	hijacked int
}

func (rec *statusRecorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *statusRecorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.ResponseWriter.Write(b)
}

func (rec *statusRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// Hijack hands the connection to a WebSocket upgrader, which asks for an
// http.Hijacker directly rather than through http.ResponseController.
func (rec *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil && rec.status == 0 {
		rec.status = rec.hijacked
	}
	return conn, rw, err
}

// corsHeaders are what browsers may send across origins: the token, JSON
// bodies, SSE resumption and idempotent retries.
var corsHeaders = strings.Join([]string{"Authorization", "Content-Type", "Last-Event-ID", "Idempotency-Key"}, ", ")

// preflightMaxAge lets browsers cache a preflight answer for 10 minutes.
var preflightMaxAge = strconv.Itoa(int((10 * time.Minute).Seconds()))

// cors lets the pages of allowed origins call the API, streams included, and
// answers their preflights. Other origins get no CORS headers, so browsers
// keep their scripts out.
func cors(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		ok := origin != "" && slices.Contains(allowed, origin)
		if origin != "" {
			w.Header().Add("Vary", "Origin")
		}
		if ok {
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if ok {
				h := w.Header()
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", corsHeaders)
				h.Set("Access-Control-Max-Age", preflightMaxAge)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
