package jobs

import "context"

// Broker carries notices between the nodes that share a database, so that
// each node's watchers see the events every node stores. It is the one seam
// between nodes: each engine (PostgreSQL NOTIFY in broker/pgnotify, NATS in
// broker/nats) is a package of its own that implements it, and cmd/stephub
// picks one. A single node on SQLite has no other node to tell, and runs
// with no Broker at all (a nil Options.Broker).
//
// The events table stays the truth: a notice only says that an event was
// stored, and may carry the event itself to save the follower a read. An
// engine may lose notices, as long as it says so through Follower.Missed;
// the follower then reads what it may lack from the events table.
type Broker interface {
	// Announce tells the other nodes of events stored here, in the order
	// given. One goroutine calls it at a time, off the requests' path, with
	// the notices that queued while the previous call ran. It returns once
	// the engine has taken them; after an error the caller announces them
	// again, one per video, with the next ones.
	Announce(ctx context.Context, notices []Notice) error
	// Follow passes every notice another node announces to f, and never
	// this node's own, until ctx ends or the engine fails for good. It
	// calls f.Missed whenever notices may have been lost (a reconnect, or
	// messages the engine dropped), and f.Dropped for a message it could
	// not read.
	Follow(ctx context.Context, f Follower) error
}

// Notice says that a node stored event Seq of a video.
type Notice struct {
	VideoID  int64
	Seq      int64
	Terminal bool
	// Payload is the stored event exactly as clients receive it
	// (storage.Appended.Payload), or nil when the engine carries only
	// hints, or when it was over the engine's size bound. Nobody may
	// modify it.
	Payload []byte
}

// Follower is what a Broker hands the other nodes' notices to. Its methods
// never block on anything but a short in-memory lock, so an engine may call
// them from its connection's own goroutine.
type Follower interface {
	// Heard is given one notice of another node.
	Heard(n Notice)
	// Missed says that notices may have been lost (after a reconnect, or a
	// drop): the follower catches up every video watched here.
	Missed()
	// Dropped says that a message could not be read and is skipped.
	Dropped()
}
