package audit

import (
	"context"
	"database/sql"
)

// ReadOption modifies a read.
type ReadOption func(*readOptions)

type readOptions struct{ rev int64 }

// AtRev reads the state as of revision rev instead of the current one.
func AtRev(rev int64) ReadOption { return func(o *readOptions) { o.rev = rev } }

func atRev(opts []ReadOption) int64 {
	if len(opts) == 0 {
		return 0 // and ro, which o's call makes escape, is not allocated
	}
	var ro readOptions
	for _, o := range opts {
		o(&ro)
	}
	return ro.rev
}

// Get returns key's current value, or its value as of AtRev(rev). The
// current value comes from memory; callers must not modify its Value.
// A missing key is ErrNotFound; an invalid key wraps keyspace.ErrInvalidKey.
func (s *Store) Get(ctx context.Context, key string, opts ...ReadOption) (KeyValue, error) {
	return s.r.Get(ctx, key, atRev(opts))
}

// List returns the keys under prefix (see keyspace.Prefix; "" is every
// key), sorted, and the revision they were read at.
func (s *Store) List(ctx context.Context, prefix string, opts ...ReadOption) ([]KeyValue, int64, error) {
	return s.r.List(ctx, prefix, atRev(opts))
}

// Revision returns one revision with all its changes.
func (s *Store) Revision(ctx context.Context, rev int64) (Revision, error) {
	return s.r.Revision(ctx, rev)
}

// History returns revisions that touched the query's scope (and were made
// by its actor, if set), newest first, one page at a time. Each revision's
// Changes is limited to the scope. After a compaction, history ends at the
// horizon (HistoryPage.Horizon says so), and a cursor at or below the
// horizon is ErrRevisionGone.
func (s *Store) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	return s.r.History(ctx, q)
}

// Diff returns how the scope changed from revision from to revision to (0:
// the current revision), one Change per key that differs, sorted by key.
// from may be 0, the empty state before the first revision. from > to is
// ErrBadRange. A revision below the history horizon (from 0 included, once
// a compaction removed anything) is ErrRevisionGone.
func (s *Store) Diff(ctx context.Context, scope Scope, from, to int64) ([]Change, error) {
	return s.r.Diff(ctx, scope, from, to)
}

// RevisionsAfter returns up to limit revisions newer than since, oldest
// first, with all their changes: what a watcher that has applied since must
// apply next. since below the history horizon is ErrRevisionGone: the
// watcher must start again from a snapshot.
func (s *Store) RevisionsAfter(ctx context.Context, since int64, limit int) ([]Revision, error) {
	return s.r.RevisionsAfter(ctx, since, limit)
}

// Stack returns the layers that define key, highest precedence first, and
// marks the one its effective value comes from. A secret's value is
// withheld (LayerValue.Hash and Length stand for it).
func (s *Store) Stack(ctx context.Context, key string) ([]LayerEntry, error) {
	return s.r.Stack(ctx, key)
}

// readTx runs fn in a read transaction, which sees one consistent snapshot,
// and passes it the revision of that snapshot.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx, rev int64) error) error {
	return s.r.ReadTx(ctx, fn)
}
