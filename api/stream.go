package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/metrics"
	"github.com/stephub/stephub/transport"
)

var (
	errBadLastEventID = &stephub.Error{Code: stephub.CodeBadLastEventID, Message: "Last-Event-ID must be a non-negative integer no greater than the video's last event id"}
	errNotWebSocket   = &stephub.Error{Code: codeNotWebSocket, Message: "this route speaks WebSocket: send an Upgrade request"}
	errBadOrigin      = &stephub.Error{Code: codeBadOrigin, Message: "WebSocket connections are not allowed from this origin"}
)

const (
	codeNotWebSocket = "not_websocket"
	codeBadOrigin    = "origin_not_allowed"
)

// handleStream serves a video's events over one transport, SSE or
// WebSocket. Everything before the first byte of the stream is the same for
// both: the resume point, the video, the per-user cap, the subscription.
func (s *Server) handleStream(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, err := transport.LastEventID(r)
		if err != nil {
			s.writeError(w, r, errBadLastEventID)
			return
		}
		if name == transport.WebSocket {
			// HEAD cannot upgrade: it gets what a GET without an
			// upgrade gets.
			if r.Method == http.MethodHead || !transport.IsWebSocketUpgrade(r) {
				s.writeError(w, r, errNotWebSocket)
				return
			}
			if !s.originAllowed(r) {
				s.writeError(w, r, errBadOrigin)
				return
			}
		}
		id, err := videoID(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		cred := credentialOf(r)
		user := cred.user
		v, err := s.Videos.UserVideo(r.Context(), user, id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if after > v.LastSeq {
			s.writeError(w, r, errBadLastEventID)
			return
		}
		// Nothing is left to send once the client saw the last event, or
		// retention deleted the events of the finished video.
		finished := v.Status.Terminal() && (after == v.LastSeq || v.EventsDeletedAt != nil)
		if finished && name == transport.SSE {
			// 204 tells EventSource to stop.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method == http.MethodHead {
			transport.SSEHead(w)
			return
		}
		release, err := s.streams.acquire(r.Context(), user)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var sub *hub.Subscription // nil: nothing left to send
		if !finished {
			if sub, err = s.Hub.Subscribe(r.Context(), id, after); err != nil {
				release()
				if errors.Is(err, hub.ErrClosed) {
					err = stephub.ErrUnavailable
				}
				s.writeError(w, r, err)
				return
			}
		}

		// The stream may outlive this handler (see package transport):
		// everything it holds is let go when it ends.
		// Only a client that saw an event reconnects: a first connection
		// may well send 0, as a WebSocket client that starts from
		// last_event_id=0 does.
		s.Metrics.StreamOpened(name, after > 0)
		start := time.Now()
		done := func(sent int, err error) {
			if sub != nil {
				sub.Close()
			}
			release()
			s.Metrics.StreamClosed(name, time.Since(start))
			reason, dropped := endReason(err)
			if dropped {
				// The hub counts the drops it makes itself.
				s.Metrics.SubscriberDropped(reason)
			}
			attrs := []any{"transport", name, "video_id", id, "user", user,
				"duration_s", time.Since(start).Seconds(), "events", sent, "reason", reason}
			if err != nil && reason != "client_gone" {
				attrs = append(attrs, "err", err)
			}
			s.Logger.Info("stream ended", attrs...)
		}
		// The stream ends when its credential expires: the client then
		// reconnects with a fresh one, resuming where it stopped.
		if name == transport.SSE {
			s.streamer.SSE(w, r, sub, cred.expires, done)
			return
		}
		var onCancel func(context.Context)
		if !cred.ticket { // a ticket only watches
			onCancel = func(ctx context.Context) {
				if _, err := s.Jobs.Cancel(ctx, user, id); err != nil {
					s.Logger.Info("cancel over WebSocket refused", "video_id", id, "err", err)
				}
			}
		}
		s.streamer.WebSocket(w, r, sub, cred.expires, onCancel, done)
	})
}

// originAllowed reports whether a WebSocket may be opened from the request's
// Origin: none (not a browser), the server's own, or an allowed one.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(s.cfg.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// Listen wraps ln so that the connections of SSE streams that end
// cleanly serve their client's next request; serve on what it returns,
// with ConnState as the http.Server's ConnState hook.
func (s *Server) Listen(ln net.Listener) net.Listener { return s.streamer.Listen(ln) }

// ConnState tells the listener of Listen which connections it gave back
// began a request, so that shutdown closes the others at once, as the idle
// keep-alive connections they are.
func (s *Server) ConnState(c net.Conn, state http.ConnState) { s.streamer.ConnState(c, state) }

// Wait blocks until every stream has ended, or ctx ends. Call it after
// http.Server.Shutdown, which does not track the connections streams take
// over.
func (s *Server) Wait(ctx context.Context) error { return s.streamer.Wait(ctx) }

// endReason names how a stream ended, for its log line and its metrics;
// dropped is set when the transport let the client go.
func endReason(err error) (reason string, dropped bool) {
	var werr *transport.WriteError
	switch {
	case err == nil:
		return "finished", false
	case errors.Is(err, context.Canceled):
		return "client_gone", false
	case errors.Is(err, transport.ErrExpired):
		// Not a drop: the client is to reconnect with a fresh credential.
		return "credential_expired", false
	case errors.Is(err, hub.ErrSlowConsumer):
		return metrics.DropSlowConsumer, false
	case errors.Is(err, hub.ErrClosed):
		return metrics.DropShutdown, false
	case errors.Is(err, transport.ErrPongTimeout):
		return metrics.DropPongTimeout, true
	case errors.Is(err, transport.ErrProtocol):
		return metrics.DropProtocolError, true
	case errors.As(err, &werr):
		switch {
		case werr.Timeout() && werr.Ping:
			return metrics.DropPingTimeout, true
		case werr.Timeout():
			return metrics.DropWriteTimeout, true
		}
		return metrics.DropWriteError, true
	}
	return "error", false
}
