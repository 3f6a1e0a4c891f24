package apiclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/configd/configd/api"
)

// Sentinel errors. An *Error matches the one of its code with errors.Is:
//
//	if errors.Is(err, apiclient.ErrNotFound) { ... }
var (
	// ErrNotFound: the key does not exist (at the revision asked for).
	ErrNotFound = errors.New("not found")
	// ErrRevisionGone: the revision does not exist or is no longer retained.
	ErrRevisionGone = errors.New("revision gone")
	// ErrConflict: a compare-and-set condition (IfModRev, a transaction's
	// IfModRev, a rollback's ExpectRev) failed; nothing was written.
	ErrConflict = errors.New("conflict")
	// ErrBadKey: configd refused a key or prefix (see package keyspace).
	ErrBadKey = errors.New("bad key")
	// ErrBadRequest: configd refused the request as malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrBadRevision: a revision in the future, or a reversed range.
	ErrBadRevision = errors.New("bad revision")
	// ErrTooLarge: the value is larger than configd accepts.
	ErrTooLarge = errors.New("value too large")
	// ErrBadContentType: configd does not know the content type.
	ErrBadContentType = errors.New("bad content type")
	// ErrInvalidValue: the value does not parse under its content type.
	ErrInvalidValue = errors.New("invalid value")
	// ErrSchema: the write would break a prefix's JSON Schema, or a new
	// schema is broken by the current state; nothing was written. The
	// *Error's Key names the key at fault, its message the JSON pointer
	// inside its value, the rule and the schema's prefix.
	ErrSchema = errors.New("schema violation")
	// ErrUnauthenticated: configd wants a bearer token (WithToken), or does
	// not know (or has revoked) the one sent.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the token lacks the permission the request needs.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: configd cannot serve the request now.
	ErrUnavailable = errors.New("unavailable")
	// ErrStoreUnavailable: a replica of a configd cluster cannot reach its
	// cluster's etcd (or etcd has no quorum): the write was not
	// acknowledged; reads go on. It also matches ErrUnavailable.
	ErrStoreUnavailable = errors.New("store unavailable")
	// ErrInternal: configd failed on its side.
	ErrInternal = errors.New("internal error")
	// ErrUnreachable: no answer came from configd (connection refused, DNS,
	// TLS, connection reset). Errors that match it also match the
	// underlying network error.
	ErrUnreachable = errors.New("configd unreachable")
	// ErrTLS: the TLS handshake with configd failed: its certificate is
	// not signed by a trusted CA (WithTLS) or not for its address, or
	// configd refused the client certificate (or its absence). Errors that
	// match it also match ErrUnreachable.
	ErrTLS = errors.New("TLS handshake with configd failed")
)

// codeSentinels maps each api error code to its sentinel.
var codeSentinels = map[string]error{
	api.CodeNotFound:         ErrNotFound,
	api.CodeRevisionGone:     ErrRevisionGone,
	api.CodeConflict:         ErrConflict,
	api.CodeBadKey:           ErrBadKey,
	api.CodeBadRequest:       ErrBadRequest,
	api.CodeBadRevision:      ErrBadRevision,
	api.CodeTooLarge:         ErrTooLarge,
	api.CodeBadContentType:   ErrBadContentType,
	api.CodeInvalidValue:     ErrInvalidValue,
	api.CodeSchema:           ErrSchema,
	api.CodeUnavailable:      ErrUnavailable,
	api.CodeStoreUnavailable: ErrStoreUnavailable,
	api.CodeInternal:         ErrInternal,
	api.CodeUnauthenticated:  ErrUnauthenticated,
	api.CodeForbidden:        ErrForbidden,
}

