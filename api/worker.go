package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/stephub/stephub"
)

// Limits of a worker's event.
const (
	maxMessageChars      = 1000
	maxDataBytes         = 4 << 10
	maxIdempotencyKeyLen = 255
)

type workerEventRequest struct {
	Step     *int            `json:"step"`
	Message  *string         `json:"message"`
	Progress *int            `json:"progress"`
	Status   *stephub.Status `json:"status"`
	VideoURL *string         `json:"video_url"`
	Error    *string         `json:"error"`
	Data     json.RawMessage `json:"data"`
}

// step checks the request and turns it into the step to store. Whether step
// and progress go backwards is checked by the store, against the video as it
// is when the step is written.
func (req *workerEventRequest) step(idempotencyKey string) (stephub.Step, map[string]string) {
	problems := make(map[string]string)
	var st stephub.Step
	switch {
	case req.Step == nil:
		problems["step"] = "is required"
	case *req.Step < 1 || *req.Step > stephub.TotalSteps+1:
		problems["step"] = "must be from 1 to " + strconv.Itoa(stephub.TotalSteps+1)
	default:
		st.Step = *req.Step
	}
	switch {
	case req.Message == nil || *req.Message == "":
		problems["message"] = "is required"
	default:
		st.Message = *req.Message
		if p := textProblem(st.Message, maxMessageChars); p != "" {
			problems["message"] = p
		}
	}
	switch {
	case req.Progress == nil:
		problems["progress"] = "is required"
	case *req.Progress < 0 || *req.Progress > 100:
		problems["progress"] = "must be from 0 to 100"
	default:
		st.Progress = *req.Progress
	}
	st.Status = stephub.StatusProcessing
	if req.Status != nil {
		st.Status = *req.Status
	}
	switch st.Status {
	case stephub.StatusProcessing:
	case stephub.StatusCompleted:
		if req.VideoURL == nil || *req.VideoURL == "" {
			problems["video_url"] = "is required when status is completed"
		}
	case stephub.StatusFailed:
		if req.Error == nil || *req.Error == "" {
			problems["error"] = "is required when status is failed"
		}
	default:
		problems["status"] = `must be "processing", "completed" or "failed"`
	}
	if req.VideoURL != nil {
		if p := textProblem(*req.VideoURL, maxURLChars); p != "" {
			problems["video_url"] = p
		}
	}
	if req.Error != nil {
		if p := textProblem(*req.Error, maxMessageChars); p != "" {
			problems["error"] = p
		}
	}
	st.VideoURL, st.Error = req.VideoURL, req.Error
	if len(req.Data) > 0 && !bytes.Equal(req.Data, []byte("null")) {
		var compact bytes.Buffer
		switch {
		case bytes.TrimSpace(req.Data)[0] != '{':
			problems["data"] = "must be a JSON object"
		case json.Compact(&compact, req.Data) != nil || compact.Len() > maxDataBytes:
			problems["data"] = "must be at most 4 KiB of JSON"
		default:
			// Valid JSON holds no raw NUL (an escaped one is six
			// characters that both databases store) and is within
			// 4 KiB, so only invalid UTF-8 can be refused here.
			if p := textProblem(compact.String(), maxDataBytes); p != "" {
				problems["data"] = p
			}
			st.Data = compact.Bytes()
		}
	}
	if p := textProblem(idempotencyKey, maxIdempotencyKeyLen); p != "" {
		problems["Idempotency-Key"] = p
	}
	st.IdempotencyKey = idempotencyKey
	return st, problems
}

// leaseTokenHeader carries a worker's lease token: on its posts, and on
// the answer to a post that claimed a pending video.
const leaseTokenHeader = "Lease-Token"

// handleWorkerEvent stores a worker's step and broadcasts it. A worker that
// should stop (the video is finished, or its lease is lost or held by
// another runner) is told so before anything else is looked at, its body
// included.
func (s *Server) handleWorkerEvent() http.Handler {
	type response struct {
		ID int64 `json:"id"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := videoID(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		key, lease := r.Header.Get("Idempotency-Key"), r.Header.Get(leaseTokenHeader)
		// A key that no database could store was never stored: it is
		// looked up as none, and refused as a field once the post may
		// go on.
		storedKey := key
		if textProblem(key, maxIdempotencyKeyLen) != "" {
			storedKey = ""
		}
		// Before the body: the answer closes the connection rather than
		// wait for a body that would be refused anyway.
		err = s.Videos.ForecastPost(r.Context(), id, storedKey, lease)
		if err == nil && s.Jobs.RunsEveryVideo() {
			// Even a pending video, which a post would otherwise claim,
			// is the built-in pipeline's to run.
			err = stephub.ErrLeaseHeld
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var req workerEventRequest
		err = decode(w, r, &req)
		var step stephub.Step
		if err == nil {
			var problems map[string]string
			if step, problems = req.step(key); len(problems) > 0 {
				err = stephub.Invalid(problems)
			}
		}
		if err != nil {
			// The forecast may be stale; a refusal still outranks a bad
			// body, though not one that never came: net/http has given
			// up on its connection. The store checks again as it
			// appends, so only a refused body costs this read.
			if !errors.Is(err, errBodyTimeout) {
				if verr := s.Videos.CheckPost(r.Context(), id, storedKey, lease); verr != nil {
					err = verr
				}
			}
			s.writeError(w, r, err)
			return
		}
		step.LeaseToken = lease
		ev, leaseToken, err := s.Jobs.Post(r.Context(), id, step)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if leaseToken != "" {
			w.Header().Set(leaseTokenHeader, leaseToken)
		}
		writeJSON(w, http.StatusAccepted, response{ID: ev.ID})
	})
}
