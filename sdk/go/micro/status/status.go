// Package status is the error type of calls: a code, a message, the service and endpoint it
// concerns, and whether trying again (on another node) may succeed. It travels on the wire as
// JSON in the Micro-Error header.
package status

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Code classifies an error, with HTTP-like values as in go-micro.
type Code int32

// The codes the core produces.
const (
	BadRequest   Code = 400 // the request could not be decoded (codec mismatch, bad body)
	Unauthorized Code = 401 // no credentials, or credentials that do not verify (a gateway's JWT)
	Forbidden    Code = 403 // the credentials may not make this request
	NotFound     Code = 404 // unknown service or endpoint
	Timeout      Code = 408 // the deadline passed
	Canceled     Code = 499 // the caller gave up (canceled its context, closed its stream)
	TooMany      Code = 429 // rate limited
	Internal     Code = 500 // the handler failed or panicked
	Unavailable  Code = 503 // the node cannot take the call (draining, unreachable, breaker open)
	Unclassified Code = 0   // a handler's own error
)

// Error is a call error. The zero Retryable means "do not retry".
type Error struct {
	Code      Code   `json:"code"`
	Message   string `json:"message"`
	Service   string `json:"service,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	Retryable bool   `json:"retryable,omitempty"`
	cause     error
}

// Error implements error.
func (e *Error) Error() string {
	where := e.Service
	if e.Endpoint != "" {
		where += " " + e.Endpoint
	}
	if where != "" {
		where += ": "
	}
	return fmt.Sprintf("%s%s (%d)", where, e.Message, e.Code)
}

// Unwrap returns the cause, in the process where the error was made.
func (e *Error) Unwrap() error { return e.cause }

// New returns an Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with cause's text as the message and cause kept for errors.Is/As.
func Wrap(code Code, cause error, retryable bool) *Error {
	return &Error{Code: code, Message: cause.Error(), Retryable: retryable, cause: cause}
}

// From returns err as an *Error when it is one (or wraps one).
func From(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf returns err's code; Internal for a plain error, 0 for nil.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	if e, ok := From(err); ok {
		return e.Code
	}
	return Internal
}

// IsRetryable reports whether err is marked retryable.
func IsRetryable(err error) bool {
	e, ok := From(err)
	return ok && e.Retryable
}

// Retryable marks err retryable, for handlers whose failure another node may not share.
func Retryable(err error) error {
	if e, ok := From(err); ok {
		c := *e
		c.Retryable = true
		return &c
	}
	return Wrap(Internal, err, true)
}

// Marshal encodes e for the Micro-Error header.
func (e *Error) Marshal() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// Unmarshal decodes a Micro-Error header; text that is not JSON becomes an Internal error.
func Unmarshal(s string) *Error {
	var e Error
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return &Error{Code: Internal, Message: s}
	}
	return &e
}
