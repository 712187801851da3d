package api

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/stephub/stephub"
)

// bodyTimeout bounds the upload of a request body, so that a client that
// announces a body and then sends it a byte at a time cannot hold a
// connection (and its file descriptor) for long.
const bodyTimeout = 10 * time.Second

const codeBodyTimeout = "request_timeout"

var errBodyTimeout = &stephub.Error{Code: codeBodyTimeout, Message: "the request body did not arrive in time"}

// limitBodies gives every request body bodyTimeout to arrive. Requests
// without a body are left alone: streams and long-polling claims wait for
// as long as they need.
func limitBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			rc := http.NewResponseController(w)
			// Without deadline support there is no connection to hold.
			if rc.SetReadDeadline(time.Now().Add(bodyTimeout)) == nil {
				r.Body = &timedBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// timedBody is a request body under a read deadline. Once read to its end,
// the deadline is lifted, so that a handler that goes on waiting keeps its
// connection.
type timedBody struct {
	io.ReadCloser
	rc  *http.ResponseController
	eof bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF && !b.eof:
		b.eof = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errBodyTimeout
	}
	return n, err
}

// bodyUnread reports whether r may still have body bytes on the way that
// its handler did not read. An answer to it closes the connection rather
// than wait for them, as net/http otherwise would before the next request.
func bodyUnread(r *http.Request) bool {
	b, ok := r.Body.(*timedBody)
	return ok && !b.eof
}

// discardBody reads to its end, and drops, a body that the route does not
// take, up to maxBodyBytes. Until a body is read to its end, net/http does
// not watch the connection, so a client that hangs up goes unnoticed and
// the request's context never ends.
func discardBody(w http.ResponseWriter, r *http.Request) error {
	_, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errBodyTooLarge
	}
	return err
}
