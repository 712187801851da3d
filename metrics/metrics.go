// Package metrics exports stephub's Prometheus metrics: the names the
// contract fixes, on a registry the caller owns, behind methods that take
// basic types so that the packages reporting to it need not import
// Prometheus.
//
// Every metric is registered, with its known label values at zero, by New
// (and the HTTP metrics by Route, one route at a time),
// so dashboards and alerts see each series from start-up rather than from
// the first event that happens to touch it.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stephub/stephub"
)

// The label values the rest of stephub passes in. They are spelled out here
// because New pre-creates a series for each of them.
const (
	TransportSSE       = "sse"
	TransportWebSocket = "ws"

	DropSlowConsumer  = "slow_consumer"  // the hub's queue for it filled up
	DropShutdown      = "shutdown"       // the server is shutting down
	DropWriteError    = "write_error"    // the connection broke under a write
	DropWriteTimeout  = "write_timeout"  // the peer took no events within the write timeout
	DropPingTimeout   = "ping_timeout"   // the peer of an idle stream took no heartbeat
	DropPongTimeout   = "pong_timeout"   // a WebSocket peer answered no ping
	DropProtocolError = "protocol_error" // a WebSocket peer broke the protocol

	JobCompleted = "completed"
	JobFailed    = "failed"
	JobCancelled = "cancelled"

	RetainedEvents = "events" // events deleted by retention, with their video or alone
	RetainedVideos = "videos" // finished videos deleted by retention
)

// maxStep is the last working step of a job; the terminal event's step
// (maxStep+1) is not a step that runs, so it has no duration.
const maxStep = stephub.TotalSteps

// otherStep is the step label of any step outside 1..maxStep. Steps can come
// from external workers; folding the unexpected ones into one series keeps
// the label bounded whatever a worker posts.
const otherStep = "other"

// transportSeries holds one transport's children, looked up once in New so
// that the per-event paths neither allocate nor hash label values.
type transportSeries struct {
	active     prometheus.Gauge
	duration   prometheus.Observer
	reconnects prometheus.Counter
	delivered  prometheus.Counter
}

// Metrics records what stephub does. Its methods are safe for concurrent use
// and start no goroutines. A nil *Metrics records nothing, so tests and tools
// that do not care about metrics can pass nil.
type Metrics struct {
	handler http.Handler

	connectionsActive  *prometheus.GaugeVec
	connectionDuration *prometheus.HistogramVec
	reconnects         *prometheus.CounterVec
	stepDuration       *prometheus.HistogramVec
	eventsPublished    prometheus.Counter
	eventsDelivered    *prometheus.CounterVec
	drops              *prometheus.CounterVec
	jobs               *prometheus.CounterVec
	httpRequests       *prometheus.CounterVec
	httpDuration       *prometheus.HistogramVec
	retentionDeleted   *prometheus.CounterVec
	brokerNotices      *prometheus.CounterVec
	brokerDropped      *prometheus.CounterVec
	brokerReconnects   *prometheus.CounterVec
	catchUpReads       *prometheus.CounterVec
	gapEvents          *prometheus.CounterVec
	payloadEvents      *prometheus.CounterVec

	// The maps and the array are written only in New and read afterwards,
	// so concurrent reads need no lock.
	transports map[string]transportSeries
	steps      [maxStep + 1]prometheus.Observer // index 0 unused
	dropsBy    map[string]prometheus.Counter
	jobsBy     map[string]prometheus.Counter
	deletedBy  map[string]prometheus.Counter
}

