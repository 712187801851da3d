package jobs

import (
	"context"
	"sync"
	"time"
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
// ends, then sends what is left. Hints that arrive while a batch is on its
// way go together in the next, so under load a notification carries
// several, and no handler waits for one. A batch that fails is logged and
// dropped: the other nodes catch up with those videos at their next hint.
func (s *Service) sendHints(ctx context.Context) {
	var batch []Notice
	send := func(ctx context.Context) {
		batch = s.hints.take(batch)
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, hintTimeout)
		defer cancel()
		if err := s.broker.Announce(ctx, batch); err != nil {
			s.logger.Warn("other nodes not told of some events; they catch up at the videos' next ones", "events", len(batch), "err", err)
			return
		}
		s.logger.Debug("hints sent", "events", len(batch))
	}
	for {
		select {
		case <-s.hints.ready:
			send(ctx)
		case <-ctx.Done():
			send(context.WithoutCancel(ctx))
			return
		}
	}
}
