// Package nats is the jobs.Broker of nodes that share a NATS server besides
// their PostgreSQL database. It carries each stored event itself, so that a
// follower publishes it to its watchers without reading the database; the
// follower reads the events table only to fill a gap. Core NATS, without
// JetStream, is enough: the events table stays the truth, and a reconnect
// tells the follower that it may have missed something.
package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	natsio "github.com/nats-io/nats.go"

	"github.com/stephub/stephub/jobs"
)

// Engine names this engine in metrics' labels.
const Engine = "nats"

// DefaultSubject is the prefix of the subject a cluster's nodes publish
// their events on.
const DefaultSubject = "stephub.events"

// DefaultMaxPayload bounds the stored event a notice carries: a worker's
// event is at most a few KiB, and a larger one goes as a bare notice,
// which the follower reads from the database.
const DefaultMaxPayload = 16 << 10

// reconnectWait is the pause between attempts to reach the NATS server
// again; the client tries forever.
const reconnectWait = 500 * time.Millisecond

// pingInterval and maxPingsOut bound how long a dead connection goes
// unnoticed: about 20-30 s, as PostgreSQL's LISTEN, not nats.go's minutes.
const (
	pingInterval = 10 * time.Second
	maxPingsOut  = 2
)

// dropCheck is how often Follow asks the client whether it dropped
// messages that the follower could not take in time.
const dropCheck = time.Second

// Options configure a Broker.
type Options struct {
	// URL is the NATS server's, nats://host:port.
	URL string
	// Subject is where the cluster's nodes publish: one per cluster, so
	// that clusters on one NATS server stay apart. Empty means
	// DefaultSubject.
	Subject string
	// MaxPayload bounds the event a notice carries; 0 means
	// DefaultMaxPayload.
	MaxPayload int
	// MaxPending is how many of the other nodes' messages the client holds
	// for the follower before it drops them (and the follower catches up);
	// 0 means nats.go's default.
	MaxPending int
	Logger     *slog.Logger
}

// Broker publishes the events stored here on a NATS subject, and passes
// the other nodes' on. It is safe for concurrent use.
type Broker struct {
	conn       *natsio.Conn
	subject    string
	maxPayload int
	maxPending int
	logger     *slog.Logger
	// follower is the one Follow passes notices to, told of reconnects
	// by the connection's handlers; nil when nobody follows.
	follower atomic.Pointer[jobs.Follower]
}

var _ jobs.Broker = (*Broker)(nil)

