package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/stephub/stephub"
)

// maxBodyBytes bounds every request body.
const maxBodyBytes = 64 << 10

var errBodyTooLarge = &stephub.Error{Code: stephub.CodeBodyTooLarge, Message: "the body is larger than 64 KiB"}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is out; an encoding or write failure can only mean the
	// client went away.
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON request body into dst, a pointer to a struct,
// checking what the contract checks in its order: the media type (415), the
// size (413), the syntax (400), then the shape (422), keys included (see
// keyProblems).
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return &stephub.Error{Code: stephub.CodeUnsupportedMedia, Message: "Content-Type must be application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errBodyTooLarge
		}
		return err
	}
	if !json.Valid(body) {
		return &stephub.Error{Code: stephub.CodeInvalidJSON, Message: "the body is not valid JSON"}
	}
	if problems := keyProblems(body, namesOf(dst)); problems != nil {
		return stephub.Invalid(problems)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return stephub.Invalid(map[string]string{typeErr.Field: "must be " + jsonKind(typeErr.Type.Kind().String())})
		}
		return &stephub.Error{Code: stephub.CodeValidation, Message: "the body must be a JSON object"}
	}
	return nil
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "float64", "float32":
		return "a number"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "of another type"
}
