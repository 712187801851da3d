package main

import (
	"testing"

	"github.com/stephub/stephub/internal/testnats"
)

// startNATS runs nats-server until the end of the test. At the end it
// fails the test, if nothing else did, when the server carried no message:
// the nodes did not pass their events through NATS.
func startNATS(t *testing.T) *testnats.Server {
	t.Helper()
	ns := testnats.Start(t)
	t.Cleanup(func() { // before testnats' own, which stops the server
		if in, out := ns.Messages(t); !t.Failed() && (in == 0 || out == 0) {
			t.Errorf("nats-server carried %d messages in, %d out; want some each way: did the nodes use BROKER=%s?", in, out, ns.URL)
		}
	})
	return ns
}
