package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// RetentionBatch is how many videos one call of DeleteEventsBefore or
// DeleteVideosBefore deals with at most, in one transaction: small enough
// that the transaction holds its locks (on SQLite, the one write lock) for
// milliseconds, so that jobs go on while old data goes.
const RetentionBatch = 100

// The queries that pick what retention deletes, oldest first. Their
// predicates are those of videos_events_kept_idx and videos_finished_idx,
// word for word, so that both databases read them from those indexes.
const (
	eventsKeptQuery = "SELECT id FROM videos WHERE finished_at IS NOT NULL AND events_deleted_at IS NULL" +
		" AND finished_at < ? ORDER BY finished_at LIMIT ?"
	finishedQuery = "SELECT id FROM videos WHERE finished_at IS NOT NULL" +
		" AND finished_at < ? ORDER BY finished_at LIMIT ?"
)

// Deleted is what one retention call deleted.
type Deleted struct {
	// Videos is how many videos the call dealt with: their events
	// deleted (DeleteEventsBefore), or deleted with them
	// (DeleteVideosBefore). Below RetentionBatch, nothing is left to do.
	Videos int
	// Events is how many events went.
	Events int64
}

// DeleteEventsBefore deletes the events of up to RetentionBatch videos
// that finished before t, oldest first, and records on each video when
// (see stephub.Video.EventsDeletedAt). The videos stay, with their status,
// step, progress, video URL and error. Concurrent calls, from any number of
// processes, deal with different videos.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (Deleted, error) {
	var d Deleted
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var ids []int64
		if err := selectAll(ctx, tx, &ids, eventsKeptQuery+s.skipLocked(), t, RetentionBatch); err != nil {
			return fmt.Errorf("find finished videos: %w", err)
		}
		at := now()
		for _, id := range ids {
			n, err := exec(ctx, tx, "DELETE FROM events WHERE video_id = ?", id)
			if err != nil {
				return fmt.Errorf("delete the events of video %d: %w", id, err)
			}
			if _, err := exec(ctx, tx, "UPDATE videos SET events_deleted_at = ? WHERE id = ?", at, id); err != nil {
				return fmt.Errorf("mark video %d: %w", id, err)
			}
			d.Events += n
		}
		d.Videos = len(ids)
		return nil
	})
	if err != nil {
		return Deleted{}, fmt.Errorf("retention: events of videos finished before %s: %w", t.Format(time.RFC3339), err)
	}
	return d, nil
}

// DeleteVideosBefore deletes up to RetentionBatch videos that finished
// before t, oldest first, with their events. Concurrent calls, from any
// number of processes, deal with different videos.
func (s *Store) DeleteVideosBefore(ctx context.Context, t time.Time) (Deleted, error) {
	var d Deleted
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var ids []int64
		if err := selectAll(ctx, tx, &ids, finishedQuery+s.skipLocked(), t, RetentionBatch); err != nil {
			return fmt.Errorf("find finished videos: %w", err)
		}
		for _, id := range ids {
			// The foreign key would delete the events too; deleting
			// them first counts them.
			n, err := exec(ctx, tx, "DELETE FROM events WHERE video_id = ?", id)
			if err != nil {
				return fmt.Errorf("delete the events of video %d: %w", id, err)
			}
			if _, err := exec(ctx, tx, "DELETE FROM videos WHERE id = ?", id); err != nil {
				return fmt.Errorf("delete video %d: %w", id, err)
			}
			d.Events += n
		}
		d.Videos = len(ids)
		return nil
	})
	if err != nil {
		return Deleted{}, fmt.Errorf("retention: videos finished before %s: %w", t.Format(time.RFC3339), err)
	}
	return d, nil
}