// statusSentinels is the fallback for answers without a known code (a proxy
// in front of configd, a configd newer than this client).
var statusSentinels = map[int]error{
	http.StatusNotFound:              ErrNotFound,
	http.StatusConflict:              ErrConflict,
	http.StatusBadRequest:            ErrBadRequest,
	http.StatusRequestEntityTooLarge: ErrTooLarge,
	http.StatusUnsupportedMediaType:  ErrBadContentType,
	http.StatusUnprocessableEntity:   ErrInvalidValue,
	http.StatusServiceUnavailable:    ErrUnavailable,
	http.StatusUnauthorized:          ErrUnauthenticated,
	http.StatusForbidden:             ErrForbidden,
	http.StatusInternalServerError:   ErrInternal,
}

// Error is an error answered by configd: a non-2xx status with an
// api.ErrorResponse body.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is one of the api.Code* constants ("" when the body was not an
	// api.ErrorResponse).
	Code string
	// Message is configd's explanation, meant for people.
	Message string
	// Rev is configd's current revision, on conflicts.
	Rev int64
	// Key names the key at fault, when there is one.
	Key string
}

// Error returns configd's message, or the HTTP status when it sent none.
func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	if e.Code != "" {
		return fmt.Sprintf("configd: %s (HTTP %d)", e.Code, e.Status)
	}
	return fmt.Sprintf("configd: HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// broader names the sentinel that the sentinel of a narrower code also
// matches: a store_unavailable is an unavailable, for a client that
// checks only that.
var broader = map[error]error{ErrStoreUnavailable: ErrUnavailable}

// Is reports whether target is the sentinel of e's code (or, for an answer
// without a known code, of its HTTP status).
func (e *Error) Is(target error) bool {
	if s, ok := codeSentinels[e.Code]; ok {
		return s == target || (target != nil && broader[s] == target)
	}
	return statusSentinels[e.Status] == target
}

// decodeError turns a non-2xx answer into an *Error.
func decodeError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var er api.ErrorResponse
	if json.Unmarshal(data, &er) == nil && er.Error.Code != "" {
		e.Code = er.Error.Code
		e.Message = er.Error.Message
		e.Rev = er.Error.Rev
		e.Key = er.Error.Key
		return e
	}
	// Not configd's JSON: keep a short, single-line excerpt for the reader.
	text := strings.Join(strings.Fields(string(data)), " ")
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	if text != "" {
		e.Message = fmt.Sprintf("configd: HTTP %d %s: %s", e.Status, http.StatusText(e.Status), text)
	}
	return e
}

// errTimeout is the cause of a deadline set by WithTimeout, to tell it
// apart from the caller's own deadline.
var errTimeout = errors.New("client timeout")

// unreachableError is a request that got no answer.
type unreachableError struct {
	addr string
	err  error
}

func (e *unreachableError) Error() string {
	if isTLSError(e.err) {
		return fmt.Sprintf("TLS with configd at %s failed: %v", e.addr, e.err)
	}
	return fmt.Sprintf("cannot reach configd at %s: %v", e.addr, e.err)
}

// Unwrap makes the error match both ErrUnreachable and the network error,
// and ErrTLS for a failed TLS handshake.
func (e *unreachableError) Unwrap() []error {
	if isTLSError(e.err) {
		return []error{ErrUnreachable, ErrTLS, e.err}
	}
	return []error{ErrUnreachable, e.err}
}

// isTLSError reports whether err is a failed TLS handshake: a certificate
// this side does not trust, an alert from configd (such as a refused or
// missing client certificate), or a configd that does not speak TLS.
func isTLSError(err error) bool {
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	var oe *net.OpError
	return errors.As(err, &cve) || errors.As(err, &rhe) ||
		(errors.As(err, &oe) && oe.Op == "remote error")
}

// transportError explains an error of http.Client.Do (or of reading the
// body) for a person, keeping the cause for errors.Is.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if context.Cause(ctx) == errTimeout {
			return fmt.Errorf("configd at %s did not answer within %v: %w", c.addr, c.opts.timeout, ctxErr)
		}
		return fmt.Errorf("request to configd at %s: %w", c.addr, ctxErr)
	}
	// *url.Error repeats the method and the whole URL; the cause says enough.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &unreachableError{addr: c.addr, err: err}
}
