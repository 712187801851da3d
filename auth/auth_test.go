package auth_test

import (
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/stephub/stephub/auth"
)

func TestIssueThenVerify(t *testing.T) {
	s, err := auth.NewSigner("secret")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Issue("alice", "alice@example.com", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := s.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != "alice" || claims.Email != "alice@example.com" {
		t.Errorf("claims = %+v; want alice, alice@example.com", claims)
	}
}

// TestVerifyRefuses lists the tokens that must never pass.
func TestVerifyRefuses(t *testing.T) {
	s, _ := auth.NewSigner("secret")
	other, _ := auth.NewSigner("other secret")
	expired, _ := s.Issue("alice", "", -time.Second)
	forged, _ := other.Issue("alice", "", time.Minute)
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	future := time.Now().Add(time.Hour).Unix()
	for name, tok := range map[string]string{
		"empty":      "",
		"not a JWT":  "not.a.jwt",
		"expired":    expired,
		"forged":     forged,
		"no expiry":  sign(jwt.SigningMethodHS256, []byte("secret"), jwt.MapClaims{"sub": "alice"}),
		"no subject": sign(jwt.SigningMethodHS256, []byte("secret"), jwt.MapClaims{"exp": future}),
		"HS512":      sign(jwt.SigningMethodHS512, []byte("secret"), jwt.MapClaims{"sub": "alice", "exp": future}),
		"alg none":   sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice", "exp": future}),
		"tampered":   tamper(t, s),
	} {
		if claims, err := s.Verify(tok); err == nil {
			t.Errorf("%s: Verify = %+v, nil; want an error", name, claims)
		}
	}
	if _, err := auth.NewSigner(""); err == nil {
		t.Error("NewSigner(\"\") = nil error; want one")
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header, query, want string
	}{
		{"Bearer abc", "", "abc"},
		{"bearer  abc ", "", "abc"},
		{"", "q", "q"},
		{"Bearer h", "q", "h"}, // the header wins
		{"Basic abc", "q", ""}, // a header of another scheme is no token, whatever the query
	} {
		r := httptest.NewRequest("GET", "/x?token="+tc.query, nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if got := auth.BearerToken(r); got != tc.want {
			t.Errorf("header %q, query %q: got %q; want %q", tc.header, tc.query, got, tc.want)
		}
	}
}

func TestStaticTokenValid(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		ok        bool
	}{
		{"w", "w", true},
		{"w", "x", false},
		{"", "", false}, // an unset token opens nothing
		{"w", "", false},
	} {
		if ok := auth.StaticTokenValid(tc.got, tc.want); ok != tc.ok {
			t.Errorf("StaticTokenValid(%q, %q) = %v; want %v", tc.got, tc.want, ok, tc.ok)
		}
	}
}

// tamper returns a valid token of s whose payload now names another user.
func tamper(t *testing.T, s *auth.Signer) string {
	t.Helper()
	tok, err := s.Issue("alice", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"mallory","exp":%d}`, time.Now().Add(time.Hour).Unix())))
	return strings.Join(parts, ".")
}
