package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/stephub/stephub"
)

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

// Lease is a video as its runner claimed it, and the token of the lease,
// which the runner sends with each of its steps (see AppendEvent).
type Lease struct {
	Video stephub.Video
	Token string
}

// Claim leases the oldest pending video to the caller: it becomes
// processing, its attempts go up by one, its lease runs for the Store's
// lease from now, under a new token. Concurrent claims, from any number of
// processes, never get the same video. It returns stephub.ErrNotFound when
// no video is pending.
//
// A fenced lease takes steps only with its token from the start, as the
// built-in pipeline's does; any other is fenced by its first step with the
// token, so that workers that never send one keep working.
func (s *Store) Claim(ctx context.Context, fenced bool) (Lease, error) {
	l := Lease{Token: newLeaseToken()}
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var id int64
		if err := get(ctx, tx, &id, pendingQuery+s.skipLocked()); err != nil {
			return err
		}
		t := now()
		if _, err := exec(ctx, tx, `UPDATE videos SET status = ?, attempts = attempts + 1, lease_expires_at = ?,
			lease_token_hash = ?, lease_fenced = ?, updated_at = ?
			WHERE id = ?`, stephub.StatusProcessing, t.Add(s.lease), hashLeaseToken(l.Token), fenced, t, id); err != nil {
			return fmt.Errorf("lease video %d: %w", id, err)
		}
		var err error
		l.Video, err = videoByID(ctx, tx, id)
		return err
	})
	if err != nil {
		if errors.Is(err, stephub.ErrNotFound) {
			return Lease{}, err
		}
		return Lease{}, fmt.Errorf("claim a video: %w", err)
	}
	s.remember(l.Video)
	return l, nil
}

// RenewLease extends the lease token holds on a video that is processing,
// for a runner that has nothing to post yet. It returns
// stephub.ErrLeaseLost when the video is not processing under that lease
// any more.
func (s *Store) RenewLease(ctx context.Context, videoID int64, token string) error {
	t := now()
	var n int64
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) (err error) {
		n, err = exec(ctx, tx, "UPDATE videos SET lease_expires_at = ? WHERE id = ? AND status = ? AND lease_token_hash = ?",
			t.Add(s.lease), videoID, stephub.StatusProcessing, hashLeaseToken(token))
		return err
	})
	if err != nil {
		return fmt.Errorf("renew the lease of video %d: %w", videoID, err)
	}
	if n == 0 {
		return stephub.ErrLeaseLost
	}
	return nil
}

// ReleaseLease gives a video that token's lease holds back to the queue
// without counting the attempt: for a node that stops its jobs on purpose,
// so that the next one to claim the video goes on at once from its last
// step. A lease lost already releases nothing.
func (s *Store) ReleaseLease(ctx context.Context, videoID int64, token string) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		_, err := exec(ctx, tx, `UPDATE videos
			SET status = ?, lease_expires_at = NULL, lease_token_hash = NULL, lease_fenced = ?, attempts = attempts - 1
			WHERE id = ? AND status = ? AND attempts > 0 AND lease_token_hash = ?`,
			stephub.StatusPending, false, videoID, stephub.StatusProcessing, hashLeaseToken(token))
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

// newLeaseToken returns a new lease's token: 128 random bits, as text that
// travels in a header as is.
func newLeaseToken() string {
	return rand.Text()
}

// hashLeaseToken is what the videos table keeps of a lease token, so that
// whoever reads the database cannot post with it.
func hashLeaseToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
