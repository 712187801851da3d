package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/storage"
)

// claimPoll is how often a waiting claim looks again without being woken:
// videos created or requeued on another node wake nobody here.
const claimPoll = time.Second

// leaseCheck is how often expired leases are looked for.
const leaseCheck = time.Second

// wakeClaimers tells waiting claims that a video may be pending.
func (s *Service) wakeClaimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.pending)
	s.pending = make(chan struct{})
}

func (s *Service) pendingSignal() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// RunsEveryVideo reports whether the built-in pipeline runs every video,
// leaving workers nothing to claim or post.
func (s *Service) RunsEveryVideo() bool { return s.mock }

// Claim leases the oldest pending video to a worker, waiting up to wait
// for one to come. The lease is fenced by the worker's first post with its
// token (see storage.Store.Claim). It returns stephub.ErrNotFound when none
// came, and at once with the mock pipeline, whose videos only its built-in
// worker runs.
func (s *Service) Claim(ctx context.Context, wait time.Duration) (storage.Lease, error) {
	if s.mock {
		return storage.Lease{}, stephub.ErrNotFound
	}
	return s.claim(ctx, wait, false)
}

// Unclaim gives a video that Claim leased back to the queue without
// counting the attempt: for a claim whose answer never reached its worker.
func (s *Service) Unclaim(l storage.Lease) { s.release(l) }

// claim is Claim for any runner; fenced is the store's. A claimer that
// leaves (ctx ends) takes no video, even one claimed as it left.
func (s *Service) claim(ctx context.Context, wait time.Duration, fenced bool) (storage.Lease, error) {
	deadline := time.Now().Add(wait)
	for {
		// Taken before looking, so that a video created just after the
		// look still wakes this claim.
		woken := s.pendingSignal()
		l, err := s.store.Claim(ctx, fenced)
		switch {
		case err == nil && ctx.Err() != nil:
			// The claimer left while the claim was stored: nobody would
			// run the video, so it goes back, its attempt not counted.
			s.release(l)
			return storage.Lease{}, ctx.Err()
		case err == nil:
			s.logger.Debug("claimed", "video_id", l.Video.ID, "attempt", l.Video.Attempts, "from_step", l.Video.Step, "builtin", fenced)
			return l, nil
		case !errors.Is(err, stephub.ErrNotFound):
			return l, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return storage.Lease{}, stephub.ErrNotFound
		}
		t := time.NewTimer(min(left, claimPoll))
		select {
		case <-woken:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return storage.Lease{}, ctx.Err()
		}
		t.Stop()
	}
}

// expireLeases requeues or fails, every leaseCheck, the videos whose runner
// went silent, and publishes what became of them, until ctx ends.
func (s *Service) expireLeases(ctx context.Context) {
	tick := time.NewTicker(leaseCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		expired, err := s.store.ExpireLeases(ctx, s.maxAttempts)
		for _, e := range expired {
			s.logger.Warn("lease expired", "video_id", e.VideoID, "status", e.Event.Status)
			s.publish(e.VideoID, e.Appended)
		}
		if len(expired) > 0 {
			s.wakeClaimers()
		}
		if err != nil && ctx.Err() == nil {
			s.logger.Error("expiring leases", "err", err)
		}
	}
}
