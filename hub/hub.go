// Package hub fans each video's events out to the streams that watch it.
//
// The hub keeps only live subscriptions in memory; every event it carries has
// already been stored, so a subscriber that falls behind, reconnects or joins
// late reads what it missed from History and never sees a gap or a repeat.
// The hub starts no goroutines: Publish runs on the caller's goroutine and
// never blocks on a subscriber.
package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Sentinel errors returned by Subscription.Err and Subscribe.
var (
	// ErrSlowConsumer ends a subscription whose buffer filled up: its reader
	// could not keep up. The client resumes from storage by its last event id.
	ErrSlowConsumer = errors.New("hub: slow consumer")
	// ErrClosed ends every subscription when the hub shuts down, and is
	// returned by Subscribe afterwards.
	ErrClosed = errors.New("hub: closed")
)

// Drop reasons given to Observer.SubscriberDropped.
const (
	ReasonSlowConsumer = "slow_consumer"
	ReasonShutdown     = "shutdown"
)

// DefaultBuffer is the number of live events a subscription may have queued
// before it counts as a slow consumer: enough for a burst of a second or
// two, small enough that thousands of idle subscriptions cost little.
const DefaultBuffer = 128

// numShards spreads videos over independent locks so that publishing to one
// video never waits on subscribers coming and going on another.
const numShards = 64

// Event is one stored event of a video. Data is its JSON, encoded once and
// shared by every subscriber: nobody may modify an Event after publishing it.
type Event struct {
	VideoID  int64
	Seq      int64
	Data     []byte
	Terminal bool
}

// History reads stored events; storage implements it.
type History interface {
	// EventsAfter returns the video's events with a sequence number above
	// afterSeq, in order.
	EventsAfter(ctx context.Context, videoID, afterSeq int64) ([]*Event, error)
}

// Observer is told when the hub ends a subscription on its own; metrics
// implements it.
type Observer interface {
	SubscriberDropped(reason string)
}

// Options configure a Hub.
type Options struct {
	// History is where subscriptions read events they did not see live.
	History History
	// Observer, if set, counts dropped subscribers.
	Observer Observer
	// Buffer is each subscription's live queue length; 0 means DefaultBuffer.
	Buffer int
}

// Hub routes published events to the subscriptions of their video. It is safe
// for concurrent use.
type Hub struct {
	history  History
	observer Observer
	buffer   int
	shards   [numShards]shard
}

type shard struct {
	mu     sync.RWMutex
	videos map[int64]*watchers
	closed bool
}

// watchers are the subscriptions of one video, and the highest sequence
// number published to them.
type watchers struct {
	subs []*Subscription
	last atomic.Int64 // raised under the shard's read lock, hence atomic
}

// raise makes last at least seq.
func (w *watchers) raise(seq int64) {
	for last := w.last.Load(); seq > last && !w.last.CompareAndSwap(last, seq); last = w.last.Load() {
	}
}

// New returns a Hub ready to use.
func New(opts Options) *Hub {
	if opts.History == nil {
		panic("hub: Options.History is required")
	}
	h := &Hub{history: opts.History, observer: opts.Observer, buffer: opts.Buffer}
	if h.buffer <= 0 {
		h.buffer = DefaultBuffer
	}
	for i := range h.shards {
		h.shards[i].videos = make(map[int64]*watchers)
	}
	return h
}

// shard picks by id modulo: ids are assigned in sequence, so neighbours, the
// videos most likely to be busy at the same time, land on different shards.
func (h *Hub) shard(videoID int64) *shard {
	return &h.shards[uint64(videoID)%numShards]
}

// Publish hands e to every subscription of its video without waiting for any
// of them: a subscription whose queue is full is ended with ErrSlowConsumer.
// Events of one video may be published out of order or more than once;
// subscriptions put them right.
func (h *Hub) Publish(e *Event) {
	sh := h.shard(e.VideoID)
	var slow []*Subscription
	sh.mu.RLock()
	if w := sh.videos[e.VideoID]; w != nil {
		w.raise(e.Seq)
		for _, s := range w.subs {
			select {
			case s.live <- e:
				if s.notify != nil {
					s.notify()
				}
			default:
				slow = append(slow, s)
			}
		}
	}
	sh.mu.RUnlock()
	for _, s := range slow {
		s.end(ErrSlowConsumer, ReasonSlowConsumer)
	}
}

// Subscribe registers for the live events of a video and loads the stored
// ones after afterSeq, in that order, so that nothing published in between is
// missed. The caller must Close the subscription when done with it.
func (h *Hub) Subscribe(ctx context.Context, videoID, afterSeq int64) (*Subscription, error) {
	s := &Subscription{hub: h, videoID: videoID, last: afterSeq, live: make(chan *Event, h.buffer), index: -1}
	sh := h.shard(videoID)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return nil, ErrClosed
	}
	w := sh.videos[videoID]
	if w == nil {
		w = &watchers{}
		sh.videos[videoID] = w
	}
	s.index = len(w.subs)
	w.subs = append(w.subs, s)
	sh.mu.Unlock()

	backlog, err := h.history.EventsAfter(ctx, videoID, afterSeq)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("hub: load history of video %d: %w", videoID, err)
	}
	s.backlog = backlog
	if n := len(backlog); n > 0 {
		// Only a video's one subscription may raise what was published
		// from its own history: another would lack those events, and a
		// node catching up from LastPublished would skip them.
		sh.mu.Lock()
		if len(w.subs) == 1 && w.subs[0] == s {
			w.raise(backlog[n-1].Seq)
		}
		sh.mu.Unlock()
	}
	return s, nil
}