// New connects to the NATS server. Once connected, the connection
// reconnects by itself for as long as the Broker lives; Close it when done.
func New(opts Options) (*Broker, error) {
	b := &Broker{subject: opts.Subject, maxPayload: opts.MaxPayload, maxPending: opts.MaxPending, logger: opts.Logger}
	if b.subject == "" {
		b.subject = DefaultSubject
	}
	if strings.ContainsAny(b.subject, " \t\r\n*>") {
		return nil, fmt.Errorf("nats: subject %q: want tokens without spaces or wildcards", b.subject)
	}
	if b.maxPayload <= 0 {
		b.maxPayload = DefaultMaxPayload
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	conn, err := natsio.Connect(opts.URL,
		natsio.Name("stephub"),
		natsio.NoEcho(), // a node never hears its own notices
		natsio.MaxReconnects(-1),
		natsio.ReconnectWait(reconnectWait),
		natsio.PingInterval(pingInterval),
		natsio.MaxPingsOutstanding(maxPingsOut),
		natsio.DisconnectErrHandler(func(_ *natsio.Conn, err error) {
			b.logger.Warn("NATS connection lost; reconnecting", "err", err)
		}),
		natsio.ReconnectHandler(func(*natsio.Conn) {
			b.logger.Info("NATS connection back")
			b.missed()
		}),
		natsio.ErrorHandler(func(_ *natsio.Conn, _ *natsio.Subscription, err error) {
			b.logger.Warn("NATS", "err", err) // dropped messages are caught up in Follow
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("nats: connect to %s: %w", opts.URL, err)
	}
	b.conn = conn
	return b, nil
}

// Close closes the connection.
func (b *Broker) Close() { b.conn.Close() }

func (b *Broker) missed() {
	if f := b.follower.Load(); f != nil {
		(*f).Missed()
	}
}

// Announce publishes one message per notice, in order; the client sends
// them as they come, several to a write, and buffers them while it
// reconnects, so Announce never waits on the network and ignores ctx. A
// message reads "VIDEO SEQ TERMINAL\n" followed by the stored event, or
// nothing when the event is over the size bound.
func (b *Broker) Announce(_ context.Context, notices []jobs.Notice) error {
	var msg []byte
	for _, n := range notices {
		msg = encode(msg[:0], n, b.maxPayload)
		if err := b.conn.Publish(b.subject, msg); err != nil {
			return fmt.Errorf("nats: publish %d events: %w", len(notices), err)
		}
	}
	return nil
}

func encode(dst []byte, n jobs.Notice, maxPayload int) []byte {
	dst = strconv.AppendInt(dst, n.VideoID, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, n.Seq, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendBool(dst, n.Terminal)
	dst = append(dst, '\n')
	if len(n.Payload) <= maxPayload {
		dst = append(dst, n.Payload...)
	}
	return dst
}

// decode reads a message of Announce. The payload shares msg's memory,
// which the client gives each message afresh.
func decode(msg []byte) (jobs.Notice, error) {
	head, payload, ok := bytes.Cut(msg, []byte{'\n'})
	fields := strings.Fields(string(head))
	if !ok || len(fields) != 3 {
		return jobs.Notice{}, errors.New("want VIDEO SEQ TERMINAL and a newline")
	}
	var n jobs.Notice
	var err error
	if n.VideoID, err = strconv.ParseInt(fields[0], 10, 64); err != nil {
		return jobs.Notice{}, err
	}
	if n.Seq, err = strconv.ParseInt(fields[1], 10, 64); err != nil {
		return jobs.Notice{}, err
	}
	if n.Terminal, err = strconv.ParseBool(fields[2]); err != nil {
		return jobs.Notice{}, err
	}
	if len(payload) > 0 {
		n.Payload = payload
	}
	return n, nil
}

// Follow subscribes to the cluster's subject and passes the other nodes'
// notices to f until ctx ends. The client delivers them on a goroutine of
// its own; f never blocks it. One Follow at a time.
func (b *Broker) Follow(ctx context.Context, f jobs.Follower) error {
	if !b.follower.CompareAndSwap(nil, &f) {
		return errors.New("nats: Follow is running already")
	}
	defer b.follower.Store(nil)
	sub, err := b.conn.Subscribe(b.subject, func(m *natsio.Msg) {
		n, err := decode(m.Data)
		if err != nil {
			b.logger.Warn("NATS: unreadable message", "err", err)
			f.Dropped()
			return
		}
		f.Heard(n)
	})
	if err != nil {
		return fmt.Errorf("nats: subscribe to %s: %w", b.subject, err)
	}
	if b.maxPending > 0 {
		if err := sub.SetPendingLimits(b.maxPending, -1); err != nil {
			sub.Unsubscribe()
			return fmt.Errorf("nats: pending limit: %w", err)
		}
	}
	// The client reports only the first message it drops while the follower
	// lags; its count tells of every one.
	check := time.NewTicker(dropCheck)
	defer check.Stop()
	var dropped int
	for {
		select {
		case <-check.C:
			if n, err := sub.Dropped(); err == nil && n > dropped {
				b.logger.Warn("NATS dropped messages this node could not take in time; catching up", "dropped", n-dropped)
				dropped = n
				f.Missed()
			}
		case <-ctx.Done():
			// Unsubscribe waits for no callback: the Follower is safe to
			// call after Follow returns.
			if err := sub.Unsubscribe(); err != nil && !errors.Is(err, natsio.ErrConnectionClosed) {
				return fmt.Errorf("nats: unsubscribe: %w", err)
			}
			return nil
		}
	}
}
