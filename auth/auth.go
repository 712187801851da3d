// Package auth issues and checks the HS256 access tokens that users carry,
// and the static bearer tokens of workers and admins.
package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what a valid user token says: the user id and, optionally, an
// email address.
type Claims struct {
	Email string `json:"email,omitempty"`
	jwt.RegisteredClaims
}

// Signer issues and verifies user tokens with one HS256 secret. It is safe for
// concurrent use.
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
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
}

// Verify checks a token's signature, algorithm and expiry, and that it names
// a user. Tokens without an expiry are refused.
func (s *Signer) Verify(token string) (Claims, error) {
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return s.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("auth: %w", err)
	}
	if claims.Subject == "" {
		return Claims{}, errors.New("auth: token has no subject")
	}
	return claims, nil
}

// BearerToken returns the token of the request: from the Authorization
// header, or else from the token query parameter, since EventSource cannot
// set headers.
func BearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
		return ""
	}
	return r.URL.Query().Get("token")
}

// StaticTokenValid reports whether got equals want in constant time; an empty
// want accepts nothing, so an unset worker or admin token closes its routes.
func StaticTokenValid(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