// Subscribers returns how many subscriptions watch a video.
func (h *Hub) Subscribers(videoID int64) int {
	sh := h.shard(videoID)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if w := sh.videos[videoID]; w != nil {
		return len(w.subs)
	}
	return 0
}

// LastPublished returns the highest sequence number published for a video
// since it last had no subscriber (or loaded from history by a subscription
// that was its only one), and whether it has subscribers now: what a node
// that learns of newer events elsewhere must catch its watchers up from.
func (h *Hub) LastPublished(videoID int64) (seq int64, watched bool) {
	sh := h.shard(videoID)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if w := sh.videos[videoID]; w != nil {
		return w.last.Load(), true
	}
	return 0, false
}

// Videos returns the videos that have subscribers.
func (h *Hub) Videos() []int64 {
	var ids []int64
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for id := range sh.videos {
			ids = append(ids, id)
		}
		sh.mu.RUnlock()
	}
	return ids
}

// Close ends every subscription with ErrClosed and refuses new ones. It is
// safe to call more than once.
func (h *Hub) Close() {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		sh.closed = true
		var all []*Subscription
		for _, w := range sh.videos {
			all = append(all, w.subs...)
		}
		sh.mu.Unlock()
		for _, s := range all {
			s.end(ErrClosed, ReasonShutdown)
		}
	}
}

// Subscription is one reader's view of a video's events. C, Err and Close may
// be used from any goroutine; Backlog and Accept belong to the one goroutine
// that sends the events on.
type Subscription struct {
	hub     *Hub
	videoID int64
	live    chan *Event
	backlog []*Event
	last    int64 // sequence number of the last event handed out

	// index is the subscription's place in its shard's slice, or -1 once it
	// has been removed; guarded by the shard's lock, as are err and notify.
	index  int
	err    error
	notify func()
}

// VideoID returns the video the subscription watches.
func (s *Subscription) VideoID() int64 { return s.videoID }

// C returns the live events. It is closed when the subscription ends: after
// Close, or when the hub drops it (Err says why).
func (s *Subscription) C() <-chan *Event { return s.live }

// Err returns why the hub ended the subscription: ErrSlowConsumer or
// ErrClosed; nil while it runs or after Close.
func (s *Subscription) Err() error {
	sh := s.hub.shard(s.videoID)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return s.err
}

// Notify has f called each time an event is queued on C, and once when the
// subscription ends, so that a reader can wait for events some other way
// than by receiving from C. f runs on the publisher's goroutine, at times
// with the hub's locks held: it must be quick, must not block, and must not
// call back into the hub. Events queued before Notify are not announced.
func (s *Subscription) Notify(f func()) {
	sh := s.hub.shard(s.videoID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s.notify = f
}

// InSequence reports whether Accept can take e without reading History: e
// is the next event, or one already handed out.
func (s *Subscription) InSequence(e *Event) bool { return e.Seq <= s.last+1 }

// Backlog returns the stored events to send before any live one, and forgets
// them. Call it once, before reading C.
func (s *Subscription) Backlog() []*Event {
	b := s.backlog
	s.backlog = nil
	if n := len(b); n > 0 {
		s.last = b[n-1].Seq
	}
	return b
}

// Accept appends to dst what must be sent for the live event e: nothing if e
// was already handed out, e itself if it is next, and otherwise the stored
// events that fill the gap up to and including e.
func (s *Subscription) Accept(ctx context.Context, dst []*Event, e *Event) ([]*Event, error) {
	switch {
	case e.Seq <= s.last:
		return dst, nil
	case e.Seq == s.last+1:
		s.last = e.Seq
		return append(dst, e), nil
	}
	missed, err := s.hub.history.EventsAfter(ctx, s.videoID, s.last)
	if err != nil {
		return dst, fmt.Errorf("hub: fill gap after event %d of video %d: %w", s.last, s.videoID, err)
	}
	for _, m := range missed {
		if m.Seq != s.last+1 {
			break
		}
		dst = append(dst, m)
		s.last = m.Seq
	}
	if s.last < e.Seq {
		return dst, fmt.Errorf("hub: event %d of video %d was published but is not stored", e.Seq, s.videoID)
	}
	return dst, nil
}

// Close unregisters the subscription. It is safe to call more than once and
// concurrently with the hub dropping it.
func (s *Subscription) Close() { s.end(nil, "") }

// end removes s from its shard and closes its channel, once. A reason is
// reported to the observer only when the hub itself ended s.
func (s *Subscription) end(err error, reason string) {
	sh := s.hub.shard(s.videoID)
	sh.mu.Lock()
	if s.index < 0 {
		sh.mu.Unlock()
		return
	}
	w := sh.videos[s.videoID]
	last := len(w.subs) - 1
	w.subs[s.index] = w.subs[last]
	w.subs[s.index].index = s.index
	w.subs[last] = nil
	if last == 0 {
		delete(sh.videos, s.videoID)
	} else {
		w.subs = w.subs[:last]
	}
	s.index = -1
	s.err = err
	close(s.live)
	notify := s.notify
	sh.mu.Unlock()
	if notify != nil {
		notify()
	}
	if reason != "" && s.hub.observer != nil {
		s.hub.observer.SubscriberDropped(reason)
	}
}
