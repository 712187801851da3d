// Package auth issues and checks the HS256 access tokens that users carry,
// the watch tickets that let a client stream one video for a few minutes,
// and the static bearer tokens of workers and admins.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TicketAudience is the audience of every watch ticket. A user token never
// has it, and Verify refuses any token that does, so that neither can pass
// for the other.
const TicketAudience = "stephub-watch-ticket"

// Claims are what a valid user token says: the user id and, optionally, an
// email address.
type Claims struct {
	Email string `json:"email,omitempty"`
	jwt.RegisteredClaims
}

// TicketClaims are what a valid watch ticket says: the user, the one video
// it may stream, and when it expires.
type TicketClaims struct {
	VideoID int64 `json:"vid"`
	jwt.RegisteredClaims
}

// Signer issues and verifies user tokens and watch tickets with one HS256
// secret. It is safe for concurrent use.
type Signer struct {
	secret []byte
	now    func() time.Time
}

// NewSigner returns a Signer for secret, which must not be empty.
func NewSigner(secret string) (*Signer, error) {
	if secret == "" {
		return nil, errors.New("auth: empty JWT secret")
	}
	return &Signer{secret: []byte(secret), now: time.Now}, nil
}

// Issue returns a token for the user sub that expires after ttl.
func (s *Signer) Issue(sub, email string, ttl time.Duration) (string, error) {
	if sub == "" {
		return "", errors.New("auth: empty subject")
	}
	now := s.now()
	claims := Claims{
		Email: email,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return s.sign(claims)
}

// Verify checks a user token's signature, algorithm and expiry, and that it
// names a user. Tokens without an expiry are refused, and so are watch
// tickets.
func (s *Signer) Verify(token string) (Claims, error) {
	var claims Claims
	if err := s.parse(token, &claims); err != nil {
		return Claims{}, err
	}
	if slices.Contains(claims.Audience, TicketAudience) {
		return Claims{}, errors.New("auth: a watch ticket is not an access token")
	}
	if claims.Subject == "" {
		return Claims{}, errors.New("auth: token has no subject")
	}
	return claims, nil
}

// IssueTicket returns a watch ticket that lets the user sub stream the
// video videoID, and nothing else, until expires (to the second, as JWT
// times go); the returned time is the ticket's own expiry.
func (s *Signer) IssueTicket(sub string, videoID int64, expires time.Time) (string, time.Time, error) {
	if sub == "" || videoID <= 0 {
		return "", time.Time{}, errors.New("auth: a ticket needs a user and a video")
	}
	exp := jwt.NewNumericDate(expires)
	claims := TicketClaims{
		VideoID: videoID,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			Audience:  jwt.ClaimStrings{TicketAudience},
			IssuedAt:  jwt.NewNumericDate(s.now()),
			ExpiresAt: exp,
		},
	}
	ticket, err := s.sign(claims)
	return ticket, exp.Time, err
}

// VerifyTicket checks a watch ticket as Verify checks a token, and that it
// is a ticket for the video videoID.
func (s *Signer) VerifyTicket(ticket string, videoID int64) (TicketClaims, error) {
	var claims TicketClaims
	if err := s.parse(ticket, &claims, jwt.WithAudience(TicketAudience)); err != nil {
		return TicketClaims{}, err
	}
	if claims.Subject == "" || claims.VideoID != videoID {
		return TicketClaims{}, errors.New("auth: the ticket is not for this video")
	}
	return claims, nil
}

func (s *Signer) sign(claims jwt.Claims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
}

// parse checks a token's signature (in constant time, as HMAC checks go),
// algorithm and expiry, and decodes its claims.
func (s *Signer) parse(token string, claims jwt.Claims, opts ...jwt.ParserOption) error {
	opts = append(opts,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		// Base64 with stray bits would let one token have many spellings.
		jwt.WithStrictDecoding(),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if _, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return s.secret, nil }, opts...); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

// HeaderToken returns the bearer token of the request's Authorization
// header, and whether the request has that header at all: a header of
// another scheme is present, but holds no token.
func HeaderToken(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, token, ok := strings.Cut(h, " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token), true
	}
	return "", true
}

// StaticTokenValid reports whether got equals want in constant time; an empty
// want accepts nothing, so an unset worker or admin token closes its routes.
func StaticTokenValid(got, want string) bool {
	// Hashed first: ConstantTimeCompare returns at once on a length
	// mismatch, which would tell the token's length.
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return want != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