// New registers every stephub metric, the Go runtime collector and the
// process collector on reg, and returns the Metrics that feed them.
//
// It takes a *prometheus.Registry rather than a prometheus.Registerer because
// Handler must serve exactly what New registered, so it needs the gatherer
// of the same registry; a Registry is both. Never pass
// prometheus.DefaultRegisterer's registry: a process-wide registry would
// make two servers in one test binary collide.
//
// The HTTP metrics are the exception to "present from start-up": their
// route label is only known when Route is called, and a metric
// with no series is not exported at all. Wrapping every route while
// building the router, before serving, makes them present from the first
// scrape.
//
// New panics if reg already holds any of these metrics, as registering
// twice is a programming error.
func New(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		connectionsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stephub_connections_active",
			Help: "Event streams open now, by transport.",
		}, []string{"transport"}),
		connectionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stephub_connection_duration_seconds",
			Help: "How long event streams stayed open, by transport.",
			// From a tab closed at once to one left open on a long job.
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400},
		}, []string{"transport"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_reconnects_total",
			Help: "Event streams opened with a Last-Event-ID above 0, resuming an earlier one, by transport.",
		}, []string{"transport"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stephub_step_duration_seconds",
			Help: "How long each step of a job ran, from its first event to the next step's, by step; jobs that fail or are cancelled do not finish their step.",
			// Mock steps take 2–3 s; real ones from milliseconds
			// (validation) to minutes (the model call, "2-5 minutes").
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"step"}),
		eventsPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stephub_events_published_total",
			Help: "Events stored and broadcast to subscribers.",
		}),
		eventsDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_events_delivered_total",
			Help: "Events written to clients, by transport.",
		}, []string{"transport"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_subscriber_drops_total",
			Help: "Subscribers ended by the server, by reason.",
		}, []string{"reason"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_jobs_total",
			Help: "Jobs that reached a final status, by status.",
		}, []string{"status"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "stephub_http_request_duration_seconds",
			Help: "Time to serve HTTP requests, by route pattern and status code.",
			// API calls take from well under a millisecond (a cached
			// user, one indexed read) to a few seconds (a database
			// failover). How long streams stay open is not a latency:
			// stephub_connection_duration_seconds measures it.
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		retentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_retention_deleted_total",
			Help: "Rows deleted by EVENT_RETENTION and VIDEO_RETENTION, by kind: events (alone or with their video) and videos.",
		}, []string{"kind"}),
		brokerNotices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_broker_notices_total",
			Help: "Notices of events stored by other nodes that this node heard through its broker, by engine.",
		}, []string{"engine"}),
		brokerDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_broker_dropped_total",
			Help: "Messages of the broker that could not be read and were skipped, by engine.",
		}, []string{"engine"}),
		brokerReconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_broker_reconnects_total",
			Help: "Times the node may have missed notices (a reconnect of the broker, a retry after it failed, messages NATS dropped) and caught up every watched video, by engine.",
		}, []string{"engine"}),
		catchUpReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_broker_catchup_reads_total",
			Help: "Reads of the events table to catch a video up with other nodes' events, by engine.",
		}, []string{"engine"}),
		gapEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_broker_gap_events_total",
			Help: "Events of other nodes published from catch-up reads, by engine.",
		}, []string{"engine"}),
		payloadEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stephub_broker_payload_events_total",
			Help: "Events of other nodes published from the broker's notice itself, without reading the database, by engine.",
		}, []string{"engine"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.connectionsActive, m.connectionDuration, m.reconnects,
		m.stepDuration, m.eventsPublished, m.eventsDelivered,
		m.drops, m.jobs, m.httpRequests, m.httpDuration, m.retentionDeleted,
		m.brokerNotices, m.brokerDropped, m.brokerReconnects,
		m.catchUpReads, m.gapEvents, m.payloadEvents,
	)

	// Touching a child creates its series at zero; keeping it saves the
	// label lookup on every later call.
	m.transports = make(map[string]transportSeries, 2)
	for _, t := range []string{TransportSSE, TransportWebSocket} {
		m.transports[t] = m.newTransportSeries(t)
	}
	for step := 1; step <= maxStep; step++ {
		m.steps[step] = m.stepDuration.WithLabelValues(strconv.Itoa(step))
	}
	dropReasons := []string{DropSlowConsumer, DropShutdown, DropWriteError, DropWriteTimeout, DropPingTimeout, DropPongTimeout, DropProtocolError}
	m.dropsBy = make(map[string]prometheus.Counter, len(dropReasons))
	for _, r := range dropReasons {
		m.dropsBy[r] = m.drops.WithLabelValues(r)
	}
	m.jobsBy = make(map[string]prometheus.Counter, 3)
	for _, s := range []string{JobCompleted, JobFailed, JobCancelled} {
		m.jobsBy[s] = m.jobs.WithLabelValues(s)
	}
	m.deletedBy = make(map[string]prometheus.Counter, 2)
	for _, k := range []string{RetainedEvents, RetainedVideos} {
		m.deletedBy[k] = m.retentionDeleted.WithLabelValues(k)
	}

	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// Counts failed scrapes on the same registry, so a broken
		// collector shows up in the next good scrape.
		Registry: reg,
	})
	return m
}

func (m *Metrics) newTransportSeries(transport string) transportSeries {
	return transportSeries{
		active:     m.connectionsActive.WithLabelValues(transport),
		duration:   m.connectionDuration.WithLabelValues(transport),
		reconnects: m.reconnects.WithLabelValues(transport),
		delivered:  m.eventsDelivered.WithLabelValues(transport),
	}
}

// transport returns the children of a transport. A transport New does not
// know still works, at the price of a label lookup per call; callers pass
// the constants, so the set stays bounded.
func (m *Metrics) transport(transport string) transportSeries {
	if s, ok := m.transports[transport]; ok {
		return s
	}
	return m.newTransportSeries(transport)
}

