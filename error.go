package stephub

import (
	"sort"
	"strings"
)

// Error is a failure a client can act on: a stable snake_case Code, a Message
// safe to show, and for validation failures the offending Fields. Anything
// that is not an *Error is internal and reaches clients only as "internal".
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return e.Message + " (" + strings.Join(parts, "; ") + ")"
}

// Is makes errors.Is match two *Error values by Code, so a sentinel matches
// the same failure carrying a more specific message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Codes of the errors clients can see.
const (
	CodeUnauthorized         = "unauthorized"
	CodeUnsupportedMedia     = "unsupported_media_type"
	CodeBodyTooLarge         = "body_too_large"
	CodeInvalidJSON          = "invalid_json"
	CodeValidation           = "validation_failed"
	CodeSubscriptionInactive = "subscription_inactive"
	CodeInsufficientCredits  = "insufficient_credits"
	CodeNotFound             = "not_found"
	CodeVideoFinished        = "video_finished"
	CodeVideoCancelled       = "video_cancelled"
	CodeLeaseLost            = "lease_lost"
	CodeLeaseHeld            = "lease_held"
	CodeBadLastEventID       = "bad_last_event_id"
	CodeTooManyStreams       = "too_many_streams"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal"
)

// Sentinel errors; compare with errors.Is.
var (
	ErrUnauthorized         = &Error{Code: CodeUnauthorized, Message: "missing or invalid access token"}
	ErrNotFound             = &Error{Code: CodeNotFound, Message: "not found"}
	ErrInsufficientCredits  = &Error{Code: CodeInsufficientCredits, Message: "not enough credits for this generation"}
	ErrSubscriptionInactive = &Error{Code: CodeSubscriptionInactive, Message: "your subscription is not active"}
	ErrVideoFinished        = &Error{Code: CodeVideoFinished, Message: "the video is already finished"}
	ErrVideoCancelled       = &Error{Code: CodeVideoCancelled, Message: "the video was cancelled"}
	ErrLeaseLost            = &Error{Code: CodeLeaseLost, Message: "this lease token is not the video's current one: the lease ran out and the video went back to the queue or to another runner"}
	ErrLeaseHeld            = &Error{Code: CodeLeaseHeld, Message: "another runner holds the video's lease, and takes posts only with its lease token"}
	ErrTooManyStreams       = &Error{Code: CodeTooManyStreams, Message: "too many open streams for this user"}
	ErrUnavailable          = &Error{Code: CodeUnavailable, Message: "the service is temporarily unavailable"}
)

// Invalid returns a validation error naming each bad field and what is wrong
// with it.
func Invalid(fields map[string]string) *Error {
	return &Error{Code: CodeValidation, Message: "the request is not valid", Fields: fields}
}
