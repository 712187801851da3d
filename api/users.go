package api

import (
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"
	"github.com/stephub/stephub"
)

// maxUserIDChars bounds user ids, whether a token's sub or the admin
// route's: each is a key of the users table's index.
const maxUserIDChars = 255

func (s *Server) handleMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.Users.User(r.Context(), userOf(r))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
}

func (s *Server) handleAdminPutUser() http.Handler {
	type request struct {
		Credits            *int64                      `json:"credits"`
		SubscriptionStatus *stephub.SubscriptionStatus `json:"subscription_status"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := httprouter.ParamsFromContext(r.Context()).ByName("id")
		var req request
		if err := decode(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		problems := make(map[string]string)
		if p := textProblem(id, maxUserIDChars); p != "" {
			problems["id"] = p
		}
		if req.Credits == nil && req.SubscriptionStatus == nil {
			problems["credits"] = "give credits, subscription_status or both"
		}
		if req.Credits != nil && (*req.Credits < 0 || *req.Credits > stephub.MaxCredits) {
			problems["credits"] = "must be from 0 to " + strconv.FormatInt(stephub.MaxCredits, 10)
		}
		if req.SubscriptionStatus != nil && !req.SubscriptionStatus.Valid() {
			problems["subscription_status"] = `must be "active" or "inactive"`
		}
		if len(problems) > 0 {
			s.writeError(w, r, stephub.Invalid(problems))
			return
		}
		u, err := s.Users.UpdateUser(r.Context(), id, req.Credits, req.SubscriptionStatus, s.cfg.NewUserCredits)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
}
