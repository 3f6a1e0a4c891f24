// Package apierror is configd's error vocabulary. Every error a request
// can end with is classified here, once, into one of the API's error codes
// (api.Code*), and each door derives its answer from that class: the HTTP
// API and the web UI their status, the gRPC API its code. So a future
// revision, a value too large or a full disk is the same thing whichever
// door a client came through.
//
// Errors come from two places: the store, the watch hub and the key rules
// (their sentinel errors, classified by Classify), and the doors
// themselves, which decide an answer (a malformed parameter, a refused
// token) with New.
package apierror

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
	"github.com/configd/configd/watcher"
)

// answer is what a code means on each door.
type answer struct {
	status int
	grpc   codes.Code
}

// answers holds the HTTP status and the gRPC code of every error code.
var answers = map[string]answer{
	api.CodeBadKey:           {http.StatusBadRequest, codes.InvalidArgument},
	api.CodeBadRequest:       {http.StatusBadRequest, codes.InvalidArgument},
	api.CodeBadRevision:      {http.StatusBadRequest, codes.OutOfRange},
	api.CodeUnauthenticated:  {http.StatusUnauthorized, codes.Unauthenticated},
	api.CodeForbidden:        {http.StatusForbidden, codes.PermissionDenied},
	api.CodeNotFound:         {http.StatusNotFound, codes.NotFound},
	api.CodeRevisionGone:     {http.StatusNotFound, codes.NotFound},
	api.CodeRequestTimeout:   {http.StatusRequestTimeout, codes.DeadlineExceeded},
	api.CodeConflict:         {http.StatusConflict, codes.Aborted},
	api.CodeOwned:            {http.StatusConflict, codes.FailedPrecondition},
	api.CodeSchema:           {http.StatusUnprocessableEntity, codes.FailedPrecondition},
	api.CodeTooLarge:         {http.StatusRequestEntityTooLarge, codes.InvalidArgument},
	api.CodeBadContentType:   {http.StatusUnsupportedMediaType, codes.InvalidArgument},
	api.CodeInvalidValue:     {http.StatusUnprocessableEntity, codes.InvalidArgument},
	api.CodeNoMasterKey:      {http.StatusBadRequest, codes.FailedPrecondition},
	api.CodeRateLimited:      {http.StatusTooManyRequests, codes.ResourceExhausted},
	api.CodeTooManyWatches:   {http.StatusTooManyRequests, codes.ResourceExhausted},
	api.CodeInternal:         {http.StatusInternalServerError, codes.Internal},
	api.CodeUnavailable:      {http.StatusServiceUnavailable, codes.Unavailable},
	api.CodeStoreUnavailable: {http.StatusServiceUnavailable, codes.Unavailable},
	api.CodeDiskFull:         {http.StatusInsufficientStorage, codes.ResourceExhausted},
	// Change requests (server/requests).
	api.CodeStale:           {http.StatusConflict, codes.FailedPrecondition},
	api.CodeNotApproved:     {http.StatusConflict, codes.FailedPrecondition},
	api.CodeSelfApproval:    {http.StatusForbidden, codes.PermissionDenied},
	api.CodeRequestRequired: {http.StatusForbidden, codes.PermissionDenied},
	// Rollouts (server/rollouts).
	api.CodeRolloutConflict: {http.StatusConflict, codes.FailedPrecondition},
	api.CodeEmptySelection:  {http.StatusConflict, codes.FailedPrecondition},
	api.CodeRolloutActive:   {http.StatusConflict, codes.FailedPrecondition},
}

// Codes returns every error code the API answers with.
func Codes() []string {
	out := make([]string, 0, len(answers))
	for c := range answers {
		out = append(out, c)
	}
	return out
}

// Status is the HTTP status of code (500 for a code that does not exist).
func Status(code string) int {
	if a, ok := answers[code]; ok {
		return a.status
	}
	return http.StatusInternalServerError
}

// GRPCCode is the gRPC code of code (Internal for a code that does not
// exist).
func GRPCCode(code string) codes.Code {
	if a, ok := answers[code]; ok {
		return a.grpc
	}
	return codes.Internal
}

// Error is an answer a door decides itself: an error code, a message for
// the client and, when there is one, the key at fault.
type Error struct {
	Code    string
	Message string
	Key     string
	// status overrides the code's HTTP status (405 for a method a route
	// does not have is a bad_request); 0: the code's.
	status int
}

func (e *Error) Error() string { return e.Message }

// New returns an Error with code and a message made as by fmt.Sprintf.
func New(code, format string, args ...any) *Error {
	if _, ok := answers[code]; !ok {
		panic("apierror: unknown error code " + code)
	}
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is New(api.CodeBadRequest, ...): a malformed parameter, body
// or header.
func BadRequest(format string, args ...any) *Error {
	return New(api.CodeBadRequest, format, args...)
}

// WithStatus returns a copy of e answered with HTTP status instead of its
// code's.
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.status = status
	return &c
}

// keyed names the key an error is about.
type keyed struct {
	err error
	key string
}

func (e *keyed) Error() string { return e.err.Error() }
func (e *keyed) Unwrap() error { return e.err }

// WithKey attaches key to err, for Class.Key; nil stays nil.
func WithKey(err error, key string) error {
	if err == nil {
		return nil
	}
	return &keyed{err: err, key: key}
}

// Class is what an error means to a client, whichever door it came
// through.
type Class struct {
	Code string
	// Status is the HTTP status (the API, the web UI) and GRPC the gRPC
	// code.
	Status int
	GRPC   codes.Code
	// Message is one line for a person. For an internal error it is
	// generic: the cause is for the log (Internal).
	Message string
	// Key is the key at fault, and Rev the current revision on a
	// conflict, when known.
	Key string
	Rev int64
	// Internal says the error is not the client's doing: log it.
	Internal bool
}

