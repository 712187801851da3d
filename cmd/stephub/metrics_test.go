package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stephub/stephub/internal/testdb"
)

// contractMetrics are the metrics CONTRACT.md fixes, with their types.
var contractMetrics = map[string]dto.MetricType{
	"stephub_connections_active":            dto.MetricType_GAUGE,
	"stephub_connection_duration_seconds":   dto.MetricType_HISTOGRAM,
	"stephub_reconnects_total":              dto.MetricType_COUNTER,
	"stephub_step_duration_seconds":         dto.MetricType_HISTOGRAM,
	"stephub_events_published_total":        dto.MetricType_COUNTER,
	"stephub_events_delivered_total":        dto.MetricType_COUNTER,
	"stephub_subscriber_drops_total":        dto.MetricType_COUNTER,
	"stephub_jobs_total":                    dto.MetricType_COUNTER,
	"stephub_http_requests_total":           dto.MetricType_COUNTER,
	"stephub_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
}

// readMetrics reads the server's /metrics over HTTP and parses it; it may be
// called from a goroutine.
func readMetrics(s *testServer) (map[string]*dto.MetricFamily, error) {
	client := s.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Get(s.URL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: reading body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d; want 200", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w\n%s", err, body)
	}
	return fams, nil
}

// scrapeMetrics is readMetrics failing the test on error.
func scrapeMetrics(t *testing.T, s *testServer) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := readMetrics(s)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// metricValue sums, over the series of name whose labels include every
// "k=v" of labels, their values: a counter's or gauge's value, a
// histogram's count of observations. It reports whether any series matched.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for _, m := range fams[name].GetMetric() {
		have := make(map[string]bool)
		for _, l := range m.GetLabel() {
			have[l.GetName()+"="+l.GetValue()] = true
		}
		match := true
		for _, l := range labels {
			match = match && have[l]
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, found
}

// want is one expected value of the metrics; labels select the series whose
// values add up to it.
type want struct {
	name   string
	labels []string
	value  float64
}

// mismatches lists the expectations fams does not meet.
func mismatches(fams map[string]*dto.MetricFamily, wants []want) []string {
	var out []string
	for _, w := range wants {
		got, found := metricValue(fams, w.name, w.labels...)
		if !found || got != w.value {
			out = append(out, fmt.Sprintf("%s%v = %v (found: %v); want %v", w.name, w.labels, got, found, w.value))
		}
	}
	return out
}

