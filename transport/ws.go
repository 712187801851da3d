package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stephub/stephub/hub"
)

// WebSocket is the transport label of WebSocket streams.
const WebSocket = "ws"

// Limits of a WebSocket peer.
const (
	// maxClientMessage bounds what a client may send; it only ever sends
	// small commands.
	maxClientMessage = 4 << 10
	// closeWait bounds the wait for the close frame to go out.
	closeWait = time.Second
)

// IsWebSocketUpgrade reports whether r asks for a WebSocket.
func IsWebSocketUpgrade(r *http.Request) bool { return websocket.IsWebSocketUpgrade(r) }

// clientMessage is what a client may send.
type clientMessage struct {
	Type string `json:"type"`
}

// WebSocket upgrades the request and streams the subscription as text
// frames, one event JSON each, on goroutines of its own: it returns once the
// upgrade is done. It pings the peer every PingInterval and drops it when a
// pong does not come back in time. The connection closes with 1000 after
// the terminal event, 1001 when the server shuts down, and 1013 (try again
// later) when the peer reads too slowly, so that it reconnects with
// last_event_id. A nil sub means nothing is left to send: the connection
// closes with 1000 at once. onCancel runs when the client sends
// {"type": "cancel"}; done is told how the stream ended.
func (st *Streamer) WebSocket(w http.ResponseWriter, r *http.Request, sub *hub.Subscription, onCancel func(context.Context), done Done) {
	conn, err := st.upgrader.Upgrade(w, r, nil)
	if err != nil {
		done(0, err) // Upgrade has answered the client
		return
	}
	if sub == nil {
		err := closeWith(conn, websocket.CloseNormalClosure, "")
		conn.Close()
		done(0, err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	pongWait := 2 * st.cfg.pingInterval()
	st.goLive(func() {
		defer cancel()
		readClient(ctx, conn, pongWait, onCancel)
		sub.Close() // a dead or departed peer ends the writer too
	})
	st.goLive(func() {
		// Pinged whether or not events flow: the reader expects a pong
		// within pongWait.
		b := st.beats.add(func() error {
			err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(pingWriteTimeout))
			if isTimeout(err) {
				return nil // the pump is writing; the pong wait notices a dead peer
			}
			return err
		}, func() { conn.Close() })
		defer st.beats.remove(b)
		s := &wsSink{conn: conn, timeout: st.cfg.writeTimeout()}
		sent, err := st.pump(ctx, sub, s, WebSocket)
		switch {
		case err == nil:
			err = closeWith(conn, websocket.CloseNormalClosure, "")
		case errors.Is(err, hub.ErrClosed):
			closeWith(conn, websocket.CloseGoingAway, "server shutting down")
		case errors.Is(err, hub.ErrSlowConsumer):
			closeWith(conn, websocket.CloseTryAgainLater, "too slow; reconnect with last_event_id")
		}
		conn.Close() // ends the reader
		done(sent, err)
	})
}

// readClient reads the client's messages until the connection fails or
// stays silent past pongWait; pongs push the deadline forward.
func readClient(ctx context.Context, conn *websocket.Conn, pongWait time.Duration, onCancel func(context.Context)) {
	conn.SetReadLimit(maxClientMessage)
	conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var msg clientMessage
		if kind == websocket.TextMessage && json.Unmarshal(data, &msg) == nil && msg.Type == "cancel" && onCancel != nil {
			onCancel(ctx)
		}
	}
}

// closeWith sends a close frame with code and reason.
func closeWith(conn *websocket.Conn, code int, reason string) error {
	return conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeWait))
}

type wsSink struct {
	conn    *websocket.Conn
	timeout time.Duration
}

func (s *wsSink) send(events []*hub.Event) error {
	// Only recorded here; the connection applies it to each frame.
	s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	for _, e := range events {
		if err := s.conn.WriteMessage(websocket.TextMessage, e.Data); err != nil {
			return err
		}
	}
	return nil
}
