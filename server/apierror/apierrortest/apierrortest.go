// Package apierrortest holds the table of errors that every door of
// configd (the HTTP API, the gRPC API, the web UI) must answer alike:
// each door's tests send every case through it and check its answer
// against the case.
package apierrortest

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/rollouts"
	"github.com/configd/configd/watcher"
)

// Case is an error and the answer every door gives it.
type Case struct {
	Name   string
	Err    error
	Code   string
	Status int
	GRPC   codes.Code
}

// Cases returns one case per sentinel error of the store, the watch hub
// and the key rules, per error code a door decides itself, and for an
// error nobody classified (internal).
func Cases() []Case {
	cs := []Case{
		{"invalid key", fmt.Errorf("x: %w", keyspace.ErrInvalidKey), api.CodeBadKey, 400, codes.InvalidArgument},
		{"not found", fmt.Errorf("%w: \"k\"", audit.ErrNotFound), api.CodeNotFound, 404, codes.NotFound},
		{"revision gone", fmt.Errorf("%w: revision 0", audit.ErrRevisionGone), api.CodeRevisionGone, 404, codes.NotFound},
		{"future revision", fmt.Errorf("%w: 9 > 3", audit.ErrFutureRevision), api.CodeBadRevision, 400, codes.OutOfRange},
		{"bad range", fmt.Errorf("%w: 5 > 2", audit.ErrBadRange), api.CodeBadRevision, 400, codes.OutOfRange},
		{"conflict error", fmt.Errorf("commit: %w", &audit.ConflictError{Key: "k", Expected: 1, Actual: 2, Rev: 7}), api.CodeConflict, 409, codes.Aborted},
		{"conflict", audit.ErrConflict, api.CodeConflict, 409, codes.Aborted},
		{"owned", fmt.Errorf("rollback: %w", &audit.OwnedError{Key: "k", Layer: "files"}), api.CodeOwned, 409, codes.FailedPrecondition},
		{"schema", fmt.Errorf("source file: %w", &audit.SchemaError{Prefix: "app/", Key: "app/limits", Pointer: "/rps", Rule: "must be >= 1"}), api.CodeSchema, 422, codes.FailedPrecondition},
		{"too large", fmt.Errorf("%w: big", audit.ErrTooLarge), api.CodeTooLarge, 413, codes.InvalidArgument},
		{"content type", fmt.Errorf("%w: image/png", audit.ErrContentType), api.CodeBadContentType, 415, codes.InvalidArgument},
		{"invalid value", fmt.Errorf("%w: bad json", audit.ErrInvalidValue), api.CodeInvalidValue, 422, codes.InvalidArgument},
		{"bad request", fmt.Errorf("%w: empty", audit.ErrBadRequest), api.CodeBadRequest, 400, codes.InvalidArgument},
		{"no master key", fmt.Errorf("%w: key \"k\"", audit.ErrNoMasterKey), api.CodeNoMasterKey, 400, codes.FailedPrecondition},
		{"disk full", fmt.Errorf("%w: database or disk is full (13)", audit.ErrDiskFull), api.CodeDiskFull, 507, codes.ResourceExhausted},
		{"store unavailable", fmt.Errorf("commit: %w: context deadline exceeded", audit.ErrStoreUnavailable), api.CodeStoreUnavailable, 503, codes.Unavailable},
		{"contended", fmt.Errorf("%w: the log moved on (64 attempts)", audit.ErrContended), api.CodeUnavailable, 503, codes.Unavailable},
		{"store closed", audit.ErrClosed, api.CodeUnavailable, 503, codes.Unavailable},
		{"hub closed", watcher.ErrClosed, api.CodeUnavailable, 503, codes.Unavailable},
		{"cancelled", context.Canceled, api.CodeUnavailable, 503, codes.Canceled},
		{"deadline", context.DeadlineExceeded, api.CodeUnavailable, 503, codes.DeadlineExceeded},
		{"rollout conflict", fmt.Errorf("start: %w", rollouts.ErrRolloutConflict), api.CodeRolloutConflict, 409, codes.FailedPrecondition},
		{"empty selection", rollouts.ErrEmptySelection, api.CodeEmptySelection, 409, codes.FailedPrecondition},
		{"rollout active", fmt.Errorf("put: %w", rollouts.ErrRolloutActive), api.CodeRolloutActive, 409, codes.FailedPrecondition},
		{"internal", errors.New("disk I/O error\nat page 7"), api.CodeInternal, 500, codes.Internal},
	}
	for _, code := range apierror.Codes() {
		cs = append(cs, Case{"door's " + code, apierror.New(code, "a %s answer", code), code, apierror.Status(code), apierror.GRPCCode(code)})
	}
	return cs
}
