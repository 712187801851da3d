// Package pgnotify is the jobs.Broker of nodes that share a PostgreSQL
// database and nothing else: they hint each other at new events with
// NOTIFY, and read the events themselves from the events table. It is the
// default broker on PostgreSQL.
package pgnotify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/stephub/stephub/jobs"
)

// Engine names this engine in metrics' labels.
const Engine = "postgres"

// channel is where the nodes sharing a PostgreSQL database hint each other
// at new events.
const channel = "stephub_events"

// Timings of the LISTEN connection: how soon it reconnects after a failure,
// at first and at most, and how often it is checked when quiet.
const (
	listenMinReconnect = 50 * time.Millisecond
	listenMaxReconnect = 5 * time.Second
	listenPing         = 30 * time.Second
)

// maxPayload bounds the payload of one notification, under PostgreSQL's
// limit of 8000 bytes.
const maxPayload = 7900

// Broker hints the other nodes sharing a PostgreSQL database at the events
// stored here, and passes theirs on. Notices go without their payload: a
// follower reads the events from the events table. It is safe for
// concurrent use.
type Broker struct {
	url    string
	node   string  // this process, in the notifications it sends
	db     *sql.DB // one connection, for NOTIFY
	logger *slog.Logger
}

var _ jobs.Broker = (*Broker)(nil)

// New returns a Broker on the PostgreSQL database at url. It connects when
// first used; Close it when done.
func New(url string, logger *slog.Logger) (*Broker, error) {
	connector, err := pq.NewConnector(url)
	if err != nil {
		return nil, fmt.Errorf("pgnotify: %w", err)
	}
	db := sql.OpenDB(connector)
	// Announce runs on one goroutine at a time.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Broker{url: url, node: newNodeID(), db: db, logger: logger}, nil
}

// Close closes the Broker's NOTIFY connection.
func (b *Broker) Close() error { return b.db.Close() }

func newNodeID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Announce hints the other nodes at events stored here, in order, with one
// statement whatever their number: hints go several to a notification. It
// runs on its own, after the events' transactions, so that the commits of
// events and credits never queue behind PostgreSQL's notification lock.
//
// A notification reads "NODE VIDEO SEQ TERMINAL", the triple repeated for
// each further hint.
func (b *Broker) Announce(ctx context.Context, notices []jobs.Notice) error {
	if len(notices) == 0 {
		return nil
	}
	var payloads []string
	var sb strings.Builder
	for _, n := range notices {
		hint := fmt.Sprintf(" %d %d %t", n.VideoID, n.Seq, n.Terminal)
		if sb.Len() > 0 && sb.Len()+len(hint) > maxPayload {
			payloads = append(payloads, sb.String())
			sb.Reset()
		}
		if sb.Len() == 0 {
			sb.WriteString(b.node)
		}
		sb.WriteString(hint)
	}
	payloads = append(payloads, sb.String())
	// One transaction, so the notifications arrive in the order given.
	if _, err := b.db.ExecContext(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n",
		channel, pq.Array(payloads)); err != nil {
		return fmt.Errorf("notify %d events: %w", len(notices), err)
	}
	return nil
}

// parse reads a notification that Announce sent: the sending node and its
// hints.
func parse(payload string) (node string, notices []jobs.Notice, err error) {
	fields := strings.Fields(payload)
	if len(fields) < 4 || (len(fields)-1)%3 != 0 {
		return "", nil, errors.New("want a node and triples of video, seq and terminal")
	}
	node = fields[0]
	for f := fields[1:]; len(f) > 0; f = f[3:] {
		var n jobs.Notice
		if n.VideoID, err = strconv.ParseInt(f[0], 10, 64); err != nil {
			return "", nil, err
		}
		if n.Seq, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return "", nil, err
		}
		if n.Terminal, err = strconv.ParseBool(f[2]); err != nil {
			return "", nil, err
		}
		notices = append(notices, n)
	}
	return node, notices, nil
}

// Follow passes the other nodes' hints to f until ctx ends. Hints can be
// lost while the LISTEN connection is down, so f.Missed runs whenever it
// has reconnected. pq's Listener delivers into a channel of its own that
// this loop drains; f never blocks it.
func (b *Broker) Follow(ctx context.Context, f jobs.Follower) error {
	l := pq.NewListener(b.url, listenMinReconnect, listenMaxReconnect, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			b.logger.Warn("event hints: LISTEN connection", "event", int(ev), "err", err)
		}
	})
	defer l.Close()
	// Listen waits while PostgreSQL cannot be reached, until Close.
	listened := make(chan error, 1)
	go func() { listened <- l.Listen(channel) }()
	select {
	case err := <-listened:
		if err != nil {
			return fmt.Errorf("listen for event hints: %w", err)
		}
	case <-ctx.Done():
		l.Close()
		<-listened
		return nil
	}
	ping := time.NewTicker(listenPing)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-l.Notify:
			if n == nil { // reconnected: hints may be lost
				f.Missed()
				continue
			}
			node, notices, err := parse(n.Extra)
			if err != nil {
				b.logger.Warn("event hints: unreadable notification", "payload", n.Extra, "err", err)
				f.Dropped()
				continue
			}
			if node == b.node {
				continue
			}
			for _, n := range notices {
				f.Heard(n)
			}
		case <-ping.C:
			// A dead connection is noticed here; the Listener reconnects.
			_ = l.Ping()
		}
	}
}
