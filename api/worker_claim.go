package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/stephub/stephub"
)

// maxClaimWait bounds a claim's long poll, below the timeouts of common
// proxies.
const maxClaimWait = 60 * time.Second

// handleClaim leases the oldest pending video to the calling worker,
// waiting up to ?wait= (a Go duration or seconds) for one to come: 200 with
// the video, its lease's expiry and token, or 204 when none came.
func (s *Server) handleClaim() http.Handler {
	type response struct {
		Video          stephub.Video `json:"video"`
		LeaseExpiresAt *time.Time    `json:"lease_expires_at"`
		LeaseToken     string        `json:"lease_token"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait, err := parseWait(r.URL.Query().Get("wait"))
		if err != nil {
			s.writeError(w, r, stephub.Invalid(map[string]string{"wait": "must be a duration from 0 to 60s, like 30s"}))
			return
		}
		// A claim takes no body, but a client may send one ("{}"): read
		// first, so that a worker that hangs up while it waits ends the
		// request's context, and the claim with it.
		if err := discardBody(w, r); err != nil {
			s.writeError(w, r, err)
			return
		}
		l, err := s.Jobs.Claim(r.Context(), wait)
		switch {
		case errors.Is(err, stephub.ErrNotFound):
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
			// The worker gave up waiting; nobody to answer.
		case err != nil:
			s.writeError(w, r, err)
		default:
			writeJSON(w, http.StatusOK, response{Video: l.Video, LeaseExpiresAt: l.Video.LeaseExpiresAt, LeaseToken: l.Token})
			if err := http.NewResponseController(w).Flush(); err != nil || r.Context().Err() != nil {
				// The answer did not get out: nobody runs the video.
				s.Jobs.Unclaim(l)
			}
		}
	})
}

// parseWait reads a claim's wait: empty for none, a Go duration, or a
// number of seconds.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, err2 := strconv.ParseFloat(v, 64)
		if err2 != nil {
			return 0, err
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 || d > maxClaimWait {
		return 0, errors.New("wait out of range")
	}
	return d, nil
}
