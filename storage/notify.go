package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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

// maxHintPayload bounds the payload of one notification, under
// PostgreSQL's limit of 8000 bytes.
const maxHintPayload = 7900

// Notify hints the other nodes sharing this PostgreSQL database at events
// stored here, in order, with one statement whatever their number: hints
// go several to a notification. It runs on its own, after the events'
// transactions, so that the commits of events and credits never queue
// behind PostgreSQL's notification lock. On SQLite, where one process holds
// the database, it does nothing, at no cost.
//
// A notification reads "NODE VIDEO SEQ TERMINAL", the triple repeated for
// each further hint.
func (s *Store) Notify(ctx context.Context, hints []Hint) error {
	if !s.Shared() || len(hints) == 0 {
		return nil
	}
	var payloads []string
	var b strings.Builder
	for _, h := range hints {
		hint := fmt.Sprintf(" %d %d %t", h.VideoID, h.Seq, h.Terminal)
		if b.Len() > 0 && b.Len()+len(hint) > maxHintPayload {
			payloads = append(payloads, b.String())
			b.Reset()
		}
		if b.Len() == 0 {
			b.WriteString(s.node)
		}
		b.WriteString(hint)
	}
	payloads = append(payloads, b.String())
	// One transaction, so the notifications arrive in the order given.
	if _, err := s.db.ExecContext(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n",
		notifyChannel, pq.Array(payloads)); err != nil {
		return fmt.Errorf("notify %d events: %w", len(hints), err)
	}
	return nil
}

// Shared reports whether other nodes may share the database, and so want
// the hints of Notify: true on PostgreSQL.
func (s *Store) Shared() bool {
	return s.dialect == DialectPostgres
}

// parseHints reads a notification that Notify sent: the sending node and
// its hints.
func parseHints(payload string) (node string, hints []Hint, err error) {
	fields := strings.Fields(payload)
	if len(fields) < 4 || (len(fields)-1)%3 != 0 {
		return "", nil, errors.New("want a node and triples of video, seq and terminal")
	}
	node = fields[0]
	for f := fields[1:]; len(f) > 0; f = f[3:] {
		var h Hint
		if h.VideoID, err = strconv.ParseInt(f[0], 10, 64); err != nil {
			return "", nil, err
		}
		if h.Seq, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return "", nil, err
		}
		if h.Terminal, err = strconv.ParseBool(f[2]); err != nil {
			return "", nil, err
		}
		hints = append(hints, h)
	}
	return node, hints, nil
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
			node, hints, err := parseHints(n.Extra)
			if err != nil {
				logger.Warn("event hints: unreadable notification", "payload", n.Extra, "err", err)
				continue
			}
			if node == s.node {
				continue
			}
			for _, h := range hints {
				onHint(h)
			}
		case <-ping.C:
			// A dead connection is noticed here; the Listener reconnects.
			_ = l.Ping()
		}
	}
}
