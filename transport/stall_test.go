package transport_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/transport"
)

// dialStalled opens a stream, over TLS if tlsConfig is set, on a socket
// with a small receive buffer, and never reads it: a peer that stopped
// reading.
func (f *fixture) dialStalled(t *testing.T, tlsConfig *tls.Config) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		return err
	}}
	conn, err := d.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if tlsConfig != nil {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		conn = tc
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: stephub\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
}

// waitSubscribers waits until the video has n subscribers.
func (f *fixture) waitSubscribers(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); f.hub.Subscribers(f.videoID) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers after 20 s; want %d", f.hub.Subscribers(f.videoID), n)
		}
	}
}

// TestStalledPeersDelayNoPing stalls hundreds of peers at once, with
// events too large for their sockets, over plain TCP (written by the pool)
// and over TLS (written by their handlers): the heartbeats of the streams
// that keep reading still come within the interval.
func TestStalledPeersDelayNoPing(t *testing.T) {
	const (
		interval = time.Second
		stalled  = 200
		healthy  = 10
		watch    = 3*interval + interval/2
	)
	for _, secure := range []bool{false, true} {
		setup := []func(*httptest.Server){withSendBuffer(4096)}
		var tlsConfig *tls.Config
		if secure {
			setup = append(setup, withTLS)
			tlsConfig = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
		}
		f := newFixture(t, hub.Options{}, transport.Config{PingInterval: interval, WriteTimeout: 5 * time.Second}, setup...)
		for range stalled {
			f.dialStalled(t, tlsConfig)
		}
		gaps := make(chan time.Duration, healthy)
		for range healthy {
			r := bufio.NewReader(f.open(t, "").Body)
			go func() { gaps <- longestPingGap(r, watch) }()
		}
		f.waitSubscribers(t, stalled+healthy)
		// Far more than a stalled socket takes.
		f.appendStep(t, 1, 64<<10, stephub.StatusProcessing)
		f.appendStep(t, 2, 64<<10, stephub.StatusProcessing)
		// A heartbeat that waited on stalled peers would come seconds
		// late (250 ms a peer, before the writer sent its own pings); a
		// quarter of an interval is left to a busy test machine's
		// scheduling, which the heartbeat's own slack may not cover
		// under the race detector.
		for range healthy {
			if gap := <-gaps; gap > interval+interval/4 {
				t.Errorf("TLS %v: a reading stream went %v without a ping, beside %d stalled ones; want about %v", secure, gap, stalled, interval)
			}
		}
	}
}

// longestPingGap reads a stream until event 2 has come, then for watch,
// and returns the longest silence from then on: from event 2 to the first
// ping, or between pings. A stream that fails returns watch.
func longestPingGap(r *bufio.Reader, watch time.Duration) time.Duration {
	var last, end time.Time
	var longest time.Duration
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return watch
		}
		now := time.Now()
		switch {
		case strings.HasPrefix(line, "id: 2\n"):
			last, end = now, now.Add(watch)
		case line == ": ping\n" && !last.IsZero():
			longest = max(longest, now.Sub(last))
			last = now
			if now.After(end) {
				return longest
			}
		}
	}
}

// TestStalledIdlePeerDroppedAtPing leaves a peer that stopped reading on
// an idle stream: once its socket can take no more heartbeats, it is let
// go when a ping's write times out, and the error says it was a ping.
func TestStalledIdlePeerDroppedAtPing(t *testing.T) {
	f := newFixture(t, hub.Options{}, transport.Config{PingInterval: 10 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}, withSendBuffer(4096))
	f.dialStalled(t, nil)
	select {
	case err := <-f.ended:
		var werr *transport.WriteError
		if !errors.As(err, &werr) || !werr.Ping || !werr.Timeout() {
			t.Errorf("stream ended with %v; want a heartbeat's write timing out", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a peer that stopped reading was still connected after 30 s of heartbeats")
	}
}
