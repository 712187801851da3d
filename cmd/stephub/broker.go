package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"github.com/stephub/stephub/broker/nats"
	"github.com/stephub/stephub/broker/pgnotify"
	"github.com/stephub/stephub/jobs"
)

// openBroker returns the broker between this node and the others sharing
// its database, the name of its engine, and its Close; a nil broker when
// the database is SQLite, which no other node can share. Adding an engine
// means a package of its own and a case here.
func openBroker(brokerURL, databaseURL string, logger *slog.Logger) (jobs.Broker, string, func(), error) {
	postgres := strings.HasPrefix(databaseURL, "postgres://") || strings.HasPrefix(databaseURL, "postgresql://")
	switch {
	case brokerURL == "" && !postgres:
		return nil, "", func() {}, nil
	case brokerURL == "":
		b, err := pgnotify.New(databaseURL, logger)
		if err != nil {
			return nil, "", nil, err
		}
		return b, pgnotify.Engine, func() { b.Close() }, nil
	case !postgres:
		return nil, "", nil, errors.New("-broker: a broker links nodes that share a PostgreSQL database; a SQLite database belongs to one node: leave BROKER empty, or use a postgres:// DATABASE_URL")
	}
	opts, err := natsOptions(brokerURL, databaseURL)
	if err != nil {
		return nil, "", nil, err
	}
	opts.Logger = logger
	b, err := nats.New(opts)
	if err != nil {
		return nil, "", nil, fmt.Errorf("-broker: %w", err)
	}
	return b, nats.Engine, b.Close, nil
}

// notSubjectToken matches what a NATS subject token may not hold.
var notSubjectToken = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// natsOptions reads BROKER=nats://host:port[?subject=S]. The subject
// defaults to nats.DefaultSubject followed by the database's name, so that
// clusters on different databases stay apart on one NATS server.
func natsOptions(brokerURL, databaseURL string) (nats.Options, error) {
	u, err := url.Parse(brokerURL)
	if err != nil || u.Scheme != "nats" || u.Host == "" {
		return nats.Options{}, fmt.Errorf("-broker: %q is not nats://HOST:PORT", brokerURL)
	}
	subject := u.Query().Get("subject")
	if subject == "" {
		db, err := url.Parse(databaseURL)
		if err != nil {
			return nats.Options{}, fmt.Errorf("-database-url: %w", err)
		}
		subject = nats.DefaultSubject
		if name := notSubjectToken.ReplaceAllString(strings.TrimPrefix(db.Path, "/"), "_"); name != "" {
			subject += "." + name
		}
	}
	u.RawQuery = ""
	return nats.Options{URL: u.String(), Subject: subject}, nil
}
