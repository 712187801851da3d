package jobs

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/stephub/stephub/pipeline"
)

// hintTimeout bounds sending one batch of hints, and reading the events a
// hint from another node points at.
const hintTimeout = 5 * time.Second

// hintQueue holds the notices of the events published here until
// sendHints hands them to the broker, in publishing order.
type hintQueue struct {
	mu    sync.Mutex
	hints []Notice
	ready chan struct{} // holds a token while hints wait
}

func newHintQueue() *hintQueue {
	return &hintQueue{ready: make(chan struct{}, 1)}
}

func (q *hintQueue) add(h Notice) {
	q.mu.Lock()
	q.hints = append(q.hints, h)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take empties the queue, handing back spare, emptied, for reuse.
func (q *hintQueue) take(spare []Notice) []Notice {
	q.mu.Lock()
	defer q.mu.Unlock()
	hints := q.hints
	q.hints = spare[:0]
	return hints
}

// sendHints tells the other nodes of the events published here until ctx
// ends, then tries once more with what is left. Hints that arrive while a
// batch is on its way go together in the next, so under load a
// notification carries several, and no handler waits for one.
//
// A batch the broker refuses is kept and sent again, after a pause that
// grows while the broker keeps refusing, before the hints that came
// since; so the other nodes hear of every video's last event, its
// terminal one included, once the broker is back. What is kept is one
// notice per video, its latest, without its payload: a follower reads the
// gap from the events table anyway, and the memory a long outage takes
// grows with the videos, not the events.
func (s *Service) sendHints(ctx context.Context) {
	var (
		batch   []Notice
		unsent  = make(map[int64]Notice)
		failing pipeline.Backoff
		retry   <-chan time.Time // set while pausing after a refusal
	)
	send := func(ctx context.Context) {
		batch = s.hints.take(batch)
		all := batch
		if len(unsent) > 0 {
			all = append(sortedNotices(unsent), batch...)
			clear(unsent)
		}
		if len(all) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, hintTimeout)
		defer cancel()
		if err := s.broker.Announce(ctx, all); err != nil {
			for _, n := range all {
				keep := unsent[n.VideoID]
				keep.VideoID, keep.Seq, keep.Payload = n.VideoID, max(keep.Seq, n.Seq), nil
				keep.Terminal = keep.Terminal || n.Terminal
				unsent[n.VideoID] = keep
			}
			pause := failing.Next()
			s.logger.Warn("the broker refused some notices; sending them again", "videos", len(unsent), "retry_in_s", pause.Seconds(), "err", err)
			retry = time.After(pause)
			return
		}
		failing.Reset()
		s.logger.Debug("hints sent", "events", len(all))
	}
	for {
		select {
		case <-s.hints.ready:
			if retry == nil {
				send(ctx)
			}
		case <-retry:
			retry = nil
			send(ctx)
		case <-ctx.Done():
			send(context.WithoutCancel(ctx))
			return
		}
	}
}

// sortedNotices returns the notices of m in the order of their videos.
func sortedNotices(m map[int64]Notice) []Notice {
	ns := slices.Collect(maps.Values(m))
	slices.SortFunc(ns, func(a, b Notice) int { return cmp.Compare(a.VideoID, b.VideoID) })
	return ns
}
