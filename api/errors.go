package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/stephub/stephub"
)

// statusOf maps each client-visible error code to its HTTP status.
var statusOf = map[string]int{
	stephub.CodeUnauthorized:         http.StatusUnauthorized,
	stephub.CodeUnsupportedMedia:     http.StatusUnsupportedMediaType,
	stephub.CodeBodyTooLarge:         http.StatusRequestEntityTooLarge,
	stephub.CodeInvalidJSON:          http.StatusBadRequest,
	stephub.CodeBadLastEventID:       http.StatusBadRequest,
	stephub.CodeValidation:           http.StatusUnprocessableEntity,
	stephub.CodeSubscriptionInactive: http.StatusForbidden,
	stephub.CodeInsufficientCredits:  http.StatusPaymentRequired,
	stephub.CodeNotFound:             http.StatusNotFound,
	codeMethodNotAllowed:             http.StatusMethodNotAllowed,
	codeNotWebSocket:                 http.StatusBadRequest,
	codeBadOrigin:                    http.StatusForbidden,
	codeBodyTimeout:                  http.StatusRequestTimeout,
	stephub.CodeVideoFinished:        http.StatusConflict,
	stephub.CodeVideoCancelled:       http.StatusConflict,
	stephub.CodeLeaseLost:            http.StatusConflict,
	stephub.CodeLeaseHeld:            http.StatusConflict,
	stephub.CodeTooManyStreams:       http.StatusTooManyRequests,
	stephub.CodeUnavailable:          http.StatusServiceUnavailable,
	stephub.CodeInternal:             http.StatusInternalServerError,
}

const codeMethodNotAllowed = "method_not_allowed"

var (
	errMethodNotAllowed = &stephub.Error{Code: codeMethodNotAllowed, Message: "method not allowed"}
	errInternal         = &stephub.Error{Code: stephub.CodeInternal, Message: "internal server error"}
)

// errorBody is the JSON of every error response.
type errorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields,omitempty"`
	} `json:"error"`
}

// writeError is the single exit for failed requests. Client errors go back
// as they are; anything else is logged with its cause and answered as a 503
// when the database is unreachable, or a 500 that says nothing more.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *stephub.Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return // the client left; nobody to answer
		}
		e = errInternal
		if s.databaseDown(r.Context()) {
			e = stephub.ErrUnavailable
		}
		s.Logger.Error("request failed", "method", r.Method, "route", routeOf(r), "err", err)
	}
	var body errorBody
	body.Error.Code, body.Error.Message, body.Error.Fields = e.Code, e.Message, e.Fields
	if e.Code == stephub.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stephub"`)
	}
	if r.ProtoMajor == 1 && bodyUnread(r) {
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, statusOf[e.Code], body)
}

// databaseDown tells a failing database from a failing query, so that a dead
// database is reported as such.
func (s *Server) databaseDown(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	return s.Database.Ping(ctx) != nil
}
