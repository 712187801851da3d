package transport

import (
	"context"
	"io"
	"net"
	"strconv"
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
	ctx := context.Background()
	store, err := storage.Open(ctx, testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
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
	h := hub.New(hub.Options{History: store, Buffer: 2 * maxBatch})
	defer h.Close()
	sub, err := h.Subscribe(ctx, v.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 2*maxBatch+1; seq++ { // the last one overflows
		h.Publish(&hub.Event{VideoID: v.ID, Seq: seq, Data: []byte(`{"id":` + strconv.FormatInt(seq, 10) + `}`)})
	}

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
	go io.Copy(io.Discard, client)
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}

	st := New(Config{PingInterval: time.Hour})
	ended := make(chan error, 1)
	s := st.newStream(ctx, sub, wireSSEChunked, func(_ int, err error) { ended <- err })
	s.takeOver(server)
	s.start(nil, nil)
	select {
	case err := <-ended:
		if err != hub.ErrSlowConsumer {
			t.Errorf("stream ended with %v; want hub.ErrSlowConsumer", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after writing the events queued ahead of its end")
	}
	if err := st.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}
