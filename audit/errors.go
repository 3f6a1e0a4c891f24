package audit

import (
	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/migrations"
)

// Sentinel errors. Check them with errors.Is; the errors returned wrap them
// with details. Each is defined once, in the room that returns it (see
// there for what it means), and given here under audit's name.
var (
	// ErrNotFound: the key does not exist (at the revision asked for).
	ErrNotFound = record.ErrNotFound
	// ErrConflict: a compare-and-set condition failed. The error is a
	// *ConflictError.
	ErrConflict = record.ErrConflict
	// ErrTooLarge: a value is larger than the store's limit.
	ErrTooLarge = record.ErrTooLarge
	// ErrContentType: a content type the store does not know.
	ErrContentType = record.ErrContentType
	// ErrInvalidValue: a value does not parse under its content type.
	ErrInvalidValue = record.ErrInvalidValue
	// ErrFutureRevision: a revision newer than the store's current one.
	ErrFutureRevision = record.ErrFutureRevision
	// ErrRevisionGone: a revision that does not exist (below 1) or is no
	// longer retained (older than the history horizon).
	ErrRevisionGone = record.ErrRevisionGone
	// ErrBadRange: a range of revisions whose start is after its end.
	ErrBadRange = record.ErrBadRange
	// ErrStateMismatch: the current state disagrees with the audit history.
	ErrStateMismatch = record.ErrStateMismatch
	// ErrBadRequest: a request that is malformed in another way.
	ErrBadRequest = record.ErrBadRequest
	// ErrClosed: the store is closed.
	ErrClosed = record.ErrClosed
	// ErrLocked: another process has the database open.
	ErrLocked = record.ErrLocked
	// ErrSchemaTooNew: the database was written by a newer configd.
	ErrSchemaTooNew = migrations.ErrSchemaTooNew
	// ErrDiskFull: the disk holding the database is full: the write was
	// not made, and the store takes writes again once there is room.
	ErrDiskFull = record.ErrDiskFull
	// ErrStoreUnavailable: a replica's commit log, etcd, does not answer or
	// has no quorum (WithEtcd): the write was not acknowledged; reads go
	// on from the local state.
	ErrStoreUnavailable = record.ErrStoreUnavailable
	// ErrContended: a replica's write lost the race for the cluster's log
	// to other replicas' writes every time it was tried: nothing was
	// written; it may be sent again.
	ErrContended = record.ErrContended
	// ErrOwned: a write or a rollback touches a key that a layer above the
	// store layer defines. The error is an *OwnedError.
	ErrOwned = record.ErrOwned
	// ErrFenced: a source's snapshot applied with Fenced was not recorded:
	// the fence's etcd key is gone, so this replica no longer holds the
	// source's role.
	ErrFenced = record.ErrFenced
	// ErrSchemaViolation: a write would break a prefix's JSON Schema (or a
	// new schema is broken by the current state); nothing was written. The
	// error is a *SchemaError.
	ErrSchemaViolation = record.ErrSchemaViolation
)
