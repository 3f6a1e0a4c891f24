// Package record holds the records of configd's audited store: what a
// revision is and what it changed (Revision, Change, KeyValue, the layers'
// LayerValue and LayerChange), what a write asks for (Op, Txn,
// RollbackRequest), how a read selects keys (Scope, HistoryQuery), the
// content types a value may have, and the errors the store answers with.
//
// It is the leaf of package audit's rooms: it imports none of them, and
// package audit gives every name here under its own (audit.Revision is
// record.Revision), so callers need not import it.
package record

import (
	"fmt"
	"time"

	"github.com/configd/configd/keyspace"
)

// OpType says whether a change puts or deletes a key.
type OpType uint8

// The operations.
const (
	OpPut    OpType = 1
	OpDelete OpType = 2
)

func (o OpType) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	}
	return "unknown"
}

// KeyValue is a key's value and revisions at some revision.
type KeyValue struct {
	Key         string
	Value       []byte
	ContentType string
	// CreateRev is the revision that created the key (since its last delete).
	CreateRev int64
	// ModRev is the revision that last changed the key.
	ModRev int64
	// Version counts the changes since CreateRev; 1 on creation.
	Version int64
	// Secret marks the value of a secret key: it is encrypted at rest (see
	// WithMasterKey). Get, List, RevisionsAfter and the commit hooks give
	// its plaintext; History, Revision, Diff, Rollback, Commit's result and
	// Stack withhold it: Value is nil and Hash and Length describe it.
	Secret bool
	// Hash is set when the value is withheld: a keyed digest of it,
	// "hmac-sha256:" and 16 hex digits (see secrets.DataKey.Digest).
	Hash string
	// Length is the size in bytes of a withheld value.
	Length int
}

// Withheld reports whether kv's value is withheld (a secret's, outside
// Get and List): Value is nil, Hash and Length stand for it.
func (kv *KeyValue) Withheld() bool { return kv != nil && kv.Hash != "" }

// Op is one operation of a transaction. Build it with Put or Delete.
type Op struct {
	Type        OpType
	Key         string
	Value       []byte
	ContentType string
	// IfModRev, when not nil, makes the transaction conditional on the
	// key's current mod_rev being *IfModRev (0: the key must not exist).
	IfModRev *int64
	// Secret, on a put, marks the key secret: its value is encrypted at
	// rest from this revision on. The mark sticks to the key, for every
	// later put, until the key is deleted. It needs a master key
	// (WithMasterKey), else the commit fails with ErrNoMasterKey.
	Secret bool
}

// Put returns an operation that sets key to value. An empty contentType
// means text/plain.
func Put(key string, value []byte, contentType string) Op {
	return Op{Type: OpPut, Key: key, Value: value, ContentType: contentType}
}

// Delete returns an operation that deletes key. Deleting a key that does not
// exist changes nothing.
func Delete(key string) Op { return Op{Type: OpDelete, Key: key} }

// AsSecret returns a copy of op (a put) that marks its key secret.
func (op Op) AsSecret() Op {
	op.Secret = true
	return op
}

// WithModRev returns a copy of op conditional on the key's mod_rev being rev
// (0: the key must not exist).
func (op Op) WithModRev(rev int64) Op {
	op.IfModRev = &rev
	return op
}

// Txn is a set of operations committed together as one revision.
type Txn struct {
	Actor  string
	Reason string
	// Origin says where the change came from: "api", or "source:<name>".
	// Empty means "api".
	Origin string
	Ops    []Op
	// IfRev, when not nil, makes the transaction conditional on the
	// store's newest revision being *IfRev: nothing was committed since the
	// caller read the state at *IfRev. It is the condition of a caller that
	// decides what to write from what it read (etcd's Txn compares, over
	// any keys and ranges): read at R, decide, commit with IfRev R, and
	// read again on a *ConflictError (its Key empty), which changes
	// nothing.
	IfRev *int64
}

// Change is what a revision, or a diff, did to one key. Old is nil when the
// key did not exist before; New is nil when it does not exist after.
type Change struct {
	Key  string
	Type OpType
	Old  *KeyValue
	New  *KeyValue
}

// IsSecret reports whether either side of c is a secret's value: its row
// holds ciphertext.
func (c *Change) IsSecret() bool {
	return c.Old != nil && c.Old.Secret || c.New != nil && c.New.Secret
}

// Revision is one committed revision and, when loaded, its changes.
type Revision struct {
	Rev    int64
	Time   time.Time // UTC
	Actor  string
	Reason string
	Origin string
	// RollbackTo is the revision this revision rolled back to, or 0.
	RollbackTo int64
	// NumChanges counts all keys the revision changed, even when Changes is
	// limited to a query's scope.
	NumChanges int
	Changes    []Change
	// LayerChanges is what the revision did to the layers' raw values,
	// including changes a higher layer hides. Revision loads it; History
	// does not.
	LayerChanges []LayerChange
}

// Scope selects keys: one key, or every key under a prefix. The zero Scope
// is the whole keyspace.
type Scope struct {
	Key    string
	Prefix string
}

// Canonical checks sc and returns it with its prefix made canonical (see
// keyspace.Prefix): a scope with both a key and a prefix is ErrBadRequest,
// an invalid key or prefix wraps keyspace.ErrInvalidKey.
func (sc Scope) Canonical() (Scope, error) {
	switch {
	case sc.Key != "" && sc.Prefix != "":
		return Scope{}, fmt.Errorf("%w: give a key or a prefix, not both", ErrBadRequest)
	case sc.Key != "":
		if err := keyspace.Validate(sc.Key); err != nil {
			return Scope{}, err
		}
		return Scope{Key: sc.Key}, nil
	}
	p, err := keyspace.Prefix(sc.Prefix)
	if err != nil {
		return Scope{}, err
	}
	return Scope{Prefix: p}, nil
}

// HistoryQuery selects revisions for History. At most one of Key and
// Prefix is set; Actor filters further.
type HistoryQuery struct {
	Scope
	Actor string
	// Limit is the page size; 0 means 100, and it is capped at 1000.
	Limit int
	// Before is the cursor: only revisions strictly older than Before are
	// returned. 0 means from the newest.
	Before int64
}

// HistoryPage is one page of history, newest first.
type HistoryPage struct {
	Revisions []Revision
	// Next is the cursor of the next page (pass it as Before), or 0 when
	// there is no more.
	Next int64
	// Horizon, when not 0, is the history horizon: older revisions were
	// compacted away (see Store.Compact), so history ends there.
	Horizon int64
}

// RollbackRequest asks for one new revision that makes a scope equal to
// what it was at revision To.
type RollbackRequest struct {
	Scope
	To     int64
	Actor  string
	Reason string
	Origin string
	// ExpectRev, when > 0, makes the rollback fail with a conflict if any
	// key in the scope changed after revision ExpectRev.
	ExpectRev int64
	// DryRun computes the changes and commits nothing.
	DryRun bool
}
