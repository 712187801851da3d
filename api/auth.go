package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/auth"
)

type userKey struct{}

// userOf returns the id of the user that requireUser let through.
func userOf(r *http.Request) string {
	id, _ := r.Context().Value(userKey{}).(string)
	return id
}

// requireUser lets through requests with a valid user token, creating the
// user on first sight.
func (s *Server) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, err := s.Signer.Verify(auth.BearerToken(r))
		if err != nil {
			s.writeError(w, r, stephub.ErrUnauthorized)
			return
		}
		if err := storableClaims(claims); err != nil {
			s.writeError(w, r, err)
			return
		}
		if !s.users.known(claims.Subject) {
			if _, err := s.Store.EnsureUser(r.Context(), claims.Subject, claims.Email, s.cfg.NewUserCredits); err != nil {
				s.writeError(w, r, err)
				return
			}
			s.users.add(claims.Subject)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, claims.Subject)))
	})
}

// maxEmailChars bounds the email a token may carry: a 64-character local
// part, the @ and a 255-character domain.
const maxEmailChars = 320

// storableClaims refuses a validly signed token whose user could not be
// stored, with a 401 that names the claim: no retry makes it usable.
func storableClaims(c auth.Claims) error {
	sub, email := textProblem(c.Subject, maxUserIDChars), textProblem(c.Email, maxEmailChars)
	if sub == "" && email == "" {
		return nil
	}
	fields := make(map[string]string)
	if sub != "" {
		fields["sub"] = sub
	}
	if email != "" {
		fields["email"] = email
	}
	return &stephub.Error{Code: stephub.CodeUnauthorized, Message: "the token's sub or email cannot be stored", Fields: fields}
}

// requireWorker lets through requests that carry WORKER_TOKEN.
func (s *Server) requireWorker(next http.Handler) http.Handler {
	return s.requireStatic(s.cfg.WorkerToken, next)
}

// requireAdmin lets through requests that carry ADMIN_TOKEN.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return s.requireStatic(s.cfg.AdminToken, next)
}

func (s *Server) requireStatic(want string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.StaticTokenValid(auth.BearerToken(r), want) {
			s.writeError(w, r, stephub.ErrUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// maxKnownUsers bounds knownUsers; past it the set starts over, which costs
// one idempotent insert per user.
const maxKnownUsers = 100_000

// knownUsers remembers which users exist, so that each request does not pay
// for the insert that creates a user on first sight. It is safe for
// concurrent use.
type knownUsers struct {
	mu  sync.RWMutex
	ids map[string]struct{}
}

func newKnownUsers() *knownUsers { return &knownUsers{ids: make(map[string]struct{})} }

func (k *knownUsers) known(id string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.ids[id]
	return ok
}

func (k *knownUsers) add(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.ids) >= maxKnownUsers {
		clear(k.ids)
	}
	k.ids[id] = struct{}{}
}

// slotWait is how long a stream over its user's cap waits for another of
// the user's streams to end. A tab that closes a stream and opens the next
// at once must not be refused because the end of the first has not yet
// been noticed.
const slotWait = time.Second

// streamCounter caps each user's concurrent streams. It is safe for
// concurrent use.
type streamCounter struct {
	max  int
	mu   sync.Mutex
	open map[string]int
	// freed is closed, and replaced, when a user at the cap ends a
	// stream, waking the acquires that wait for a slot.
	freed chan struct{}
}

func newStreamCounter(max int) *streamCounter {
	return &streamCounter{max: max, open: make(map[string]int), freed: make(chan struct{})}
}

// acquire counts a new stream of the user, waiting up to slotWait for a
// slot when the user is at the cap; then it fails with ErrTooManyStreams.
// The returned func releases the slot.
func (c *streamCounter) acquire(ctx context.Context, user string) (release func(), err error) {
	var timeout <-chan time.Time
	for {
		freed, ok := c.take(user)
		if ok {
			return func() { c.release(user) }, nil
		}
		if timeout == nil {
			t := time.NewTimer(slotWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return nil, stephub.ErrTooManyStreams
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// take counts a stream of the user if the cap allows; otherwise it returns
// the channel that tells of the next slot freed.
func (c *streamCounter) take(user string) (freed <-chan struct{}, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.open[user] >= c.max {
		return c.freed, false
	}
	c.open[user]++
	return nil, true
}

func (c *streamCounter) release(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[user] == c.max {
		close(c.freed)
		c.freed = make(chan struct{})
	}
	if c.open[user]--; c.open[user] == 0 {
		delete(c.open, user)
	}
}
