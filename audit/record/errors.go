package record

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with errors.Is; the errors returned wrap them
// with details.
var (
	// ErrNotFound: the key does not exist (at the revision asked for).
	ErrNotFound = errors.New("key not found")
	// ErrConflict: a compare-and-set condition failed. The error is a
	// *ConflictError.
	ErrConflict = errors.New("conflict")
	// ErrTooLarge: a value is larger than the store's limit.
	ErrTooLarge = errors.New("value too large")
	// ErrContentType: a content type the store does not know.
	ErrContentType = errors.New("unsupported content type")
	// ErrInvalidValue: a value does not parse under its content type.
	ErrInvalidValue = errors.New("invalid value")
	// ErrFutureRevision: a revision newer than the store's current one.
	ErrFutureRevision = errors.New("revision is in the future")
	// ErrRevisionGone: a revision that does not exist (below 1) or is no
	// longer retained: older than the history horizon (audit.Store.Horizon),
	// compacted away under the retention (WithRetention).
	ErrRevisionGone = errors.New("revision does not exist")
	// ErrBadRange: a range of revisions whose start is after its end.
	ErrBadRange = errors.New("bad revision range")
	// ErrStateMismatch: Open found that the current state disagrees with
	// the audit history: it does not match the digest the newest revision
	// recorded, a key was modified after the newest revision, or the
	// newest revisions were removed. The error says which; Verify reports
	// the same with VerifyResult.StateMismatch.
	ErrStateMismatch = errors.New("the current state disagrees with the audit history")
	// ErrBadRequest: a request that is malformed in another way (an empty
	// transaction, a scope with both a key and a prefix, ...).
	ErrBadRequest = errors.New("bad request")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store is closed")
	// ErrLocked: another process has the database open.
	ErrLocked = errors.New("database is in use by another process")
	// ErrDiskFull: the disk holding the database is full (SQLite's
	// SQLITE_FULL, or ENOSPC): the write was not made, and the store
	// takes writes again once there is room.
	ErrDiskFull = errors.New("disk full")
	// ErrStoreUnavailable: the replicated commit log (etcd, see
	// audit.WithEtcd) did not answer, or has no quorum: the write was not
	// acknowledged. Reads go on from the local state, and the store takes
	// writes again once etcd is back.
	ErrStoreUnavailable = errors.New("store unavailable: the replicated commit log (etcd) does not answer")
)

// ConflictError says which key failed its compare-and-set and what the
// store holds now.
type ConflictError struct {
	Key string
	// Expected is the mod_rev the caller asked for; Actual what the key has
	// (0: the key does not exist).
	Expected, Actual int64
	// Rev is the store's current revision.
	Rev int64
}

func (e *ConflictError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("conflict: the scope changed after revision %d (current revision %d)", e.Expected, e.Rev)
	}
	switch {
	case e.Expected == 0:
		return fmt.Sprintf("conflict: key %q already exists (mod_rev %d, current revision %d)", e.Key, e.Actual, e.Rev)
	case e.Actual == 0:
		return fmt.Sprintf("conflict: key %q does not exist, expected mod_rev %d (current revision %d)", e.Key, e.Expected, e.Rev)
	}
	return fmt.Sprintf("conflict: key %q has mod_rev %d, expected %d (current revision %d)", e.Key, e.Actual, e.Expected, e.Rev)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }
