package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/transport"
)

var errBadLastEventID = &stephub.Error{Code: stephub.CodeBadLastEventID, Message: "Last-Event-ID must be a non-negative integer no greater than the video's last event id"}

func (s *Server) handleStream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, resumed, err := transport.LastEventID(r)
		if err != nil {
			s.writeError(w, r, errBadLastEventID)
			return
		}
		id, err := videoID(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		v, err := s.Store.UserVideo(r.Context(), userOf(r), id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if after > v.LastSeq {
			s.writeError(w, r, errBadLastEventID)
			return
		}
		if v.Status.Terminal() && after == v.LastSeq {
			// Nothing is left to send: 204 tells EventSource to stop.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		release, err := s.streams.acquire(userOf(r))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		defer release()
		sub, err := s.Hub.Subscribe(r.Context(), id, after)
		if err != nil {
			if errors.Is(err, hub.ErrClosed) {
				err = stephub.ErrUnavailable
			}
			s.writeError(w, r, err)
			return
		}
		defer sub.Close()

		s.Metrics.StreamOpened(transport.SSE, resumed)
		start := time.Now()
		err = transport.ServeSSE(w, r, sub, s.cfg.Stream)
		s.Metrics.StreamClosed(transport.SSE, time.Since(start))
		s.logStreamEnd(r, transport.SSE, id, start, err)
	})
}

// logStreamEnd logs one line per stream: how long it ran and why it ended.
func (s *Server) logStreamEnd(r *http.Request, name string, videoID int64, start time.Time, err error) {
	reason := "finished"
	switch {
	case errors.Is(err, context.Canceled):
		reason = "client_gone"
	case errors.Is(err, hub.ErrSlowConsumer):
		reason = hub.ReasonSlowConsumer
	case errors.Is(err, hub.ErrClosed):
		reason = hub.ReasonShutdown
	case err != nil:
		reason = "error"
	}
	attrs := []any{"transport", name, "video_id", videoID, "user", userOf(r), "duration", time.Since(start), "reason", reason}
	if reason == "error" {
		attrs = append(attrs, "err", err)
	}
	s.Logger.Info("stream ended", attrs...)
}
