package jobs

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/stephub/stephub/hub"
)

// maxHold is how long an event stored here waits for an earlier one of its
// video, stored here too, to be published first. Two posts of one video
// stored in one commit return in any order; the earlier one is a moment
// behind. An event whose predecessor never comes (another node stored it)
// goes on after maxHold, and the subscriptions read the gap.
const maxHold = 100 * time.Millisecond

// orderedPublisher hands each video's events to the hub in sequence order
// where it can, so that a video's many subscriptions do not each read a
// gap from the database when two of its posts finish out of order. It
// holds its locks only across in-memory work, never across storage.
type orderedPublisher struct {
	publisher Publisher
	emit      func(e *hub.Event) // publishes e and tells the other nodes
	stripes   [64]orderStripe
}

// orderStripe holds the events that wait for their predecessors, of the
// videos whose id falls on it.
type orderStripe struct {
	mu   sync.Mutex
	held map[int64][]*hub.Event
}

func newOrderedPublisher(p Publisher, emit func(e *hub.Event)) *orderedPublisher {
	o := &orderedPublisher{publisher: p, emit: emit}
	for i := range o.stripes {
		o.stripes[i].held = make(map[int64][]*hub.Event)
	}
	return o
}

// publish emits e now if it is its video's next event, or nobody here
// watches the video; else it holds e for at most maxHold. Held events that
// e was the predecessor of follow it.
func (o *orderedPublisher) publish(e *hub.Event) {
	st := &o.stripes[uint64(e.VideoID)%uint64(len(o.stripes))]
	st.mu.Lock()
	defer st.mu.Unlock()
	last, watched := o.publisher.LastPublished(e.VideoID)
	if watched && e.Seq > last+1 {
		if len(st.held[e.VideoID]) == 0 {
			time.AfterFunc(maxHold, func() { o.release(st, e.VideoID) })
		}
		st.held[e.VideoID] = append(st.held[e.VideoID], e)
		return
	}
	o.emit(e)
	held := st.held[e.VideoID]
	if len(held) == 0 {
		return
	}
	slices.SortFunc(held, bySeq)
	next := e.Seq
	for len(held) > 0 && held[0].Seq <= next+1 {
		o.emit(held[0])
		next = max(next, held[0].Seq)
		held = held[1:]
	}
	if len(held) == 0 {
		delete(st.held, e.VideoID)
	} else {
		st.held[e.VideoID] = held
	}
}

// release emits what a video still holds, in order, once maxHold is over:
// its predecessors were stored elsewhere, or are late.
func (o *orderedPublisher) release(st *orderStripe, videoID int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	held := st.held[videoID]
	delete(st.held, videoID)
	slices.SortFunc(held, bySeq)
	for _, e := range held {
		o.emit(e)
	}
}

// bySeq orders a video's events by sequence number.
func bySeq(a, b *hub.Event) int { return cmp.Compare(a.Seq, b.Seq) }
