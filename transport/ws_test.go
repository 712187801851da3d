package transport_test

import (
	"context"
	"errors"
	"fmt"
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

// TestWebSocketAnswersPingAndClose sends a ping, which the stream answers
// with a pong carrying the same data, and then a close frame, which it
// answers with its own before the connection ends.
func TestWebSocketAnswersPingAndClose(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{})
	conn := f.dial(t)
	pong := make(chan string, 1)
	conn.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := conn.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// The client handles control frames while it reads messages: give it
	// events to read until the pong has come.
	for step := 1; len(pong) == 0; step++ {
		if step > 20 {
			t.Fatal("no pong after 20 events")
		}
		f.appendStep(t, step, 10, stephub.StatusProcessing)
		if _, data, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(data), fmt.Sprintf(`{"id":%d,`, step)) {
			t.Fatalf("message %d: %q, %v", step, data, err)
		}
	}
	if got := <-pong; got != "are you there" {
		t.Errorf("pong %q; want the ping's data", got)
	}

	if err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, _, err := conn.ReadMessage()
	var closeErr *websocket.CloseError
	if !errors.As(err, &closeErr) || closeErr.Code != websocket.CloseNormalClosure {
		t.Errorf("after the client's close: %v; want the server's close 1000", err)
	}
	if err := <-f.ended; !errors.Is(err, context.Canceled) {
		t.Errorf("WebSocket = %v; want the client's leaving", err)
	}
}

// TestWebSocketRefusesBadFrames closes with 1009 a message over the limit,
// and with 1002 a frame the client did not mask or one whose length has
// its top bit set (which once wrapped the size check around and crashed
// the server).
func TestWebSocketRefusesBadFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(*websocket.Conn) error
		code int
	}{
		{"too big", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 5000)))
		}, websocket.CloseMessageTooBig},
		{"unmasked", func(c *websocket.Conn) error {
			_, err := c.NetConn().Write([]byte{0x81, 2, 'h', 'i'})
			return err
		}, websocket.CloseProtocolError},
		{"length past 2^63", func(c *websocket.Conn) error {
			// A fragment of one byte, then a continuation whose length,
			// added to it, would wrap around to 0.
			frames := []byte{0x01, 0x81, 0, 0, 0, 0, 'x', 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
			_, err := c.NetConn().Write(frames)
			return err
		}, websocket.CloseProtocolError},
	} {
		f := newFixture(t, hub.Options{}, transport.Config{})
		conn := f.dial(t)
		if err := tc.send(conn); err != nil {
			t.Fatal(err)
		}
		_, _, err := conn.ReadMessage()
		var closeErr *websocket.CloseError
		if !errors.As(err, &closeErr) || closeErr.Code != tc.code {
			t.Errorf("%s: %v; want close %d", tc.name, err, tc.code)
		}
		if err := <-f.ended; !errors.Is(err, transport.ErrProtocol) {
			t.Errorf("%s: WebSocket = %v; want ErrProtocol", tc.name, err)
		}
	}
}