// Handler serves the registry given to New in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// EventPublished counts one event stored and broadcast. It does not allocate.
func (m *Metrics) EventPublished() {
	if m == nil {
		return
	}
	m.eventsPublished.Inc()
}

// Delivered counts n events written to a client over transport. It does not
// allocate for the known transports.
func (m *Metrics) Delivered(transport string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.transport(transport).delivered.Add(float64(n))
}

// SubscriberDropped counts a subscriber the server ended, for reason (one of
// the Drop constants).
func (m *Metrics) SubscriberDropped(reason string) {
	if m == nil {
		return
	}
	if c, ok := m.dropsBy[reason]; ok {
		c.Inc()
		return
	}
	m.drops.WithLabelValues(reason).Inc()
}

// StreamOpened counts a stream that starts over transport; resumed tells that
// the client resumes after an event it saw (a Last-Event-ID above 0), which
// makes it a reconnect. Every call must be paired with one StreamClosed.
func (m *Metrics) StreamOpened(transport string, resumed bool) {
	if m == nil {
		return
	}
	s := m.transport(transport)
	s.active.Inc()
	if resumed {
		s.reconnects.Inc()
	}
}

// StreamClosed records the end of a stream opened by StreamOpened, d after
// it opened.
func (m *Metrics) StreamClosed(transport string, d time.Duration) {
	if m == nil {
		return
	}
	s := m.transport(transport)
	s.active.Dec()
	s.duration.Observe(d.Seconds())
}

// StepDuration records that step ran for d: from the step's first event to
// the first event of the step after it. Steps outside 1..8, which workers
// may post, are recorded under the step label "other". It does not
// allocate for steps 1..8.
func (m *Metrics) StepDuration(step int, d time.Duration) {
	if m == nil {
		return
	}
	if step >= 1 && step <= maxStep {
		m.steps[step].Observe(d.Seconds())
		return
	}
	m.stepDuration.WithLabelValues(otherStep).Observe(d.Seconds())
}

// JobFinished counts a job that reached its final status (one of the Job
// constants). Call it once per job, where the final status is stored.
func (m *Metrics) JobFinished(status string) {
	if m == nil {
		return
	}
	if c, ok := m.jobsBy[status]; ok {
		c.Inc()
		return
	}
	m.jobs.WithLabelValues(status).Inc()
}

// RetentionDeleted counts n rows of kind (RetainedEvents or
// RetainedVideos) that retention deleted.
func (m *Metrics) RetentionDeleted(kind string, n int) {
	if m == nil || n <= 0 {
		return
	}
	if c, ok := m.deletedBy[kind]; ok {
		c.Add(float64(n))
		return
	}
	m.retentionDeleted.WithLabelValues(kind).Add(float64(n))
}

// BrokerSeries counts what one node hears from the others through one
// broker engine; jobs reports to it. A nil *BrokerSeries records nothing.
type BrokerSeries struct {
	notices, dropped, reconnects, catchUpReads, gapEvents, payloadEvents prometheus.Counter
}

// Broker returns the series of an engine, named by its package's Engine
// constant ("postgres" for pgnotify, "nats"), creating them at zero.
func (m *Metrics) Broker(engine string) *BrokerSeries {
	if m == nil {
		return nil
	}
	return &BrokerSeries{
		notices:       m.brokerNotices.WithLabelValues(engine),
		dropped:       m.brokerDropped.WithLabelValues(engine),
		reconnects:    m.brokerReconnects.WithLabelValues(engine),
		catchUpReads:  m.catchUpReads.WithLabelValues(engine),
		gapEvents:     m.gapEvents.WithLabelValues(engine),
		payloadEvents: m.payloadEvents.WithLabelValues(engine),
	}
}

// NoticeHeard counts a notice of another node.
func (b *BrokerSeries) NoticeHeard() {
	if b != nil {
		b.notices.Inc()
	}
}

// NoticeDropped counts a message that could not be read.
func (b *BrokerSeries) NoticeDropped() {
	if b != nil {
		b.dropped.Inc()
	}
}

// Reconnected counts a time the node may have missed notices and caught
// up every watched video: a reconnect of the broker, a retry, a drop.
func (b *BrokerSeries) Reconnected() {
	if b != nil {
		b.reconnects.Inc()
	}
}

// CatchUpRead counts a read of the events table by the follower.
func (b *BrokerSeries) CatchUpRead() {
	if b != nil {
		b.catchUpReads.Inc()
	}
}

// GapFilled counts n events published from a catch-up read.
func (b *BrokerSeries) GapFilled(n int) {
	if b != nil && n > 0 {
		b.gapEvents.Add(float64(n))
	}
}

// PayloadPublished counts an event published from a notice's payload.
func (b *BrokerSeries) PayloadPublished() {
	if b != nil {
		b.payloadEvents.Inc()
	}
}
