package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/watcher"
)

// httpError is an error the server itself decides on (a malformed
// parameter, a body that is too large), already carrying its answer.
type httpError struct {
	status int
	code   string
	msg    string
	key    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *httpError {
	return errorf(http.StatusBadRequest, api.CodeBadRequest, format, args...)
}

// keyedError names the key an error is about, for ErrorBody.Key.
type keyedError struct {
	err error
	key string
}

func (e *keyedError) Error() string { return e.err.Error() }
func (e *keyedError) Unwrap() error { return e.err }

// withKey attaches key to err, unless err is nil.
func withKey(err error, key string) error {
	if err == nil {
		return nil
	}
	return &keyedError{err: err, key: key}
}

// errorBody maps err to an HTTP status and the error payload. The second
// result is false for errors that are not the caller's fault (500), whose
// message is generic and whose cause must be logged instead.
func errorBody(err error) (int, api.ErrorBody, bool) {
	var (
		he *httpError
		ce *audit.ConflictError
		ke *keyedError
		oe *audit.OwnedError
	)
	status, body, known := http.StatusInternalServerError, api.ErrorBody{Code: api.CodeInternal}, false
	switch {
	case errors.As(err, &he):
		status, body = he.status, api.ErrorBody{Code: he.code, Message: he.msg, Key: he.key}
		known = true
	case errors.Is(err, keyspace.ErrInvalidKey):
		status, body.Code, known = http.StatusBadRequest, api.CodeBadKey, true
	case errors.Is(err, audit.ErrNotFound):
		status, body.Code, known = http.StatusNotFound, api.CodeNotFound, true
	case errors.Is(err, audit.ErrRevisionGone):
		status, body.Code, known = http.StatusNotFound, api.CodeRevisionGone, true
	case errors.Is(err, audit.ErrFutureRevision), errors.Is(err, audit.ErrBadRange):
		status, body.Code, known = http.StatusBadRequest, api.CodeBadRevision, true
	case errors.As(err, &ce):
		status, body.Code, known = http.StatusConflict, api.CodeConflict, true
		body.Rev, body.Key = ce.Rev, ce.Key
	case errors.Is(err, audit.ErrConflict):
		status, body.Code, known = http.StatusConflict, api.CodeConflict, true
	case errors.As(err, &oe):
		status, body.Code, known = http.StatusConflict, api.CodeOwned, true
		body.Key = oe.Key
	case errors.Is(err, audit.ErrTooLarge):
		status, body.Code, known = http.StatusRequestEntityTooLarge, api.CodeTooLarge, true
	case errors.Is(err, audit.ErrContentType):
		status, body.Code, known = http.StatusUnsupportedMediaType, api.CodeBadContentType, true
	case errors.Is(err, audit.ErrInvalidValue):
		status, body.Code, known = http.StatusUnprocessableEntity, api.CodeInvalidValue, true
	case errors.Is(err, audit.ErrNoMasterKey):
		status, body.Code, known = http.StatusBadRequest, api.CodeNoMasterKey, true
	case errors.Is(err, audit.ErrBadRequest):
		status, body.Code, known = http.StatusBadRequest, api.CodeBadRequest, true
	case errors.Is(err, audit.ErrClosed), errors.Is(err, watcher.ErrClosed):
		status, body.Code, known = http.StatusServiceUnavailable, api.CodeUnavailable, true
	case errors.Is(err, audit.ErrDiskFull):
		status, body.Code, known = http.StatusInsufficientStorage, api.CodeDiskFull, true
		body.Message = diskFullMessage
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away or the server is out of time: nobody is
		// likely to read this, but say what happened.
		status, body.Code, known = http.StatusServiceUnavailable, api.CodeUnavailable, true
		body.Message = "request cancelled before it completed"
	}
	switch {
	case !known:
		body.Message = "internal error; the server log has the details"
	case body.Message == "":
		body.Message = err.Error()
	}
	if body.Key == "" && errors.As(err, &ke) {
		body.Key = ke.key
	}
	body.Message = oneLine(body.Message)
	body.Key = strings.ToValidUTF8(body.Key, "\uFFFD")
	return status, body, known
}

// diskFullMessage answers a write refused for want of room.
const diskFullMessage = "the disk holding configd's database is full: nothing was written; free space on configd's data volume, then retry"

// oneLine keeps a message on one line and valid UTF-8, so that it prints
// cleanly in a terminal and a log.
func oneLine(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Join(strings.Fields(s), " ")
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a failed write means the client is gone
}

// writeError writes an api.ErrorResponse.
func writeError(w http.ResponseWriter, status int, body api.ErrorBody) {
	writeJSON(w, status, api.ErrorResponse{Error: body})
}
