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
	future := time.Now().Add(time.Hour).Unix()
	for name, tok := range map[string]string{
		"empty":      "",
		"not a JWT":  "not.a.jwt",
		"expired":    expired,
		"forged":     forged,
		"no expiry":  hs256(t, jwt.MapClaims{"sub": "alice"}),
		"no subject": hs256(t, jwt.MapClaims{"exp": future}),
		"HS512":      sign(t, jwt.SigningMethodHS512, []byte("secret"), jwt.MapClaims{"sub": "alice", "exp": future}),
		"alg none":   sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice", "exp": future}),
		"tampered":   tamper(t, s, `{"sub":"mallory","exp":%d}`),
		"respelt":    respell(t, s),
	} {
		if claims, err := s.Verify(tok); err == nil {
			t.Errorf("%s: Verify = %+v, nil; want an error", name, claims)
		}
	}
	if _, err := auth.NewSigner(""); err == nil {
		t.Error("NewSigner(\"\") = nil error; want one")
	}
}

func TestHeaderToken(t *testing.T) {
	for _, tc := range []struct {
		header, want string
		present      bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer  abc ", "abc", true},
		{"", "", false},
		{"Basic abc", "", true}, // a header of another scheme is no token
	} {
		// The query never counts: worker and admin tokens, and the
		// session route, take the header alone.
		r := httptest.NewRequest("GET", "/x?token=q", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if got, present := auth.HeaderToken(r); got != tc.want || present != tc.present {
			t.Errorf("header %q: got %q, %v; want %q, %v", tc.header, got, present, tc.want, tc.present)
		}
	}
}

func TestTicketIssueThenVerify(t *testing.T) {
	s, _ := auth.NewSigner("secret")
	expires := time.Now().Add(10 * time.Minute)
	ticket, exp, err := s.IssueTicket("alice", 42, expires)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(expires.Truncate(time.Second)) {
		t.Errorf("IssueTicket's expiry = %v; want %v to the second", exp, expires)
	}
	claims, err := s.VerifyTicket(ticket, 42)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != "alice" || claims.VideoID != 42 || !claims.ExpiresAt.Time.Equal(exp) {
		t.Errorf("claims = %+v; want alice, video 42, expiring %v", claims, exp)
	}
}

// TestTicketRefusals lists what must never pass as a ticket for video 42,
// and checks that no ticket passes as a user token.
func TestTicketRefusals(t *testing.T) {
	s, _ := auth.NewSigner("secret")
	other, _ := auth.NewSigner("other secret")
	later := time.Now().Add(time.Hour)
	ticket := func(s *auth.Signer, sub string, video int64, expires time.Time) string {
		tok, _, err := s.IssueTicket(sub, video, expires)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	userToken, _ := s.Issue("alice", "", time.Hour)
	good := ticket(s, "alice", 42, later)
	for name, tok := range map[string]string{
		"empty":              "",
		"another video's":    ticket(s, "alice", 41, later),
		"a user token":       userToken,
		"expired":            ticket(s, "alice", 42, time.Now().Add(-time.Second)),
		"forged":             ticket(other, "alice", 42, later),
		"tampered":           tamper(t, s, `{"vid":42,"sub":"mallory","aud":["`+auth.TicketAudience+`"],"exp":%d}`),
		"no subject":         hs256(t, jwt.MapClaims{"vid": 42, "aud": auth.TicketAudience, "exp": later.Unix()}),
		"no expiry":          hs256(t, jwt.MapClaims{"vid": 42, "sub": "alice", "aud": auth.TicketAudience}),
		"another audience":   hs256(t, jwt.MapClaims{"vid": 42, "sub": "alice", "aud": "somebody-else", "exp": later.Unix()}),
		"vid as a string":    hs256(t, jwt.MapClaims{"vid": "42", "sub": "alice", "aud": auth.TicketAudience, "exp": later.Unix()}),
		"alg none":           sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"vid": 42, "sub": "alice", "aud": auth.TicketAudience, "exp": later.Unix()}),
		"the right one, cut": good[:len(good)-2],
		"signed as a user's": hs256(t, jwt.MapClaims{"vid": 42, "sub": "alice", "exp": later.Unix()}),
	} {
		if claims, err := s.VerifyTicket(tok, 42); err == nil {
			t.Errorf("%s: VerifyTicket = %+v, nil; want an error", name, claims)
		}
	}
	if _, err := s.VerifyTicket(good, 42); err != nil {
		t.Fatalf("the good ticket: %v", err)
	}
	for name, tok := range map[string]string{
		"a ticket":                     good,
		"a ticket with more audiences": hs256(t, jwt.MapClaims{"sub": "alice", "aud": []string{"x", auth.TicketAudience}, "exp": later.Unix()}),
	} {
		if claims, err := s.Verify(tok); err == nil {
			t.Errorf("%s passed as a user token: %+v", name, claims)
		}
	}
	for _, bad := range []struct {
		sub   string
		video int64
	}{{"", 42}, {"alice", 0}} {
		if _, _, err := s.IssueTicket(bad.sub, bad.video, later); err == nil {
			t.Errorf("IssueTicket(%q, %d) = nil error; want one", bad.sub, bad.video)
		}
	}
}

// sign signs claims with method and key.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// hs256 signs claims as the Signer for "secret" would.
func hs256(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, []byte("secret"), claims)
}

// tamper returns a valid token of s whose payload is now payload, with an
// expiry an hour from now for its %d.
func tamper(t *testing.T, s *auth.Signer, payload string) string {
	t.Helper()
	tok, err := s.Issue("alice", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(payload, time.Now().Add(time.Hour).Unix())))
	return strings.Join(parts, ".")
}

// respell returns a valid token with the last character of its signature
// changed in the bits that base64 leaves over: the same signature bytes to
// a lax decoder.
func respell(t *testing.T, s *auth.Signer) string {
	t.Helper()
	tok, err := s.Issue("alice", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[last^1])
}
