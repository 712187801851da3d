package api

import (
	"net/http"
	"time"
)

// DefaultTicketTTL is how long a watch ticket lasts when Config leaves it
// unset.
const DefaultTicketTTL = 10 * time.Minute

// handleTicket answers POST /api/v1/videos/{id}/ticket with a watch ticket:
// a credential that may only open the video's /stream and /ws, for
// TicketTTL, and never beyond the credential that asked for it.
func (s *Server) handleTicket() http.Handler {
	type response struct {
		Ticket    string    `json:"ticket"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := videoID(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		c := credentialOf(r)
		if _, err := s.Videos.UserVideo(r.Context(), c.user, id); err != nil {
			s.writeError(w, r, err)
			return
		}
		expires := time.Now().Add(s.cfg.ticketTTL())
		if c.expires.Before(expires) {
			expires = c.expires
		}
		ticket, expires, err := s.Signer.IssueTicket(c.user, id, expires)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, response{Ticket: ticket, ExpiresAt: expires.UTC()})
	})
}
