package transport_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/transport"
)

func (f *fixture) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestWebSocketFramesAndPings receives one text frame per event, pings
// while idle, and a normal close after the terminal event.
func TestWebSocketFramesAndPings(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{PingInterval: 30 * time.Millisecond})
	conn := f.dial(t)
	var pings atomic.Int64
	conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	f.appendStep(t, 1, 10, stephub.StatusProcessing)
	go func() {
		time.Sleep(150 * time.Millisecond) // a few ping intervals of silence
		f.appendStep(t, 2, 10, stephub.StatusCompleted)
	}()
	var frames []string
	var closeErr *websocket.CloseError
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			if !errors.As(err, &closeErr) {
				t.Fatalf("read: %v", err)
			}
			break
		}
		if kind != websocket.TextMessage {
			t.Errorf("frame type %d; want text", kind)
		}
		frames = append(frames, string(data))
	}
	if len(frames) != 2 || !strings.HasPrefix(frames[0], `{"id":1,`) || !strings.HasPrefix(frames[1], `{"id":2,`) {
		t.Errorf("frames = %q; want events 1 and 2", frames)
	}
	if closeErr.Code != websocket.CloseNormalClosure {
		t.Errorf("close code %d; want 1000", closeErr.Code)
	}
	if pings.Load() == 0 {
		t.Error("no ping while the stream was idle")
	}
	if err := <-f.ended; err != nil {
		t.Errorf("WebSocket = %v; want nil", err)
	}
}

// TestWebSocketDropsSilentPeer connects a client that never reads, so never
// answers a ping: the server must let it go after its pong wait.
func TestWebSocketDropsSilentPeer(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{PingInterval: 20 * time.Millisecond})
	f.dial(t)
	select {
	case err := <-f.ended:
		if err == nil {
			t.Error("stream ended without an error; want the silent peer dropped")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a peer that answers no ping was still connected after 10s")
	}
	if n := f.hub.Subscribers(f.videoID); n != 0 {
		t.Errorf("%d subscribers left; want 0", n)
	}
}

// TestWebSocketShutdownCloses1001 closes the hub, as a shutting-down server
// does: the client gets 1001.
func TestWebSocketShutdownCloses1001(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{})
	conn := f.dial(t)
	f.appendStep(t, 1, 10, stephub.StatusProcessing)
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	f.hub.Close()
	_, _, err := conn.ReadMessage()
	var closeErr *websocket.CloseError
	if !errors.As(err, &closeErr) || closeErr.Code != websocket.CloseGoingAway {
		t.Errorf("after shutdown: %v; want close 1001", err)
	}
	if err := <-f.ended; !errors.Is(err, hub.ErrClosed) {
		t.Errorf("WebSocket = %v; want ErrClosed", err)
	}
}
