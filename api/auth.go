package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/stephub/stephub"
	"github.com/stephub/stephub/auth"
)

// source is a place where a route may find a user's credential.
type source uint8

const (
	// fromHeader: Authorization: Bearer <access token>, on every user route.
	fromHeader source = 1 << iota
	// fromQuery: ?token=<access token>, for the original front end, whose
	// EventSource cannot set headers. A token in a URL reaches proxy and
	// access logs: docs/streaming.md says so.
	fromQuery
	// fromCookie: the dashboard's session cookie (session.go).
	fromCookie
	// fromTicket: ?ticket=<watch ticket> for the route's video.
	fromTicket
)

// Where each kind of user route takes its credential from. Streams take no
// cookie: the dashboard streams with tickets, and a cookie that opened
// WebSockets would need guarding against other sites' pages.
const (
	apiSources     = fromHeader | fromQuery | fromCookie
	streamSources  = fromHeader | fromTicket | fromQuery
	ticketSources  = fromHeader | fromCookie
	sessionSources = fromHeader
)

// errCookieWithoutHeader refuses a request that changes something with the
// cookie alone: another site's form could send that (see session.go).
var errCookieWithoutHeader = &stephub.Error{Code: stephub.CodeUnauthorized,
	Message: "a request signed in by cookie must send the " + csrfHeader + " header unless it is a GET or HEAD"}

// credential is what a request was let in with.
type credential struct {
	user, email string
	// expires is when the credential does; a stream it opens ends then.
	expires time.Time
	// ticket is set for a watch ticket, which may only watch its video.
	ticket bool
}

type credentialKey struct{}

// credentialOf returns the credential that requireUser let the request in
// with.
func credentialOf(r *http.Request) credential {
	c, _ := r.Context().Value(credentialKey{}).(credential)
	return c
}

// userOf returns the id of the user that requireUser let through.
func userOf(r *http.Request) string { return credentialOf(r).user }

// requireUser lets through requests with a valid user credential from one
// of the sources in from, creating the user on first sight.
func (s *Server) requireUser(from source, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r, from)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		// A ticket's user was seen when the ticket was issued.
		if !c.ticket && !s.users.known(c.user) {
			if _, err := s.Users.EnsureUser(r.Context(), c.user, c.email, s.cfg.NewUserCredits); err != nil {
				s.writeError(w, r, err)
				return
			}
			s.users.add(c.user)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), credentialKey{}, c)))
	})
}

// authenticate checks the first credential the request has, in the order
// Authorization header, ?ticket=, ?token=, cookie, among the sources in
// from; one that is present but not valid is not made up for by the next.
func (s *Server) authenticate(r *http.Request, from source) (credential, error) {
	if token, ok := auth.HeaderToken(r); ok {
		return s.accessToken(token)
	}
	q := r.URL.Query()
	if from&fromTicket != 0 && q.Has("ticket") {
		id, err := videoID(r)
		if err != nil {
			return credential{}, stephub.ErrUnauthorized
		}
		claims, err := s.Signer.VerifyTicket(q.Get("ticket"), id)
		if err != nil {
			return credential{}, stephub.ErrUnauthorized
		}
		return credential{user: claims.Subject, expires: claims.ExpiresAt.Time, ticket: true}, nil
	}
	if from&fromQuery != 0 && q.Has("token") {
		return s.accessToken(q.Get("token"))
	}
	if from&fromCookie != 0 {
		if cookie, err := r.Cookie(sessionCookie); err == nil {
			if !safeMethod(r.Method) && r.Header.Get(csrfHeader) == "" {
				return credential{}, errCookieWithoutHeader
			}
			return s.accessToken(cookie.Value)
		}
	}
	return credential{}, stephub.ErrUnauthorized
}

// accessToken checks a user's access token.
func (s *Server) accessToken(token string) (credential, error) {
	claims, err := s.Signer.Verify(token)
	if err != nil {
		return credential{}, stephub.ErrUnauthorized
	}
	if err := storableClaims(claims); err != nil {
		return credential{}, err
	}
	return credential{user: claims.Subject, email: claims.Email, expires: claims.ExpiresAt.Time}, nil
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

// requireStatic lets through requests whose Authorization header carries
// want. Never the query: these tokens do not expire, and a URL travels
// into logs.
func (s *Server) requireStatic(want string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := auth.HeaderToken(r)
		if !auth.StaticTokenValid(token, want) {
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

// maxSlotWaiters bounds the streams of one user that wait for a slot at
// once; more are refused at once, so that the wait cannot be used to hold
// connections.
const maxSlotWaiters = 4

// streamCounter caps each user's concurrent streams. It is safe for
// concurrent use.
type streamCounter struct {
	max   int
	mu    sync.Mutex
	users map[string]*userStreams
}

// userStreams is one user's count of streams.
type userStreams struct {
	open, waiting int
	// freed is closed when one of the user's streams ends while others
	// wait for a slot; nil while none waits.
	freed chan struct{}
}

func newStreamCounter(max int) *streamCounter {
	return &streamCounter{max: max, users: make(map[string]*userStreams)}
}

// acquire counts a new stream of the user. At the cap it waits up to
// slotWait for a slot, unless maxSlotWaiters already wait, and then fails
// with ErrTooManyStreams. The returned func releases the slot.
func (c *streamCounter) acquire(ctx context.Context, user string) (release func(), err error) {
	freed, ok := c.take(user, false)
	if ok {
		return func() { c.release(user) }, nil
	}
	if freed == nil {
		return nil, stephub.ErrTooManyStreams
	}
	defer c.stopWaiting(user)
	t := time.NewTimer(slotWait)
	defer t.Stop()
	for {
		select {
		case <-freed:
		case <-t.C:
			return nil, stephub.ErrTooManyStreams
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if freed, ok = c.take(user, true); ok {
			return func() { c.release(user) }, nil
		}
	}
}

// take counts a stream of the user if the cap allows. Otherwise it returns
// the channel that tells of the next slot freed, counting the caller as a
// waiter unless it waits already, or nil when too many wait.
func (c *streamCounter) take(user string, waiting bool) (freed <-chan struct{}, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[user]
	if u == nil {
		u = new(userStreams)
		c.users[user] = u
	}
	if c.max <= 0 || u.open < c.max {
		u.open++
		return nil, true
	}
	if !waiting {
		if u.waiting >= maxSlotWaiters {
			return nil, false
		}
		u.waiting++
	}
	if u.freed == nil {
		u.freed = make(chan struct{})
	}
	return u.freed, false
}

// stopWaiting uncounts a waiter of the user.
func (c *streamCounter) stopWaiting(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[user]
	u.waiting--
	c.forget(user, u)
}

func (c *streamCounter) release(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.users[user]
	u.open--
	if u.freed != nil {
		close(u.freed)
		u.freed = nil
	}
	c.forget(user, u)
}

// forget drops the count of a user with no stream and no waiter.
func (c *streamCounter) forget(user string, u *userStreams) {
	if u.open == 0 && u.waiting == 0 {
		delete(c.users, user)
	}
}
