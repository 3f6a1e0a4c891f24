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
	// ErrContended: a replica's batch lost the race for the replicated
	// log's head to other replicas' commits as many times in a row as the
	// writer tries (replicas that each commit the writes they receive):
	// nothing was written, and the write may be sent again.
	ErrContended = errors.New("contended: other replicas kept committing to the replicated log first")
	// ErrSchemaViolation: the write would leave the merged view under a prefix
	// breaking that prefix's JSON Schema, or a new schema is broken by the
	// current state. Nothing was written. The error is a *SchemaError.
	ErrSchemaViolation = errors.New("schema violation")
)

// SchemaError says which rule of which prefix's JSON Schema a write breaks,
// and where: the key whose value breaks it and the JSON pointer inside
// that value. Its message never quotes a value (a secret's included).
type SchemaError struct {
	// Prefix is the schema's prefix, canonical ("" is the whole keyspace).
	Prefix string
	// Key is the key at fault; where the rule is about a place of the
	// view that no key holds (a missing member, the prefix itself), the
	// path of that place ("app/db", or the prefix).
	Key string
	// Pointer is the JSON pointer inside Key's value ("" for the value
	// itself).
	Pointer string
	// Rule is the rule broken, as a person reads it ("must be >= 1").
	Rule string
	// Existing: the schema is being set and the current state already
	// breaks it.
	Existing bool
}

func (e *SchemaError) Error() string {
	p := e.Prefix
	if p == "" {
		p = "/"
	}
	where := e.Key
	if e.Pointer != "" {
		where += ": " + e.Pointer
	}
	msg := fmt.Sprintf("%s: %s (schema %s)", where, e.Rule, p)
	if e.Existing {
		msg += "; the current state breaks the new schema: fix the values first, or set it with --force"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrSchemaViolation) true.
func (e *SchemaError) Unwrap() error { return ErrSchemaViolation }

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

// NotFound returns the error of a read of key, which does not exist:
// ErrNotFound, naming the key. It is formatted only when read (Error), for
// the reads that look a key up on every write (a policy record that is
// not there).
func NotFound(key string) error { return &notFoundError{key: key} }

type notFoundError struct{ key string }

func (e *notFoundError) Error() string { return fmt.Sprintf("%v: %q", ErrNotFound, e.key) }
func (e *notFoundError) Unwrap() error { return ErrNotFound }