// waitForMetrics scrapes until every expectation holds, or fails after
// within with those that still do not. Some metrics move just after the
// client sees the effect: a stream is counted closed after its last byte is
// sent.
func waitForMetrics(t *testing.T, s *testServer, within time.Duration, wants []want) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		fams := scrapeMetrics(t, s)
		bad := mismatches(fams, wants)
		if len(bad) == 0 {
			return fams
		}
		if time.Now().After(deadline) {
			t.Errorf("metrics after %v:\n%s", within, strings.Join(bad, "\n"))
			return fams
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// idPath matches a path segment that is a number: a raw path such as
// /api/v1/videos/42 where a route pattern belongs.
var idPath = regexp.MustCompile(`/[0-9]+(/|$)`)

// TestMetricsAtStartup checks that a fresh server exports every contract
// metric, of its type, with its known series at zero, before anything has
// happened: dashboards and alerts see them from the first scrape.
func TestMetricsAtStartup(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	fams := scrapeMetrics(t, s)
	for name, typ := range contractMetrics {
		if f := fams[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: family %v; want a %v", name, f, typ)
		}
	}
	var wants []want
	for _, tr := range []string{"sse", "ws"} {
		l := []string{"transport=" + tr}
		wants = append(wants,
			want{"stephub_connections_active", l, 0}, want{"stephub_connection_duration_seconds", l, 0},
			want{"stephub_reconnects_total", l, 0}, want{"stephub_events_delivered_total", l, 0})
	}
	for _, r := range []string{"slow_consumer", "shutdown", "write_error", "write_timeout", "ping_timeout", "pong_timeout", "protocol_error"} {
		wants = append(wants, want{"stephub_subscriber_drops_total", []string{"reason=" + r}, 0})
	}
	for _, st := range []string{"completed", "failed", "cancelled"} {
		wants = append(wants, want{"stephub_jobs_total", []string{"status=" + st}, 0})
	}
	for step := 1; step <= 8; step++ {
		wants = append(wants, want{"stephub_step_duration_seconds", []string{fmt.Sprintf("step=%d", step)}, 0})
	}
	for _, route := range []string{"/api/v1/videos/generate", "/api/v1/videos/:id", "/api/v1/videos/:id/stream", "/api/v1/videos/:id/ws", "/readyz"} {
		wants = append(wants,
			want{"stephub_http_requests_total", []string{"route=" + route}, 0},
			want{"stephub_http_request_duration_seconds", []string{"route=" + route}, 0})
	}
	wants = append(wants, want{"stephub_events_published_total", nil, 0})
	for _, kind := range []string{"events", "videos"} {
		wants = append(wants, want{"stephub_retention_deleted_total", []string{"kind=" + kind}, 0})
	}
	if bad := mismatches(fams, wants); len(bad) > 0 {
		t.Errorf("at start-up:\n%s", strings.Join(bad, "\n"))
	}
}

// TestMetricsAfterJobs runs mock jobs through the server, watches them over
// SSE and WebSocket, resuming with a Last-Event-ID header, query and
// WebSocket query, and then checks every contract metric over HTTP: present,
// of its type, and moved by exactly what happened.
func TestMetricsAfterJobs(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, nil)
		token := userToken(t, "metered")

		const jobs = 3
		var ids []int64
		for range jobs {
			v := generate(t, s, token)
			checkComplete(t, "stream", openStream(t, s, token, v.ID, "").readAll(t))
			ids = append(ids, v.ID)
		}

		// An EventSource reconnecting sends the header...
		if got := openStream(t, s, token, ids[0], "4").readAll(t); len(got) != 5 {
			t.Errorf("resumed after 4 (header): %d events; want 5", len(got))
		}
		// ...a client that cannot set headers, the query.
		resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d/stream?token=%s&last_event_id=6", s.URL, ids[1], token), "", nil, nil)
		// Every event's "id:" line follows the blank line that ends the
		// retry hint or the event before it.
		if n := strings.Count(string(body), "\nid: "); resp.StatusCode != http.StatusOK || n != 3 {
			t.Errorf("resumed after 6 (query): status %d, %d events; want 200, 3", resp.StatusCode, n)
		}
		// And a WebSocket resumes with the query too.
		conn, _, err := dialWS(t, s, token, ids[2], "&last_event_id=7", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		frames, _ := readWS(t, conn)
		conn.Close()
		if len(frames) != 2 {
			t.Errorf("WebSocket resumed after 7: %d events; want 2", len(frames))
		}

		const sseStreams = jobs + 2
		wants := []want{
			{"stephub_connections_active", []string{"transport=sse"}, 0},
			{"stephub_connections_active", []string{"transport=ws"}, 0},
			{"stephub_connection_duration_seconds", []string{"transport=sse"}, sseStreams},
			{"stephub_connection_duration_seconds", []string{"transport=ws"}, 1},
			{"stephub_reconnects_total", []string{"transport=sse"}, 2},
			{"stephub_reconnects_total", []string{"transport=ws"}, 1},
			{"stephub_events_published_total", nil, 9 * jobs},
			{"stephub_events_delivered_total", []string{"transport=sse"}, 9*jobs + 5 + 3},
			{"stephub_events_delivered_total", []string{"transport=ws"}, 2},
			{"stephub_subscriber_drops_total", nil, 0},
			{"stephub_jobs_total", []string{"status=completed"}, jobs},
			{"stephub_jobs_total", []string{"status=failed"}, 0},
			{"stephub_jobs_total", []string{"status=cancelled"}, 0},
			// Steps 1..8 each finish once per completed job; the
			// terminal step 9 is not a step that ran.
			{"stephub_step_duration_seconds", nil, 8 * jobs},
			{"stephub_http_requests_total", []string{"route=/api/v1/videos/generate", "code=201"}, jobs},
			{"stephub_http_requests_total", []string{"route=/api/v1/videos/:id/stream"}, sseStreams},
			{"stephub_http_request_duration_seconds", []string{"route=/api/v1/videos/:id/stream"}, sseStreams},
			// A stream takes its connection over, and still counts as
			// the 200 its client got.
			{"stephub_http_requests_total", []string{"route=/api/v1/videos/:id/stream", "code=200"}, sseStreams},
			{"stephub_http_requests_total", []string{"route=/api/v1/videos/:id/ws"}, 1},
		}
		for step := 1; step <= 8; step++ {
			wants = append(wants, want{"stephub_step_duration_seconds", []string{fmt.Sprintf("step=%d", step)}, jobs})
		}
		fams := waitForMetrics(t, s, 5*time.Second, wants)

		for name, typ := range contractMetrics {
			f := fams[name]
			switch {
			case f == nil:
				t.Errorf("%s: not exported", name)
			case f.GetType() != typ:
				t.Errorf("%s: type %v; want %v", name, f.GetType(), typ)
			}
		}
		if _, found := metricValue(fams, "stephub_step_duration_seconds", "step=9"); found {
			t.Errorf("stephub_step_duration_seconds{step=9} exists; want no series for the terminal step")
		}
		// Step durations are real: with STEP_DELAY=0 each step takes
		// the time of a database transaction, never more than seconds.
		for _, m := range fams["stephub_step_duration_seconds"].GetMetric() {
			h := m.GetHistogram()
			if sum := h.GetSampleSum(); h.GetSampleCount() > 0 && (sum <= 0 || sum/float64(h.GetSampleCount()) > 5) {
				t.Errorf("step durations %v: sum %vs over %d; want a positive mean below 5s", m.GetLabel(), sum, h.GetSampleCount())
			}
		}

		// Labels stay bounded and carry no secret: route patterns, never a
		// raw path with an id, a query or a token.
		for name, f := range fams {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					v := l.GetValue()
					if idPath.MatchString(v) || strings.ContainsAny(v, "?&") || strings.Contains(strings.ToLower(v), "token") || strings.Contains(v, token) {
						t.Errorf("%s{%s=%q}: want a bounded label without ids, queries or tokens", name, l.GetName(), v)
					}
				}
			}
		}
	})
}

