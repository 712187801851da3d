package jobs

import (
	"context"
	"sync"

	"github.com/stephub/stephub/hub"
	"github.com/stephub/stephub/pipeline"
)

// catchUpWorkers is how many videos a node reads from the events table at
// once to catch them up. A slow read holds one of them; the others go on
// with the other videos.
const catchUpWorkers = 8

// follower is the Follower of a Service: it gives the local watchers the
// events that other nodes store. Heard publishes a notice's payload at
// once when it is the next event of its video; otherwise it only notes,
// per video, the highest seq heard, and a catch-up worker reads the gap
// from the events table once, however many notices came meanwhile. So
// nothing the broker delivers ever waits for the database.
type follower struct {
	s        *Service
	observer ClusterObserver

	mu      sync.Mutex
	changed *sync.Cond     // signalled when queue grows, or at close
	gaps    map[int64]*gap // videos to catch up, or being caught up
	queue   []int64        // videos of gaps that wait for a worker, each once
	closed  bool
}

// gap is what a video's watchers may lack: the events up to seq, or, with
// any, whatever is stored after what they have.
type gap struct {
	seq    int64
	any    bool
	queued bool // in the follower's queue
	busy   bool // a worker reads it now; what comes meanwhile waits
}

func newFollower(s *Service, o ClusterObserver) *follower {
	if o == nil {
		o = nopClusterObserver{}
	}
	f := &follower{s: s, observer: o, gaps: make(map[int64]*gap)}
	f.changed = sync.NewCond(&f.mu)
	return f
}

// followOtherNodes gives the local subscribers the events other nodes
// store, as the broker tells of them, until ctx ends. A terminal notice
// also stops the video's mock job if it runs here: a cancel sent to
// another node reaches it at once. If the broker fails, it follows again
// after a pause, and catches up every watched video.
func (s *Service) followOtherNodes(ctx context.Context) {
	f := s.follower
	var workers sync.WaitGroup
	for range catchUpWorkers {
		workers.Go(f.work)
	}
	defer func() {
		f.close()
		workers.Wait()
	}()
	var failing pipeline.Backoff
	for {
		err := s.broker.Follow(ctx, f)
		if ctx.Err() != nil {
			return
		}
		wait := failing.Next()
		s.logger.Error("cannot follow the other nodes' events; trying again", "err", err, "retry_in_s", wait.Seconds())
		if !pipeline.Sleep(ctx, wait) {
			return
		}
		f.Missed()
	}
}

// Heard implements Follower.
func (f *follower) Heard(n Notice) {
	f.observer.NoticeHeard()
	f.s.logger.Debug("notice heard", "video_id", n.VideoID, "seq", n.Seq, "payload", n.Payload != nil)
	if n.Terminal {
		f.s.stopMock(n.VideoID)
	}
	last, watched := f.s.publisher.LastPublished(n.VideoID)
	switch {
	case !watched || n.Seq <= last:
	case n.Payload != nil && n.Seq == last+1:
		f.s.publisher.Publish(&hub.Event{VideoID: n.VideoID, Seq: n.Seq, Data: n.Payload, Terminal: n.Terminal})
		f.observer.PayloadPublished()
	default:
		f.want(n.VideoID, n.Seq)
	}
}

// Missed implements Follower: every watched video is caught up with
// whatever is stored.
func (f *follower) Missed() {
	f.observer.Reconnected()
	f.s.logger.Info("notices from other nodes may have been missed; catching up every watched video")
	for _, id := range f.s.publisher.Videos() {
		f.want(id, 0)
	}
}

// Dropped implements Follower.
func (f *follower) Dropped() {
	f.observer.NoticeDropped()
	f.s.logger.Warn("unreadable notice skipped; its video is caught up at its next one")
}

// want notes that a video's watchers may lack the events up to seq (0:
// whatever is stored), and queues it unless it is queued or being read.
func (f *follower) want(videoID, seq int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.gaps[videoID]
	if g == nil {
		g = &gap{}
		f.gaps[videoID] = g
	}
	if seq == 0 {
		g.any = true
	}
	g.seq = max(g.seq, seq)
	if !g.queued && !g.busy {
		g.queued = true
		f.queue = append(f.queue, videoID)
		f.changed.Signal()
	}
}

// work catches up the queued videos, one at a time, until close.
func (f *follower) work() {
	for {
		f.mu.Lock()
		for len(f.queue) == 0 && !f.closed {
			f.changed.Wait()
		}
		if f.closed {
			f.mu.Unlock()
			return
		}
		id := f.queue[0]
		f.queue = f.queue[1:]
		g := f.gaps[id]
		seq := g.seq
		if g.any {
			seq = 0
		}
		g.queued, g.busy, g.seq, g.any = false, true, 0, false
		f.mu.Unlock()

		f.catchUp(id, seq)

		f.mu.Lock()
		g.busy = false
		if g.seq > 0 || g.any { // heard of more while reading
			g.queued = true
			f.queue = append(f.queue, id)
		} else {
			delete(f.gaps, id)
		}
		f.mu.Unlock()
	}
}

// close makes the workers return.
func (f *follower) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.changed.Broadcast()
}

// catchUp publishes the stored events of a video that its local
// subscribers have not been given yet, if they may lack event seq (0:
// whatever there is); nothing if nobody here watches it.
func (f *follower) catchUp(videoID, seq int64) {
	last, watched := f.s.publisher.LastPublished(videoID)
	if !watched || (seq > 0 && seq <= last) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), hintTimeout)
	defer cancel()
	f.observer.CatchUpRead()
	events, err := f.s.store.EventsAfter(ctx, videoID, last)
	if err != nil {
		f.s.logger.Warn("cannot catch up a video; its watchers fill the gap at its next event", "video_id", videoID, "err", err)
		return
	}
	for _, e := range events {
		f.s.publisher.Publish(e)
	}
	f.observer.GapFilled(len(events))
}

// nopClusterObserver counts nothing, for a Service without a
// ClusterObserver.
type nopClusterObserver struct{}

func (nopClusterObserver) NoticeHeard()      {}
func (nopClusterObserver) NoticeDropped()    {}
func (nopClusterObserver) Reconnected()      {}
func (nopClusterObserver) CatchUpRead()      {}
func (nopClusterObserver) GapFilled(int)     {}
func (nopClusterObserver) PayloadPublished() {}
