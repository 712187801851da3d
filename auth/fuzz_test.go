package auth_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stephub/stephub/auth"
)

// FuzzVerifyArbitrary hands Verify and VerifyTicket whatever comes, seeded
// with real tokens and their near misses: nothing passes that does not say
// what the signer issued, and nothing panics.
func FuzzVerifyArbitrary(f *testing.F) {
	s, _ := auth.NewSigner("secret")
	tok, _ := s.Issue("alice", "a@example.com", time.Hour)
	ticket, _, _ := s.IssueTicket("alice", 7, time.Now().Add(time.Hour))
	for _, seed := range []string{tok, ticket, "", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", strings.Repeat(".", 100)} {
		f.Add(seed)
	}
	// Each fuzzing process issues its own seeds, a second apart maybe: what
	// passes must carry the claims of what this signer issued, no more.
	f.Fuzz(func(t *testing.T, token string) {
		if claims, err := s.Verify(token); err == nil && (claims.Subject != "alice" || claims.Email != "a@example.com") {
			t.Fatalf("Verify(%q) = %+v; want an error", token, claims)
		}
		if claims, err := s.VerifyTicket(token, 7); err == nil && (claims.Subject != "alice" || claims.VideoID != 7) {
			t.Fatalf("VerifyTicket(%q) = %+v; want an error", token, claims)
		}
	})
}

// FuzzTokenRoundTrip issues tokens and tickets for any user, email and
// video: each reads back as issued, in its own role only, and no change to
// its signed part gets through.
func FuzzTokenRoundTrip(f *testing.F) {
	f.Add("alice", "alice@example.com", int64(1), uint16(3))
	f.Add("用户", "", int64(1<<62), uint16(40))
	f.Add("a\x00b", "\xff", int64(-1), uint16(0))
	s, _ := auth.NewSigner("secret")
	f.Fuzz(func(t *testing.T, sub, email string, videoID int64, at uint16) {
		tok, err := s.Issue(sub, email, time.Hour)
		if sub == "" {
			if err == nil {
				t.Fatal("Issue with an empty subject succeeded")
			}
			return
		}
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		claims, err := s.Verify(tok)
		if err != nil {
			t.Fatalf("Verify of a fresh token: %v", err)
		}
		if utf8.ValidString(sub) && utf8.ValidString(email) && (claims.Subject != sub || claims.Email != email) {
			t.Fatalf("Verify = %q, %q; issued for %q, %q", claims.Subject, claims.Email, sub, email)
		}
		if _, err := s.VerifyTicket(tok, videoID); err == nil {
			t.Fatal("a user token passed as a ticket")
		}
		if signed := strings.LastIndexByte(tok, '.'); signed > 0 {
			i := int(at) % signed
			mutated := tok[:i] + string(tok[i]^1) + tok[i+1:]
			if _, err := s.Verify(mutated); err == nil {
				t.Fatalf("Verify passed a token changed at byte %d", i)
			}
		}

		ticket, _, err := s.IssueTicket(sub, videoID, time.Now().Add(time.Minute))
		if videoID <= 0 {
			if err == nil {
				t.Fatalf("IssueTicket for video %d succeeded", videoID)
			}
			return
		}
		if err != nil {
			t.Fatalf("IssueTicket: %v", err)
		}
		tc, err := s.VerifyTicket(ticket, videoID)
		if err != nil || tc.VideoID != videoID {
			t.Fatalf("VerifyTicket of a fresh ticket: %+v, %v", tc, err)
		}
		if _, err := s.VerifyTicket(ticket, videoID^1); err == nil {
			t.Fatalf("a ticket for video %d passed for video %d", videoID, videoID^1)
		}
		if _, err := s.Verify(ticket); err == nil {
			t.Fatal("a ticket passed as a user token")
		}
	})
}
