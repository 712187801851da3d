package main

import (
	"io"
	"strings"
	"testing"
)

// TestBrokerConfig: BROKER is empty or nats://; NATS needs a database
// that nodes can share; its subject is the database's unless given.
func TestBrokerConfig(t *testing.T) {
	for _, tc := range []struct{ broker, err string }{
		{"", ""},
		{"nats://127.0.0.1:4222", ""},
		{"redis://127.0.0.1:6379", "neither empty"},
		{"postgres", "neither empty"},
	} {
		env := map[string]string{"BROKER": tc.broker}
		_, err := parseServeFlags(nil, func(k string) string { return env[k] }, io.Discard)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("BROKER=%q: %v; want an error containing %q", tc.broker, err, tc.err)
		}
	}

	if _, _, _, err := openBroker("nats://127.0.0.1:4222", "sqlite://./data/x.db", nil); err == nil || !strings.Contains(err.Error(), "SQLite") {
		t.Errorf("NATS with SQLite: %v; want a refusal that names SQLite", err)
	}
	b, engine, closeBroker, err := openBroker("", "sqlite://./data/x.db", nil)
	if b != nil || engine != "" || err != nil {
		t.Errorf("SQLite without BROKER: %v, %q, %v; want no broker", b, engine, err)
	}
	closeBroker()

	for _, tc := range []struct{ broker, db, url, subject string }{
		{"nats://h:4222", "postgres://u@db:5432/stephub?sslmode=disable", "nats://h:4222", "stephub.events.stephub"},
		{"nats://h:4222", "postgres://u@db:5432/my.db", "nats://h:4222", "stephub.events.my_db"},
		{"nats://h:4222?subject=prod.events", "postgres://u@db/stephub", "nats://h:4222", "prod.events"},
	} {
		opts, err := natsOptions(tc.broker, tc.db)
		if err != nil || opts.URL != tc.url || opts.Subject != tc.subject {
			t.Errorf("natsOptions(%q, %q) = %q, %q, %v; want %q, %q", tc.broker, tc.db, opts.URL, opts.Subject, err, tc.url, tc.subject)
		}
	}
}
