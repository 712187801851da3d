package metrics

import (
	"strconv"
	"time"
)

// Route creates route's HTTP series with code "200" at zero, so the route
// is visible before its first request. Call it once per route where routes
// are registered, with the pattern (say "/api/v1/videos/:id"), never the
// request path, which would make one series per video.
func (m *Metrics) Route(route string) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, "200")
	m.httpDuration.WithLabelValues(route, "200")
}

// ObserveRequest records one request to route answered with status after d,
// Pair it with Route at registration time.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	code := strconv.Itoa(status)
	m.httpRequests.WithLabelValues(route, code).Inc()
	m.httpDuration.WithLabelValues(route, code).Observe(d.Seconds())
}
