package jobs

import (
	"context"
	"time"

	"github.com/stephub/stephub/storage"
)

// The kinds of rows retention deletes, as the Observer is told them.
const (
	retainedEvents = "events"
	retainedVideos = "videos"
)

// retention is how long finished videos and their events are kept; 0
// keeps them forever.
type retention struct {
	events, videos time.Duration
}

func (r retention) on() bool { return r.events > 0 || r.videos > 0 }

// every is how often retention looks for rows to delete: a quarter of the
// shortest retention, so that a row outlives it by little, but from every
// 250 ms (for tests' short retentions) to every minute.
func (r retention) every() time.Duration {
	shortest := r.events
	if shortest <= 0 || (r.videos > 0 && r.videos < shortest) {
		shortest = r.videos
	}
	return min(max(shortest/4, 250*time.Millisecond), time.Minute)
}

// applyRetention deletes, every retention.every(), the events and then the
// videos that finished longer ago than their retention, until ctx ends.
// Each node of a cluster runs it; they share the work (see
// storage.Store.DeleteEventsBefore).
func (s *Service) applyRetention(ctx context.Context) {
	tick := time.NewTicker(s.retention.every())
	defer tick.Stop()
	for {
		s.deleteOld(ctx, retainedEvents, s.retention.events, s.store.DeleteEventsBefore)
		s.deleteOld(ctx, retainedVideos, s.retention.videos, s.store.DeleteVideosBefore)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// deleteOld runs del, batch after batch, on what finished more than keep
// ago, until nothing is left or ctx ends; nothing when keep is 0. Each
// batch is its own transaction, so jobs run on between them.
func (s *Service) deleteOld(ctx context.Context, kind string, keep time.Duration, del func(context.Context, time.Time) (storage.Deleted, error)) {
	if keep <= 0 {
		return
	}
	before := time.Now().Add(-keep)
	var total storage.Deleted
	for ctx.Err() == nil {
		d, err := del(ctx, before)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Error("retention failed; it tries again later", "kind", kind, "err", err)
			}
			break
		}
		total.Videos += d.Videos
		total.Events += d.Events
		if s.observer != nil {
			s.observer.RetentionDeleted(retainedEvents, int(d.Events))
			if kind == retainedVideos {
				s.observer.RetentionDeleted(retainedVideos, d.Videos)
			}
		}
		if d.Videos < storage.RetentionBatch {
			break
		}
	}
	if total.Videos > 0 {
		s.logger.Info("retention deleted", "kind", kind, "videos", total.Videos, "events", total.Events, "finished_before", before)
	} else {
		s.logger.Debug("retention found nothing to delete", "kind", kind, "finished_before", before)
	}
}