// DiskFullMessage answers a write refused for want of room.
const DiskFullMessage = "the disk holding configd's database is full: nothing was written; free space on configd's data volume, then retry"

// StoreUnavailableMessage answers a write (a token change, a
// linearizable read) that a replica could not make because its cluster's
// etcd does not answer.
const StoreUnavailableMessage = "the configd cluster's etcd is unreachable or has no quorum: nothing was acknowledged " +
	"(a write that etcd took before it stopped answering appears in the history); reads and watches go on from this replica's copy; " +
	"retry once etcd is back (configd resumes writes by itself)"

// ContendedMessage answers a write that lost the race for a cluster's log
// every time the replica tried it.
const ContendedMessage = "this replica's write lost the race for the cluster's log to other replicas' writes every time it tried: nothing was written; " +
	"try again (with --forward-writes on, the default, one writer takes the writes and such races are rare)"

// InternalMessage answers an error that is configd's fault.
const InternalMessage = "internal error; the server log has the details"

// Classify says what err means: its code, the answer of each door and
// the message.
func Classify(err error) Class {
	var (
		ae *Error
		ce *audit.ConflictError
		oe *audit.OwnedError
		se *audit.SchemaError
		ke *keyed
	)
	c := Class{Code: api.CodeInternal}
	switch {
	case errors.As(err, &ae):
		c.Code, c.Message, c.Key = ae.Code, ae.Message, ae.Key
	case errors.Is(err, keyspace.ErrInvalidKey):
		c.Code = api.CodeBadKey
	case errors.Is(err, audit.ErrNotFound):
		c.Code = api.CodeNotFound
	case errors.Is(err, audit.ErrRevisionGone):
		c.Code = api.CodeRevisionGone
	case errors.Is(err, audit.ErrFutureRevision), errors.Is(err, audit.ErrBadRange):
		c.Code = api.CodeBadRevision
	case errors.As(err, &ce):
		c.Code, c.Rev, c.Key = api.CodeConflict, ce.Rev, ce.Key
	case errors.Is(err, audit.ErrConflict):
		c.Code = api.CodeConflict
	case errors.As(err, &oe):
		c.Code, c.Key = api.CodeOwned, oe.Key
	case errors.As(err, &se):
		c.Code, c.Key = api.CodeSchema, se.Key
	case errors.Is(err, audit.ErrTooLarge):
		c.Code = api.CodeTooLarge
	case errors.Is(err, audit.ErrContentType):
		c.Code = api.CodeBadContentType
	case errors.Is(err, audit.ErrInvalidValue):
		c.Code = api.CodeInvalidValue
	case errors.Is(err, audit.ErrNoMasterKey):
		c.Code = api.CodeNoMasterKey
	case errors.Is(err, audit.ErrBadRequest):
		c.Code = api.CodeBadRequest
	case errors.Is(err, requests.ErrStale):
		c.Code = api.CodeStale
	case errors.Is(err, requests.ErrNotApproved):
		c.Code = api.CodeNotApproved
	case errors.Is(err, requests.ErrSelfApproval):
		c.Code = api.CodeSelfApproval
	case errors.Is(err, requests.ErrRequestRequired):
		c.Code = api.CodeRequestRequired
	case errors.Is(err, rollouts.ErrRolloutConflict):
		c.Code = api.CodeRolloutConflict
	case errors.Is(err, rollouts.ErrEmptySelection):
		c.Code = api.CodeEmptySelection
	case errors.Is(err, rollouts.ErrRolloutActive):
		c.Code = api.CodeRolloutActive
	case errors.Is(err, audit.ErrDiskFull):
		c.Code, c.Message = api.CodeDiskFull, DiskFullMessage
	case errors.Is(err, audit.ErrStoreUnavailable):
		c.Code, c.Message = api.CodeStoreUnavailable, StoreUnavailableMessage
	case errors.Is(err, audit.ErrContended):
		c.Code, c.Message = api.CodeUnavailable, ContendedMessage
	case errors.Is(err, audit.ErrClosed), errors.Is(err, watcher.ErrClosed):
		c.Code, c.Message = api.CodeUnavailable, "configd is shutting down; try again (another replica, or once it is back)"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away or the server is out of time: nobody is
		// likely to read this, but say what happened.
		c.Code, c.Message = api.CodeUnavailable, "request cancelled before it completed"
	default:
		c.Message = InternalMessage
	}
	a := answers[c.Code]
	c.Status, c.GRPC, c.Internal = a.status, a.grpc, c.Code == api.CodeInternal
	switch {
	case ae != nil && ae.status != 0:
		c.Status = ae.status
	case errors.Is(err, context.Canceled):
		c.GRPC = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		c.GRPC = codes.DeadlineExceeded
	}
	if c.Message == "" {
		c.Message = err.Error()
	}
	if c.Key == "" && errors.As(err, &ke) {
		c.Key = ke.key
	}
	c.Message = OneLine(c.Message)
	c.Key = strings.ToValidUTF8(c.Key, "\uFFFD")
	return c
}

// Body is the class as the HTTP API's error payload.
func (c Class) Body() api.ErrorBody {
	return api.ErrorBody{Code: c.Code, Message: c.Message, Rev: c.Rev, Key: c.Key}
}

// OneLine keeps a message on one line and valid UTF-8, so that it prints
// cleanly in a terminal and a log.
func OneLine(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Join(strings.Fields(s), " ")
}