// TestMetricsWorkerSteps checks that worker-posted jobs are timed as mock
// ones are: one observation per step moved past, none for a job's
// unfinished step.
func TestMetricsWorkerSteps(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, url string) {
		s := startServer(t, url, map[string]string{"PIPELINE": "external"})
		token := userToken(t, "worked")

		done := generate(t, s, token)
		postWorkerJob(t, s, done.ID, 0, 1, stephubSteps)
		failing := generate(t, s, token)
		postWorkerJob(t, s, failing.ID, 0, 1, 3)
		postWorkerStep(t, s, failing.ID, `{"step": 3, "message": "💥", "progress": 33, "status": "failed", "error": "the model refused"}`)

		wants := []want{
			{"stephub_jobs_total", []string{"status=completed"}, 1},
			{"stephub_jobs_total", []string{"status=failed"}, 1},
			{"stephub_events_published_total", nil, 9 + 3 + 1},
			// The failed job finished steps 1 and 2, not 3.
			{"stephub_step_duration_seconds", []string{"step=1"}, 2},
			{"stephub_step_duration_seconds", []string{"step=2"}, 2},
			{"stephub_step_duration_seconds", []string{"step=3"}, 1},
			{"stephub_step_duration_seconds", nil, 8 + 2},
		}
		if bad := mismatches(scrapeMetrics(t, s), wants); len(bad) > 0 {
			t.Errorf("metrics:\n%s", strings.Join(bad, "\n"))
		}
	})
}

// TestFirstConnectionIsNoReconnect opens streams that start from the
// beginning while saying Last-Event-ID 0, in each way a client can (the
// WebSocket snippet of docs/streaming.md sends last_event_id=0 on its first
// connection): none counts as a reconnect. Resuming after event 3 does.
func TestFirstConnectionIsNoReconnect(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	token := userToken(t, "first")
	v := generate(t, s, token)
	checkComplete(t, "no Last-Event-ID", openStream(t, s, token, v.ID, "").readAll(t))
	checkComplete(t, "Last-Event-ID: 0", openStream(t, s, token, v.ID, "0").readAll(t))
	checkComplete(t, "last_event_id=0", openSSE(t, streamURL(s, v.ID, "?token="+token+"&last_event_id=0"), "", nil).readAll(t))
	for _, query := range []string{"&last_event_id=0", "&last_event_id=3"} {
		conn, _, err := dialWS(t, s, token, v.ID, query, nil)
		if err != nil {
			t.Fatalf("dial with %s: %v", query, err)
		}
		readWS(t, conn)
		conn.Close()
	}
	waitForMetrics(t, s, 5*time.Second, []want{
		{"stephub_connection_duration_seconds", []string{"transport=sse"}, 3},
		{"stephub_connection_duration_seconds", []string{"transport=ws"}, 2},
		{"stephub_reconnects_total", []string{"transport=sse"}, 0},
		{"stephub_reconnects_total", []string{"transport=ws"}, 1},
	})
}
