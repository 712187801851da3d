package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stephub/stephub"
)

const videoColumns = `id, user_id, status, prompt, model, reference_image_url, step, progress,
	video_url, error, last_seq, cost, created_at, updated_at, step_started_at, attempts, lease_expires_at,
	lease_token_hash, lease_fenced, events_deleted_at`

// CreateVideo takes v.Cost credits from the user userID and creates the
// video v for it, pending, in one transaction: either both happen or
// neither. Of v only Prompt, Model, ReferenceImageURL and Cost are used.
//
// It returns stephub.ErrNotFound for an unknown user, then
// stephub.ErrSubscriptionInactive for an inactive subscription, whatever the
// credits, then stephub.ErrInsufficientCredits. Racing calls never spend the
// same credits: the one that finds too few gets ErrInsufficientCredits.
func (s *Store) CreateVideo(ctx context.Context, userID string, v stephub.Video) (stephub.Video, error) {
	if v.Cost < 0 {
		return stephub.Video{}, fmt.Errorf("create video: negative cost %d", v.Cost)
	}
	var out stephub.Video
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		// Locking the user row (on PostgreSQL) orders this against a
		// concurrent change of the subscription, not only of the credits.
		var sub stephub.SubscriptionStatus
		if err := get(ctx, tx, &sub, "SELECT subscription_status FROM users WHERE id = ?"+s.forUpdate(), userID); err != nil {
			return fmt.Errorf("read the user: %w", err)
		}
		if sub != stephub.SubscriptionActive {
			return stephub.ErrSubscriptionInactive
		}
		// The condition makes the spending atomic even without the lock
		// above: a racing call that committed first leaves too few
		// credits, and this one then changes no row.
		n, err := exec(ctx, tx, "UPDATE users SET credits = credits - ?, updated_at = ? WHERE id = ? AND credits >= ?",
			v.Cost, now(), userID, v.Cost)
		if err != nil {
			return fmt.Errorf("take the credits: %w", err)
		}
		if n == 0 {
			return stephub.ErrInsufficientCredits
		}
		t := now()
		var id int64
		if err := get(ctx, tx, &id, `INSERT INTO videos
			(user_id, status, prompt, model, reference_image_url, step, progress, last_seq, cost, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?)
			RETURNING id`,
			userID, stephub.StatusPending, v.Prompt, v.Model, v.ReferenceImageURL, v.Cost, t, t); err != nil {
			return fmt.Errorf("insert the video: %w", err)
		}
		out, err = videoByID(ctx, tx, id)
		return err
	})
	if err != nil {
		return stephub.Video{}, fmt.Errorf("create video for user %q: %w", userID, err)
	}
	s.remember(out)
	return out, nil
}

// Video returns the video id, whoever owns it, or stephub.ErrNotFound.
func (s *Store) Video(ctx context.Context, id int64) (stephub.Video, error) {
	v, err := videoByID(ctx, s.db, id)
	if err != nil {
		return stephub.Video{}, fmt.Errorf("video %d: %w", id, err)
	}
	return v, nil
}

// UserVideo returns the video id if it belongs to the user userID, and
// stephub.ErrNotFound otherwise: another user's video does not exist for
// this one.
func (s *Store) UserVideo(ctx context.Context, userID string, id int64) (stephub.Video, error) {
	var v stephub.Video
	if err := get(ctx, s.db, &v, "SELECT "+videoColumns+" FROM videos WHERE id = ? AND user_id = ?", id, userID); err != nil {
		return stephub.Video{}, fmt.Errorf("video %d of user %q: %w", id, userID, err)
	}
	return normalize(v), nil
}

// ListVideos returns up to limit videos of the user userID, newest first.
// With before > 0 it returns only videos whose id is below before: pass the
// last id of a page to get the next one.
func (s *Store) ListVideos(ctx context.Context, userID string, before int64, limit int) ([]stephub.Video, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list videos: limit %d is not positive", limit)
	}
	if before <= 0 {
		before = math.MaxInt64 // above every id: one query serves both cases
	}
	var vs []stephub.Video
	if err := selectAll(ctx, s.db, &vs, "SELECT "+videoColumns+` FROM videos
		WHERE user_id = ? AND id < ?
		ORDER BY id DESC
		LIMIT ?`, userID, before, limit); err != nil {
		return nil, fmt.Errorf("list videos of user %q: %w", userID, err)
	}
	return normalizeAll(vs), nil
}

// Cancel ends the video videoID of the user userID with a cancelled event
// carrying message, its step and progress unchanged, and gives its cost back
// to the user (up to stephub.MaxCredits, as AppendEvent does), in one
// transaction. It returns the video as it now is and the
// event, as AppendEvent does.
//
// A video of another user is stephub.ErrNotFound; a video already in a
// terminal status, cancelled included, is stephub.ErrVideoFinished.
func (s *Store) Cancel(ctx context.Context, userID string, videoID int64, message string) (stephub.Video, Appended, error) {
	var (
		v stephub.Video
		a Appended
	)
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		cur, err := s.lockVideo(ctx, tx, videoID)
		if err != nil {
			return err
		}
		if cur.UserID != userID {
			return stephub.ErrNotFound
		}
		// For the user a cancelled video is as finished as a completed
		// one; only workers are told apart (see AppendEvent).
		if cur.Status.Terminal() {
			return stephub.ErrVideoFinished
		}
		a, err = s.appendLocked(ctx, tx, cur, stephub.Step{
			Step:     cur.Step,
			Progress: cur.Progress,
			Message:  message,
			Status:   stephub.StatusCancelled,
		})
		if err != nil {
			return err
		}
		v, err = videoByID(ctx, tx, videoID)
		return err
	})
	if err != nil {
		return stephub.Video{}, Appended{}, fmt.Errorf("cancel video %d: %w", videoID, err)
	}
	return v, a, nil
}

// videoByID reads the video id through q, a transaction or the pool.
func videoByID(ctx context.Context, q sqlx.ExtContext, id int64) (stephub.Video, error) {
	var v stephub.Video
	if err := get(ctx, q, &v, "SELECT "+videoColumns+" FROM videos WHERE id = ?", id); err != nil {
		return stephub.Video{}, err
	}
	return normalize(v), nil
}

// lockVideo reads the video id for a change that depends on what it reads:
// concurrent lockVideo calls on one video run one after the other until
// their transactions end.
func (s *Store) lockVideo(ctx context.Context, tx *sqlx.Tx, id int64) (stephub.Video, error) {
	var v stephub.Video
	if err := get(ctx, tx, &v, "SELECT "+videoColumns+" FROM videos WHERE id = ?"+s.forUpdate(), id); err != nil {
		if !errors.Is(err, stephub.ErrNotFound) {
			err = fmt.Errorf("lock the video: %w", err)
		}
		return stephub.Video{}, err
	}
	return normalize(v), nil
}

// normalize puts v's times in UTC: lib/pq returns them in the session's
// time zone, and times that compare equal should also look the same.
func normalize(v stephub.Video) stephub.Video {
	v.CreatedAt = v.CreatedAt.UTC()
	v.UpdatedAt = v.UpdatedAt.UTC()
	for _, t := range []*time.Time{v.StepStartedAt, v.LeaseExpiresAt, v.EventsDeletedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return v
}

func normalizeAll(vs []stephub.Video) []stephub.Video {
	for i := range vs {
		vs[i] = normalize(vs[i])
	}
	return vs
}
