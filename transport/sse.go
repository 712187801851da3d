package transport

import (
	"net/http"
	"strconv"
	"time"

	"github.com/stephub/stephub/hub"
)

// SSE is the transport label of Server-Sent Events streams.
const SSE = "sse"

// sseRetry tells EventSource how long to wait before reconnecting.
const sseRetry = "retry: 3000\n\n"

// SSE streams the subscription as Server-Sent Events: a retry hint, then
// every event as "id:" and "data:" lines, with a comment line as heartbeat.
// It returns after the terminal event (nil), when the request's context ends,
// or when the hub ends the subscription; returning ends the response, and a
// browser then reconnects with Last-Event-ID and misses nothing.
func (st *Streamer) SSE(w http.ResponseWriter, r *http.Request, sub *hub.Subscription) error {
	cfg := st.cfg
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	s := &sseSink{w: w, rc: http.NewResponseController(w), timeout: cfg.writeTimeout(), buf: make([]byte, 0, 512)}
	s.buf = append(s.buf, sseRetry...)
	if err := s.flush(); err != nil {
		return err
	}
	return pump(r.Context(), sub, s, cfg, SSE)
}

type sseSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
}

func (s *sseSink) send(events []*hub.Event) error {
	for _, e := range events {
		s.buf = append(s.buf, "id: "...)
		s.buf = strconv.AppendInt(s.buf, e.Seq, 10)
		s.buf = append(s.buf, "\ndata: "...)
		s.buf = append(s.buf, e.Data...)
		s.buf = append(s.buf, "\n\n"...)
	}
	return s.flush()
}

func (s *sseSink) ping() error {
	s.buf = append(s.buf, ": ping\n\n"...)
	return s.flush()
}

// flush writes the buffered frames under a deadline and pushes them out.
func (s *sseSink) flush() error {
	defer func() { s.buf = s.buf[:0] }()
	// Not every ResponseWriter supports deadlines (httptest's recorder does
	// not); the write itself still fails on a dead connection.
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	return s.rc.Flush()
}
