package pgnotify_test

import (
	"context"
	"database/sql"
	"net"
	"testing"
	"time"

	"github.com/stephub/stephub/broker/brokertest"
	"github.com/stephub/stephub/broker/pgnotify"
	"github.com/stephub/stephub/internal/leakcheck"
	"github.com/stephub/stephub/internal/testdb"
	"github.com/stephub/stephub/jobs"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func newBroker(t *testing.T, url string) *pgnotify.Broker {
	t.Helper()
	b, err := pgnotify.New(url, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestBroker sends more notices than fit one notification (about 15 bytes
// each) between two nodes of one database: each arrives once, in order,
// without its payload, and never at the node that sent it.
func TestBroker(t *testing.T) {
	url := testdb.Postgres(t)
	brokertest.Run(t, newBroker(t, url), newBroker(t, url), false)
}

// TestUnreadableNotification: a notification on the channel that no node
// sent is dropped, and counted, and the next one is still heard.
func TestUnreadableNotification(t *testing.T) {
	url := testdb.Postgres(t)
	db := open(t, url)
	b := newBroker(t, url)
	r := brokertest.NewRecorder()
	brokertest.Follow(t, b, r)
	other := newBroker(t, url)
	// Once a notice is heard, b listens, and hears what is sent after it
	// in commit order: the garbage, then the next notice.
	announce := func(seq int64) {
		t.Helper()
		if err := other.Announce(t.Context(), []jobs.Notice{{VideoID: 5, Seq: seq}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(r.Notices) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no notice heard in 10s")
		}
		announce(1)
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := db.ExecContext(t.Context(), "SELECT pg_notify('stephub_events', 'garbage')"); err != nil {
		t.Fatal(err)
	}
	announce(2)
	for {
		select {
		case n := <-r.Notices:
			if n.Seq != 2 {
				continue
			}
			if r.DroppedCount() == 0 {
				t.Error("an unreadable notification was not reported as dropped")
			}
			return
		case <-time.After(10 * time.Second):
			t.Fatal("the notice after the garbage was not heard in 10s")
		}
	}
}

// TestReconnectIsMissed: when the LISTEN connection is cut, the broker
// reconnects and tells its follower that notices may have been lost, and
// hears the next ones.
func TestReconnectIsMissed(t *testing.T) {
	url := testdb.Postgres(t)
	db := open(t, url)
	b, other := newBroker(t, url), newBroker(t, url)
	r := brokertest.NewRecorder()
	brokertest.Follow(t, b, r)
	heard := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(r.Notices) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no notice heard in 10s")
			}
			if err := other.Announce(t.Context(), []jobs.Notice{{VideoID: 5, Seq: 1}}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for len(r.Notices) > 0 {
			<-r.Notices
		}
	}
	heard()
	if r.MissedCount() != 0 {
		t.Fatalf("Missed %d times before any reconnect", r.MissedCount())
	}
	if _, err := db.ExecContext(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.MissedCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the LISTEN connection was cut, and Missed not called in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	heard()
}

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestFollowEndsWhileUnreachable: Follow returns when its context ends,
// though PostgreSQL has never answered (pq's Listen waits for it).
func TestFollowEndsWhileUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	b := newBroker(t, "postgres://postgres@"+addr+"/nowhere?sslmode=disable&connect_timeout=1")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Follow(ctx, brokertest.NewRecorder()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Follow = %v; want nil once its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow still waits for PostgreSQL 10 s after its context ended")
	}
}
