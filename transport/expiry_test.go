package transport_test

import (
	"bufio"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/transport"
)

// expiresIn is the time to end the streams of these tests are given.
const expiresIn = 300 * time.Millisecond

// TestStreamsEndWhenTimeIsUp gives streams a time to end at, as a
// credential's expiry does: over SSE (on a connection taken over, and on
// HTTP/2, written by its handler) the response ends after the events sent
// before; over WebSocket the connection closes with 4001. Neither ends
// before its time, and each ends with ErrExpired.
func TestStreamsEndWhenTimeIsUp(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := "SSE over HTTP/1.1"
		var setup []func(*httptest.Server)
		if h2 {
			name, setup = "SSE over HTTP/2", append(setup, withTLS)
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, hub.Options{}, transport.Config{PingInterval: 50 * time.Millisecond}, setup...)
			start := time.Now()
			resp, err := f.srv.Client().Get(f.srv.URL + "?expires_in=" + expiresIn.String())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if h2 != (resp.ProtoMajor == 2) {
				t.Fatalf("answered over %s", resp.Proto)
			}
			f.appendStep(t, 1, 10, stephub.StatusProcessing)
			f.appendStep(t, 2, 10, stephub.StatusProcessing)
			got := ids(t, bufio.NewReader(resp.Body), 0) // to the end of the response
			if took := time.Since(start); took < expiresIn {
				t.Errorf("the stream ended after %v; want no sooner than %v", took, expiresIn)
			}
			if len(got) != 2 || got[0] != 1 || got[1] != 2 {
				t.Errorf("ids %v; want [1 2]", got)
			}
			if err := <-f.ended; !errors.Is(err, transport.ErrExpired) {
				t.Errorf("stream ended with %v; want ErrExpired", err)
			}
		})
	}
	t.Run("WebSocket", func(t *testing.T) {
		f := newFixture(t, hub.Options{}, transport.Config{PingInterval: 50 * time.Millisecond})
		start := time.Now()
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"?expires_in="+expiresIn.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		f.appendStep(t, 1, 10, stephub.StatusProcessing)
		if _, data, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(data), `{"id":1,`) {
			t.Fatalf("first message %q, %v; want event 1", data, err)
		}
		_, _, err = conn.ReadMessage()
		var closeErr *websocket.CloseError
		if !errors.As(err, &closeErr) || closeErr.Code != transport.CloseCredentialExpired {
			t.Errorf("after the event: %v; want close %d", err, transport.CloseCredentialExpired)
		}
		if took := time.Since(start); took < expiresIn {
			t.Errorf("the stream ended after %v; want no sooner than %v", took, expiresIn)
		}
		if err := <-f.ended; !errors.Is(err, transport.ErrExpired) {
			t.Errorf("stream ended with %v; want ErrExpired", err)
		}
	})
}
