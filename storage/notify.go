package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/lib/pq"
)

// notifyChannel is where the nodes sharing a PostgreSQL database hint each
// other at new events.
const notifyChannel = "stephub_events"

// Timings of the LISTEN connection: how soon it reconnects after a failure,
// at first and at most, and how often it is checked when quiet.
const (
	listenMinReconnect = 50 * time.Millisecond
	listenMaxReconnect = 5 * time.Second
	listenPing         = 30 * time.Second
)

// Hint says that a video has a stored event that the sending node
// published to its own subscribers. The events table stays the truth: a
// hint only says where to look, and a lost hint loses nothing stored.
type Hint struct {
	VideoID  int64
	Seq      int64
	Terminal bool
}

func newNodeID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// notifyTimeout bounds sending one hint.
const notifyTimeout = 5 * time.Second

// Notify hints the other nodes sharing this PostgreSQL database at an event
// stored here, within notifyTimeout. It runs on its own, after the event's
// transaction, so that the commits of events and credits never queue behind
// PostgreSQL's notification lock. On SQLite, where one process holds the
// database, it does nothing, at no cost.
func (s *Store) Notify(ctx context.Context, h Hint) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	payload := fmt.Sprintf("%s %d %d %t", s.node, h.VideoID, h.Seq, h.Terminal)
	if _, err := s.db.ExecContext(ctx, "SELECT pg_notify($1, $2)", notifyChannel, payload); err != nil {
		return fmt.Errorf("notify event %d of video %d: %w", h.Seq, h.VideoID, err)
	}
	return nil
}

// Listen passes the other nodes' hints to onHint until ctx ends. Hints can
// be lost while the LISTEN connection is down, so onResync runs whenever it
// has reconnected: the caller must then read what it may have missed from
// the events table. On SQLite Listen returns at once. Both callbacks run on
// Listen's goroutine, one at a time.
func (s *Store) Listen(ctx context.Context, logger *slog.Logger, onHint func(Hint), onResync func()) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	l := pq.NewListener(s.url, listenMinReconnect, listenMaxReconnect, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			logger.Warn("event hints: LISTEN connection", "event", int(ev), "err", err)
		}
	})
	defer l.Close()
	if err := l.Listen(notifyChannel); err != nil {
		return fmt.Errorf("listen for event hints: %w", err)
	}
	ping := time.NewTicker(listenPing)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-l.Notify:
			if n == nil { // reconnected: hints may be lost
				onResync()
				continue
			}
			var node string
			var h Hint
			if _, err := fmt.Sscanf(n.Extra, "%s %d %d %t", &node, &h.VideoID, &h.Seq, &h.Terminal); err != nil {
				logger.Warn("event hints: unreadable hint", "hint", n.Extra, "err", err)
				continue
			}
			if node != s.node {
				onHint(h)
			}
		case <-ping.C:
			// A dead connection is noticed here; the Listener reconnects.
			_ = l.Ping()
		}
	}
}
