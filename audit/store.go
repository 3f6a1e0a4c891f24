// Package audit is configd's versioned, audited store, on SQLite.
//
// Every change is a numbered revision: one global int64 counter, assigned at
// commit, with who (actor), why (reason), where from (origin), when (UTC) and
// the old and new value of each key it touched. History is never rewritten;
// a rollback is a new revision whose content is an old one.
//
// Writes go through one writer goroutine that batches concurrent commits
// into one SQLite transaction (group commit): each commit still gets its own
// revision, in order, and Commit returns only once its batch is durable on
// disk (WAL, synchronous=FULL), so an acknowledged write survives kill -9.
//
// Store is the one place in configd that writes SQL.
package audit

import (
	"context"
	"log/slog"
)

// DefaultMaxValueSize is the default limit on a value's size: 1 MiB.
const DefaultMaxValueSize = 1 << 20

// Option configures a Store.
type Option func(*options)

type options struct {
	maxValueSize int
	maxBatch     int
	logger       *slog.Logger
	onCommit     []func(Revision)
}

// WithMaxValueSize sets the largest value, in bytes, that the store accepts.
func WithMaxValueSize(n int) Option { return func(o *options) { o.maxValueSize = n } }

// WithMaxBatch sets how many commits the writer groups into one SQLite
// transaction at most (default 256).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCommitHook registers fn to be called with every revision, with its
// changes, after it is durable and before Commit returns to its caller.
// Hooks are called from the writer goroutine, one revision at a time, in
// revision order: fn must not block or call back into the Store's writes.
func WithCommitHook(fn func(Revision)) Option {
	return func(o *options) { o.onCommit = append(o.onCommit, fn) }
}

// ReadOption modifies a read.
type ReadOption func(*readOptions)

type readOptions struct{ rev int64 }

// AtRev reads the state as of revision rev instead of the current one.
func AtRev(rev int64) ReadOption { return func(o *readOptions) { o.rev = rev } }

// Store is the versioned, audited key-value store. It is safe for concurrent
// use.
type Store struct {
	opts options
}

// Open opens (creating if needed) the SQLite database at path, applies the
// embedded migrations and starts the writer. A database that another process
// has open is refused with ErrLocked, one written by a newer binary with
// ErrSchemaTooNew.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	panic("not implemented")
}

// Close stops accepting commits, waits for queued ones to finish and closes
// the database.
func (s *Store) Close() error { panic("not implemented") }

// Rev returns the current (newest committed) revision; 0 for an empty store.
func (s *Store) Rev() int64 { panic("not implemented") }

// MaxValueSize returns the largest value the store accepts, in bytes.
func (s *Store) MaxValueSize() int { return s.opts.maxValueSize }

// Get returns key's current value, or its value as of AtRev(rev).
// A missing key is ErrNotFound; an invalid key wraps keyspace.ErrInvalidKey.
func (s *Store) Get(ctx context.Context, key string, opts ...ReadOption) (KeyValue, error) {
	panic("not implemented")
}

// List returns the keys under prefix (see keyspace.Prefix; "" is every
// key), sorted, and the revision they were read at.
func (s *Store) List(ctx context.Context, prefix string, opts ...ReadOption) ([]KeyValue, int64, error) {
	panic("not implemented")
}

// Commit applies txn as one revision and returns it once it is durable.
// Puts whose value and content type equal the current ones, and deletes of
// missing keys, change nothing; a transaction that changes nothing records
// nothing and returns a Revision with the current Rev and no Changes.
// A failed IfModRev condition returns a *ConflictError and changes nothing.
func (s *Store) Commit(ctx context.Context, txn Txn) (Revision, error) {
	panic("not implemented")
}

// Revision returns one revision with all its changes.
func (s *Store) Revision(ctx context.Context, rev int64) (Revision, error) {
	panic("not implemented")
}

// History returns revisions that touched the query's scope (and were made
// by its actor, if set), newest first, one page at a time. Each revision's
// Changes is limited to the scope.
func (s *Store) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	panic("not implemented")
}

// Diff returns how the scope changed from revision from to revision to (0:
// the current revision), one Change per key that differs, sorted by key.
// from > to is ErrBadRange.
func (s *Store) Diff(ctx context.Context, scope Scope, from, to int64) ([]Change, error) {
	panic("not implemented")
}

// Rollback commits one revision that makes req's scope equal to what it was
// at req.To: keys created since are deleted, keys deleted since come back.
// Its reason is "rollback to R" (followed by req.Reason, if any). When the
// scope already equals revision To, nothing is committed and the returned
// Revision has the current Rev and no Changes. With DryRun the changes are
// computed and returned (Rev 0) but not committed.
func (s *Store) Rollback(ctx context.Context, req RollbackRequest) (Revision, error) {
	panic("not implemented")
}
