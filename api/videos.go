package api

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"
	"github.com/stephub/stephub"
	"github.com/stephub/stephub/internal/decimal"
)

// Limits of a generate request.
const (
	minPromptChars = 10
	maxPromptChars = 2000
	maxURLChars    = 2048
)

// models are the models a video can be generated with.
var models = []string{"sora-2", "sora-2-pro"}

// Paging of the video list.
const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// videoID reads the :id of a route: a positive integer, or not found.
func videoID(r *http.Request) (int64, error) {
	id, ok := decimal.Parse(httprouter.ParamsFromContext(r.Context()).ByName("id"))
	if !ok || id == 0 {
		return 0, stephub.ErrNotFound
	}
	return id, nil
}

type generateRequest struct {
	Prompt            string  `json:"prompt"`
	Model             string  `json:"model"`
	ReferenceImageURL *string `json:"reference_image_url"`
}

// valid trims the prompt and reports what is wrong with each field.
func (req *generateRequest) valid() map[string]string {
	problems := make(map[string]string)
	req.Prompt = strings.TrimSpace(req.Prompt)
	if p := textProblem(req.Prompt, maxPromptChars); p != "" {
		problems["prompt"] = p
	} else if utf8.RuneCountInString(req.Prompt) < minPromptChars {
		problems["prompt"] = "must be 10 to 2000 characters"
	}
	// A model is one of a list, so only listed strings are stored.
	if !slices.Contains(models, req.Model) {
		problems["model"] = "must be one of " + strings.Join(models, ", ")
	}
	if u := req.ReferenceImageURL; u != nil {
		if p := textProblem(*u, maxURLChars); p != "" {
			problems["reference_image_url"] = p
		} else if !isHTTPURL(*u) {
			problems["reference_image_url"] = "must be an http or https URL"
		}
	}
	return problems
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (s *Server) handleGenerate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req generateRequest
		if err := decode(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		if problems := req.valid(); len(problems) > 0 {
			s.writeError(w, r, stephub.Invalid(problems))
			return
		}
		v, err := s.Jobs.Generate(r.Context(), userOf(r), req.Prompt, req.Model, req.ReferenceImageURL)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Location", "/api/v1/videos/"+strconv.FormatInt(v.ID, 10))
		writeJSON(w, http.StatusCreated, v)
	})
}

func (s *Server) handleListVideos() http.Handler {
	type response struct {
		Videos     []stephub.Video `json:"videos"`
		NextCursor *string         `json:"next_cursor"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		problems := make(map[string]string)
		limit := defaultPageSize
		if v := q.Get("limit"); v != "" {
			n, ok := decimal.Parse(v)
			if !ok || n < 1 || n > maxPageSize {
				problems["limit"] = "must be an integer from 1 to 100"
			}
			limit = int(n)
		}
		var before int64
		if v := q.Get("cursor"); v != "" {
			n, ok := decimal.Parse(v)
			if !ok || n == 0 {
				problems["cursor"] = "must be a next_cursor this API returned"
			}
			before = n
		}
		if len(problems) > 0 {
			s.writeError(w, r, stephub.Invalid(problems))
			return
		}
		videos, err := s.Videos.ListVideos(r.Context(), userOf(r), before, limit+1)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp := response{Videos: videos}
		if len(videos) > limit {
			resp.Videos = videos[:limit]
			next := strconv.FormatInt(videos[limit-1].ID, 10)
			resp.NextCursor = &next
		}
		if resp.Videos == nil {
			resp.Videos = []stephub.Video{}
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

func (s *Server) handleGetVideo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := videoID(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		v, err := s.Videos.UserVideo(r.Context(), userOf(r), id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

func (s *Server) handleCancel() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := videoID(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		v, err := s.Jobs.Cancel(r.Context(), userOf(r), id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}
