package transport

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestListenerClosesIdleConnections hands two connections back: closing
// the listener, as http.Server.Shutdown does first, closes the one that
// has not begun a request, and leaves the one serving a request to
// net/http.
func TestListenerClosesIdleConnections(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := New(Config{})
	l := st.Listen(tcp).(*Listener)
	defer l.Close()

	handBackOne := func() (server, client net.Conn) {
		client, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		server, err = l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { server.Close() })
		if !st.handBack(server) {
			t.Fatal("the listener refused a connection handed back")
		}
		again, err := l.Accept()
		if err != nil || again != server {
			t.Fatalf("Accept after a hand-back: %v, %v; want the connection handed back", again, err)
		}
		st.ConnState(again, http.StateNew)
		return again, client
	}
	_, idleClient := handBackOne()
	busy, busyClient := handBackOne()
	st.ConnState(busy, http.StateActive) // a request began on it

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	idleClient.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idleClient.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("the idle connection after Close: read %v; want EOF", err)
	}
	busyClient.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := busyClient.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the busy connection after Close: read %v; want it open, nothing to read", err)
	}
}
