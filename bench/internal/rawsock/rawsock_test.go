package rawsock

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// TestEpollWaitsForData checks that Wait reports a socket only once it has
// data, and that Close ends a Wait under way.
func TestEpollWaitsForData(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	fd, err := Dup(client.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)

	ep, err := NewEpoll()
	if err != nil {
		t.Fatal(err)
	}
	if err := ep.Add(fd); err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int
		err error
		at  time.Time
	}
	waited := make(chan result, 1)
	ready := make([]syscall.EpollEvent, 4)
	go func() {
		n, err := ep.Wait(ready)
		waited <- result{n, err, time.Now()}
	}()
	select {
	case r := <-waited:
		t.Fatalf("Wait returned %d, %v before any data was sent", r.n, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	sent := time.Now()
	if _, err := server.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	r := <-waited
	if r.err != nil || r.n != 1 || int(ready[0].Fd) != fd || r.at.Before(sent) {
		t.Fatalf("Wait = %d, %v, fd %d; want 1 ready, fd %d, after the write", r.n, r.err, ready[0].Fd, fd)
	}

	// Level triggered: unread data is reported again at once.
	if n, err := ep.Wait(ready); n != 1 || err != nil {
		t.Fatalf("second Wait = %d, %v; want the unread socket again", n, err)
	}
	if err := ep.Remove(fd); err != nil {
		t.Fatal(err)
	}
	go func() {
		n, err := ep.Wait(ready)
		waited <- result{n, err, time.Now()}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := ep.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-waited:
		if r.err == nil {
			t.Fatalf("Wait after Close = %d, nil; want an error", r.n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the Wait")
	}
	if err := ep.Add(fd); err == nil {
		t.Fatal("Add after Close succeeded")
	}
}
