package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/stephub/stephub"
)

// ErrLeaseLost is returned by RenewLease when the video is no longer running
// under a lease: it finished, or it went back to pending after the lease ran
// out and may be with another worker now.
var ErrLeaseLost = errors.New("storage: the video's lease is lost")

// The queries that look for pending and for expired videos name their
// status in the SQL, not as an argument: only then can a prepared
// statement's generic plan tell that videos_unfinished_idx covers them.
// With an argument, each claim walked every video ever made, oldest first,
// and each look for expired leases read the whole table.
const (
	pendingQuery = "SELECT id FROM videos WHERE status = '" + string(stephub.StatusPending) + "' ORDER BY id LIMIT 1"
	expiredQuery = "SELECT id FROM videos WHERE status = '" + string(stephub.StatusProcessing) + "' AND lease_expires_at < ?" +
		" ORDER BY lease_expires_at LIMIT ?"
)

// Claim leases the oldest pending video to the caller: it becomes
// processing, its attempts go up by one, and its lease runs for the Store's
// lease from now. Concurrent claims, from any number of processes, never
// get the same video. It returns stephub.ErrNotFound when no video is
// pending.
func (s *Store) Claim(ctx context.Context) (stephub.Video, error) {
	var v stephub.Video
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var id int64
		if err := get(ctx, tx, &id, pendingQuery+s.skipLocked()); err != nil {
			return err
		}
		t := now()
		if _, err := exec(ctx, tx, `UPDATE videos SET status = ?, attempts = attempts + 1, lease_expires_at = ?, updated_at = ?
			WHERE id = ?`, stephub.StatusProcessing, t.Add(s.lease), t, id); err != nil {
			return fmt.Errorf("lease video %d: %w", id, err)
		}
		var err error
		v, err = videoByID(ctx, tx, id)
		return err
	})
	if err != nil {
		if errors.Is(err, stephub.ErrNotFound) {
			return stephub.Video{}, err
		}
		return stephub.Video{}, fmt.Errorf("claim a video: %w", err)
	}
	s.remember(v)
	return v, nil
}

// RenewLease extends the lease of a video that is processing, for a runner
// that has nothing to post yet. It returns ErrLeaseLost when the video is
// not processing any more.
func (s *Store) RenewLease(ctx context.Context, videoID int64) error {
	t := now()
	var n int64
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) (err error) {
		n, err = exec(ctx, tx, "UPDATE videos SET lease_expires_at = ? WHERE id = ? AND status = ?",
			t.Add(s.lease), videoID, stephub.StatusProcessing)
		return err
	})
	if err != nil {
		return fmt.Errorf("renew the lease of video %d: %w", videoID, err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseLease gives a processing video back to the queue without counting
// the attempt: for a node that stops its jobs on purpose, so that the next
// one to claim the video goes on at once from its last step.
func (s *Store) ReleaseLease(ctx context.Context, videoID int64) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		_, err := exec(ctx, tx, `UPDATE videos SET status = ?, lease_expires_at = NULL, attempts = attempts - 1
			WHERE id = ? AND status = ? AND attempts > 0`, stephub.StatusPending, videoID, stephub.StatusProcessing)
		return err
	})
	if err != nil {
		return fmt.Errorf("release the lease of video %d: %w", videoID, err)
	}
	return nil
}

// Expired is a video whose lease ran out, and the event that says what
// became of it.
type Expired struct {
	VideoID int64
	Appended
}

// maxExpiredPerCall bounds the work of one ExpireLeases call.
const maxExpiredPerCall = 100

// ExpireLeases deals with the processing videos whose lease has run out:
// each goes back to pending, to be claimed again, or, once it has been
// claimed maxAttempts times, fails and is refunded. Either way it gets an
// event, at its step and progress, so its watchers see what happened. Each
// video is handled in its own transaction, and only by one caller when
// several run at once.
func (s *Store) ExpireLeases(ctx context.Context, maxAttempts int) ([]Expired, error) {
	var ids []int64
	if err := selectAll(ctx, s.db, &ids, expiredQuery, now(), maxExpiredPerCall); err != nil {
		return nil, fmt.Errorf("find expired leases: %w", err)
	}
	var out []Expired
	for _, id := range ids {
		var a Appended
		err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
			v, err := s.lockVideo(ctx, tx, id)
			if err != nil {
				return err
			}
			if v.Status != stephub.StatusProcessing || v.LeaseExpiresAt == nil || v.LeaseExpiresAt.After(now()) {
				a = Appended{} // a post or another node got there first
				return nil
			}
			a, err = s.appendLocked(ctx, tx, v, expiryStep(v, maxAttempts))
			return err
		})
		if err != nil {
			return out, fmt.Errorf("expire the lease of video %d: %w", id, err)
		}
		if a.Payload != nil {
			out = append(out, Expired{VideoID: id, Appended: a})
		}
	}
	return out, nil
}

// expiryStep is the event of a video whose lease ran out.
func expiryStep(v stephub.Video, maxAttempts int) stephub.Step {
	st := stephub.Step{Step: v.Step, Progress: v.Progress}
	if v.Attempts >= maxAttempts {
		st.Status = stephub.StatusFailed
		st.Message = "❌ The job failed: no worker finished it"
		st.Error = new(fmt.Sprintf("no worker finished the job in %d attempts; the credits are refunded", v.Attempts))
		return st
	}
	st.Status = stephub.StatusPending
	st.Message = fmt.Sprintf("⚠️ The worker stopped responding; the job is queued again (attempt %d of %d next)", v.Attempts+1, maxAttempts)
	return st
}
