package metrics_test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/metrics"
)

// newServer returns fresh Metrics on their own registry, and a real HTTP
// server scraping them.
func newServer(t *testing.T) (*metrics.Metrics, *httptest.Server) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return m, srv
}

// scrape fetches srv's exposition and returns it raw and parsed.
func scrape(t *testing.T, srv *httptest.Server) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status: got %d; want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape Content-Type: got %q; want text/plain", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read scrape: %v", err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse scrape: %v\n%s", err, body)
	}
	return string(body), fams
}

// find returns the series of family name whose labels are exactly labels
// (given as "k=v" pairs), or nil.
func find(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		have := make(map[string]bool, len(labels))
		for _, l := range m.GetLabel() {
			have[l.GetName()+"="+l.GetValue()] = true
		}
		match := true
		for _, l := range labels {
			match = match && have[l]
		}
		if match {
			return m
		}
	}
	return nil
}

// value returns a counter's or gauge's value, or a histogram's sample
// count, failing the test when the series is missing.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := find(fams, name, labels...)
	if m == nil {
		t.Fatalf("%s%v: series missing", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("%s%v: unexpected metric kind", name, labels)
	return 0
}

// series is one expected series: a name and its labels. Types are
// checked by name, in TestStartupExposesEveryMetric.
type series struct {
	name   string
	labels []string
}

// knownSeries lists every series the contract wants present at start-up.
func knownSeries() []series {
	var s []series
	for _, tr := range []string{"sse", "ws"} {
		l := []string{"transport=" + tr}
		s = append(s,
			series{"stephub_connections_active", l},
			series{"stephub_connection_duration_seconds", l},
			series{"stephub_reconnects_total", l},
			series{"stephub_events_delivered_total", l},
		)
	}
	for step := 1; step <= stephub.TotalSteps; step++ {
		s = append(s, series{"stephub_step_duration_seconds", []string{fmt.Sprintf("step=%d", step)}})
	}
	s = append(s, series{"stephub_events_published_total", nil})
	for _, r := range []string{"slow_consumer", "shutdown", "write_error", "write_timeout", "ping_timeout", "pong_timeout", "protocol_error"} {
		s = append(s, series{"stephub_subscriber_drops_total", []string{"reason=" + r}})
	}
	for _, st := range []string{"completed", "failed", "cancelled"} {
		s = append(s, series{"stephub_jobs_total", []string{"status=" + st}})
	}
	for _, k := range []string{"events", "videos"} {
		s = append(s, series{"stephub_retention_deleted_total", []string{"kind=" + k}})
	}
	return s
}

// brokerMetrics are the counters of a BrokerSeries, by engine.
var brokerMetrics = []string{
	"stephub_broker_notices_total", "stephub_broker_dropped_total", "stephub_broker_reconnects_total",
	"stephub_broker_catchup_reads_total", "stephub_broker_gap_events_total", "stephub_broker_payload_events_total",
}

// TestBrokerSeries: each method moves its own engine's counter, and only
// it.
func TestBrokerSeries(t *testing.T) {
	m, srv := newServer(t)
	b := m.Broker("nats")
	m.Broker("postgres")
	b.NoticeHeard()
	b.NoticeHeard()
	b.NoticeDropped()
	b.Reconnected()
	b.CatchUpRead()
	b.GapFilled(5)
	b.GapFilled(0)
	b.PayloadPublished()
	_, fams := scrape(t, srv)
	want := map[string]float64{
		"stephub_broker_notices_total": 2, "stephub_broker_dropped_total": 1, "stephub_broker_reconnects_total": 1,
		"stephub_broker_catchup_reads_total": 1, "stephub_broker_gap_events_total": 5, "stephub_broker_payload_events_total": 1,
	}
	for name, w := range want {
		if got := value(t, fams, name, "engine=nats"); got != w {
			t.Errorf("%s{engine=nats} = %v; want %v", name, got, w)
		}
		if got := value(t, fams, name, "engine=postgres"); got != 0 {
			t.Errorf("%s{engine=postgres} = %v; want 0", name, got)
		}
	}
	var none *metrics.BrokerSeries
	none.NoticeHeard() // must not panic
	if (*metrics.Metrics)(nil).Broker("nats") != nil {
		t.Error("a nil Metrics gave a BrokerSeries")
	}
}

func TestStartupExposesEveryMetric(t *testing.T) {
	m, srv := newServer(t)
	// As the API does while building its router: the HTTP metrics have
	// series, hence a TYPE line, once a route is instrumented.
	m.Route("/metrics")
	// As serve does on a node with a broker: its engine's series exist.
	m.Broker("postgres")
	raw, fams := scrape(t, srv)

	types := map[string]string{
		"stephub_connections_active":            "gauge",
		"stephub_connection_duration_seconds":   "histogram",
		"stephub_reconnects_total":              "counter",
		"stephub_step_duration_seconds":         "histogram",
		"stephub_events_published_total":        "counter",
		"stephub_events_delivered_total":        "counter",
		"stephub_subscriber_drops_total":        "counter",
		"stephub_jobs_total":                    "counter",
		"stephub_http_requests_total":           "counter",
		"stephub_http_request_duration_seconds": "histogram",
		"stephub_retention_deleted_total":       "counter",
	}
	for _, name := range brokerMetrics {
		types[name] = "counter"
	}
	for name, typ := range types {
		if want := "# TYPE " + name + " " + typ + "\n"; !strings.Contains(raw, want) {
			t.Errorf("scrape lacks %q", strings.TrimSpace(want))
		}
	}
	for _, name := range []string{"stephub_http_requests_total", "stephub_http_request_duration_seconds"} {
		if got := value(t, fams, name, "route=/metrics", "code=200"); got != 0 {
			t.Errorf("%s{route=/metrics,code=200} at start: got %v; want 0", name, got)
		}
	}
	for _, s := range knownSeries() {
		if got := value(t, fams, s.name, s.labels...); got != 0 {
			t.Errorf("%s%v at start: got %v; want 0", s.name, s.labels, got)
		}
	}
	for _, name := range brokerMetrics {
		if got := value(t, fams, name, "engine=postgres"); got != 0 {
			t.Errorf("%s{engine=postgres} at start: got %v; want 0", name, got)
		}
	}
	// The terminal step never runs, so it has no duration series.
	if find(fams, "stephub_step_duration_seconds", "step=9") != nil {
		t.Errorf("stephub_step_duration_seconds{step=9} exists; want no series for the terminal step")
	}
	// The runtime and process collectors are registered too.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

// TestBuckets checks that each histogram's buckets span what it measures:
// streams from seconds to hours, steps from milliseconds to many minutes,
// HTTP requests from under a millisecond.
func TestBuckets(t *testing.T) {
	m, srv := newServer(t)
	m.Route("/metrics")
	_, fams := scrape(t, srv)
	tests := []struct {
		name     string
		labels   []string
		low, top float64 // the first bucket at most low, the last finite one at least top
	}{
		{"stephub_connection_duration_seconds", []string{"transport=sse"}, 1, 4 * 3600},
		{"stephub_step_duration_seconds", []string{"step=1"}, 0.001, 30 * 60},
		{"stephub_http_request_duration_seconds", []string{"route=/metrics", "code=200"}, 0.0005, 5},
	}
	for _, tt := range tests {
		m := find(fams, tt.name, tt.labels...)
		if m == nil {
			t.Fatalf("%s%v: series missing", tt.name, tt.labels)
		}
		b := m.GetHistogram().GetBucket()
		if math.IsInf(b[len(b)-1].GetUpperBound(), 1) {
			b = b[:len(b)-1]
		}
		if first, last := b[0].GetUpperBound(), b[len(b)-1].GetUpperBound(); first > tt.low || last < tt.top {
			t.Errorf("%s buckets: got %v..%v; want from at most %v to at least %v", tt.name, first, last, tt.low, tt.top)
		}
	}
}

func TestMethodsMoveValues(t *testing.T) {
	m, srv := newServer(t)

	m.EventPublished()
	m.EventPublished()
	m.Delivered("sse", 3)
	m.Delivered("ws", 2)
	m.Delivered("ws", 0)  // nothing
	m.Delivered("ws", -1) // nothing, and no panic
	m.SubscriberDropped("slow_consumer")
	m.SubscriberDropped("shutdown")
	m.SubscriberDropped("shutdown")
	m.StreamOpened("sse", false)
	m.StreamOpened("sse", true)
	m.StreamOpened("ws", true)
	m.StreamClosed("sse", 2*time.Second)
	m.StepDuration(1, 10*time.Millisecond)
	m.StepDuration(8, 3*time.Second)
	m.StepDuration(8, 3*time.Second)
	m.StepDuration(9, time.Second) // the terminal step never runs
	m.StepDuration(42, time.Second)
	m.JobFinished("completed")
	m.JobFinished("cancelled")
	m.RetentionDeleted("events", 9)
	m.RetentionDeleted("events", 0) // nothing
	m.RetentionDeleted("videos", 1)

	_, fams := scrape(t, srv)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"stephub_events_published_total", nil, 2},
		{"stephub_events_delivered_total", []string{"transport=sse"}, 3},
		{"stephub_events_delivered_total", []string{"transport=ws"}, 2},
		{"stephub_subscriber_drops_total", []string{"reason=slow_consumer"}, 1},
		{"stephub_subscriber_drops_total", []string{"reason=shutdown"}, 2},
		{"stephub_subscriber_drops_total", []string{"reason=write_error"}, 0},
		{"stephub_connections_active", []string{"transport=sse"}, 1},
		{"stephub_connections_active", []string{"transport=ws"}, 1},
		{"stephub_reconnects_total", []string{"transport=sse"}, 1},
		{"stephub_reconnects_total", []string{"transport=ws"}, 1},
		{"stephub_connection_duration_seconds", []string{"transport=sse"}, 1},
		{"stephub_connection_duration_seconds", []string{"transport=ws"}, 0},
		{"stephub_step_duration_seconds", []string{"step=1"}, 1},
		{"stephub_step_duration_seconds", []string{"step=2"}, 0},
		{"stephub_step_duration_seconds", []string{"step=8"}, 2},
		{"stephub_step_duration_seconds", []string{"step=other"}, 2},
		{"stephub_jobs_total", []string{"status=completed"}, 1},
		{"stephub_jobs_total", []string{"status=failed"}, 0},
		{"stephub_jobs_total", []string{"status=cancelled"}, 1},
		{"stephub_retention_deleted_total", []string{"kind=events"}, 9},
		{"stephub_retention_deleted_total", []string{"kind=videos"}, 1},
	}
	for _, tt := range tests {
		if got := value(t, fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v: got %v; want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	if got := find(fams, "stephub_connection_duration_seconds", "transport=sse").GetHistogram().GetSampleSum(); got != 2 {
		t.Errorf("connection duration sum: got %v; want 2", got)
	}
	// 3 s falls in the le="3" bucket of step 8; both observations are there.
	for _, b := range find(fams, "stephub_step_duration_seconds", "step=8").GetHistogram().GetBucket() {
		if b.GetUpperBound() == 3 && b.GetCumulativeCount() != 2 {
			t.Errorf("step 8 le=3 bucket: got %d; want 2", b.GetCumulativeCount())
		}
	}
}

func TestRouteAndObserveRequest(t *testing.T) {
	m, srv := newServer(t)
	m.Route("/api/v1/videos")
	_, fams := scrape(t, srv)
	if got := value(t, fams, "stephub_http_requests_total", "route=/api/v1/videos", "code=200"); got != 0 {
		t.Errorf("after Route: got %v; want 0", got)
	}

	m.ObserveRequest("/api/v1/videos", http.StatusUnprocessableEntity, 30*time.Millisecond)
	m.ObserveRequest("/api/v1/videos", http.StatusOK, time.Millisecond)
	_, fams = scrape(t, srv)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"stephub_http_requests_total", []string{"route=/api/v1/videos", "code=200"}, 1},
		{"stephub_http_requests_total", []string{"route=/api/v1/videos", "code=422"}, 1},
		{"stephub_http_request_duration_seconds", []string{"route=/api/v1/videos", "code=422"}, 1},
	}
	for _, tt := range tests {
		if got := value(t, fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v: got %v; want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}

func TestTwoInstancesSideBySide(t *testing.T) {
	a, srvA := newServer(t)
	b, srvB := newServer(t)

	a.EventPublished()
	b.EventPublished()
	b.EventPublished()

	_, famsA := scrape(t, srvA)
	_, famsB := scrape(t, srvB)
	if got := value(t, famsA, "stephub_events_published_total"); got != 1 {
		t.Errorf("first registry: got %v; want 1", got)
	}
	if got := value(t, famsB, "stephub_events_published_total"); got != 2 {
		t.Errorf("second registry: got %v; want 2", got)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	calls := map[string]func(){
		"EventPublished":    func() { m.EventPublished() },
		"Delivered":         func() { m.Delivered("ws", 1) },
		"StreamOpened":      func() { m.StreamOpened("sse", true) },
		"StreamClosed":      func() { m.StreamClosed("sse", time.Second) },
		"StepDuration":      func() { m.StepDuration(3, time.Second) },
		"SubscriberDropped": func() { m.SubscriberDropped("slow_consumer") },
		"JobFinished":       func() { m.JobFinished("failed") },
	}
	for name, f := range calls {
		if got := testing.AllocsPerRun(100, f); got != 0 {
			t.Errorf("%s: got %v allocations per call; want 0", name, got)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	m, srv := newServer(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				m.EventPublished()
				m.Delivered("sse", 1)
				m.StreamOpened("ws", false)
				m.StreamClosed("ws", time.Millisecond)
			}
		})
	}
	wg.Wait()
	_, fams := scrape(t, srv)
	if got := value(t, fams, "stephub_events_delivered_total", "transport=sse"); got != 8000 {
		t.Errorf("delivered: got %v; want 8000", got)
	}
	if got := value(t, fams, "stephub_connections_active", "transport=ws"); got != 0 {
		t.Errorf("active after balanced open/close: got %v; want 0", got)
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.EventPublished()
	m.Delivered("sse", 1)
	m.SubscriberDropped("shutdown")
	m.StreamOpened("sse", true)
	m.StreamClosed("sse", time.Second)
	m.StepDuration(1, time.Second)
	m.JobFinished("completed")
	m.RetentionDeleted("events", 1)
	m.Route("/x")
	m.ObserveRequest("/x", 200, time.Second) // none of these may panic
}
