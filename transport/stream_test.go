package transport

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/storage"
)

// TestStreamSeesEndBehindFullBatches queues exactly two batches of events
// on a subscription that the hub then drops as a slow consumer, before the
// stream's first run: the runs that write the two batches must not leave
// the stream idle with its end unseen, since a closed channel has no
// length and the end's wake-up came while the stream was running.
func TestStreamSeesEndBehindFullBatches(t *testing.T) {
	sub, _ := queuedSubscription(t, 2*maxBatch, 2*maxBatch+1, 0) // the last one overflows
	server, client := connPair(t)
	go io.Copy(io.Discard, client)

	st := New(Config{PingInterval: time.Hour})
	ended := make(chan error, 1)
	s := st.newStream(context.Background(), sub, wireSSEChunked, func(_ int, err error) { ended <- err })
	s.takeOver(server)
	s.start(nil, time.Time{}, nil)
	select {
	case err := <-ended:
		if err != hub.ErrSlowConsumer {
			t.Errorf("stream ended with %v; want hub.ErrSlowConsumer", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after writing the events queued ahead of its end")
	}
	if err := st.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestStreamTimeUpWritesWhatIsQueued ends a stream whose time is up while
// more than two batches of events wait on its subscription: it writes
// them all, then ends its response, with ErrExpired.
func TestStreamTimeUpWritesWhatIsQueued(t *testing.T) {
	const queued = 2*maxBatch + 1
	sub, _ := queuedSubscription(t, 4*maxBatch, queued, 0)
	server, client := connPair(t)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()

	st := New(Config{PingInterval: time.Hour})
	ended := make(chan error, 1)
	var sent int
	s := st.newStream(context.Background(), sub, wireSSEChunked, func(n int, err error) {
		sent = n
		ended <- err
	})
	s.takeOver(server)
	s.pending.Store(dueEnd) // as the heartbeat marks it, before the first run
	s.start(nil, time.Now().Add(-time.Second), nil)
	select {
	case err := <-ended:
		if err != ErrExpired || sent != queued {
			t.Errorf("stream ended with %v after %d events; want ErrExpired after %d", err, sent, queued)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream whose time is up did not end")
	}
	b := <-got
	if n := bytes.Count(b, []byte("id: ")); n != queued {
		t.Errorf("the client got %d events; want the %d queued", n, queued)
	}
	if !bytes.HasSuffix(b, []byte(lastChunk)) {
		t.Errorf("the response ends with %q; want the last chunk", b[max(len(b)-16, 0):])
	}
	if err := st.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestStreamTimeUpEndsDespiteAFlow keeps events coming to a stream whose
// time is up: it ends once what was queued at time-up is written, rather
// than stay open for as long as the flow lasts.
func TestStreamTimeUpEndsDespiteAFlow(t *testing.T) {
	const queued = 3 * maxBatch
	sub, publish := queuedSubscription(t, 4*maxBatch, queued, 4<<10)
	server, client := connPair(t)
	// Small socket buffers, and a client that publishes as it reads:
	// the writer cannot run ahead of the flow, so the queue never empties.
	server.(*net.TCPConn).SetWriteBuffer(64 << 10)
	client.(*net.TCPConn).SetReadBuffer(64 << 10)
	go func() {
		buf := make([]byte, 4<<10)
		for {
			if _, err := client.Read(buf); err != nil {
				return
			}
			if len(sub.C()) < queued {
				publish()
			}
		}
	}()

	st := New(Config{PingInterval: time.Hour})
	ended := make(chan error, 1)
	var sent int
	s := st.newStream(context.Background(), sub, wireSSEChunked, func(n int, err error) {
		sent = n
		ended <- err
	})
	s.takeOver(server)
	s.pending.Store(dueEnd)
	s.start(nil, time.Now().Add(-time.Second), nil)
	select {
	case err := <-ended:
		if err != ErrExpired || sent < queued {
			t.Errorf("stream ended with %v after %d events; want ErrExpired after at least %d", err, sent, queued)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream whose time is up stayed open while events kept coming")
	}
	if err := st.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// queuedSubscription subscribes to a new video of a real store through a
// hub with the given buffer, and publishes n events to it; publish
// publishes the video's next event. Each event carries pad bytes of
// padding.
func queuedSubscription(t *testing.T, buffer, n, pad int) (sub *hub.Subscription, publish func()) {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureUser(ctx, "u", "", 1000); err != nil {
		t.Fatal(err)
	}
	v, err := store.CreateVideo(ctx, "u", stephub.Video{Prompt: "a prompt here", Model: "sora-2", Cost: 100})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Options{History: store, Buffer: buffer})
	t.Cleanup(h.Close)
	sub, err = h.Subscribe(ctx, v.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seq int64
	publish = func() {
		seq++
		data := `{"id":` + strconv.FormatInt(seq, 10) + `,"pad":"` + strings.Repeat("x", pad) + `"}`
		h.Publish(&hub.Event{VideoID: v.ID, Seq: seq, Data: []byte(data)})
	}
	for range n {
		publish()
	}
	return sub, publish
}

// connPair returns both ends of a loopback TCP connection, closed when the
// test ends.
func connPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}
