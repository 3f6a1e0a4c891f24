package audit

import "context"

// Commit applies txn as one revision and returns it once it is durable.
// Puts whose value and content type equal the current ones, and deletes of
// missing keys, change nothing; a transaction that changes nothing records
// nothing and returns a Revision with the current Rev and no Changes.
// A failed IfModRev condition returns a *ConflictError and changes nothing.
//
// If ctx ends while the commit waits in the queue, Commit returns ctx.Err()
// and the commit is dropped; once the writer has taken it, Commit waits for
// the outcome.
func (s *Store) Commit(ctx context.Context, txn Txn) (Revision, error) {
	return s.w.Commit(ctx, txn)
}

// Rollback commits one revision that makes req's scope equal to what it was
// at req.To: keys created since are deleted, keys deleted since come back.
// The zero Scope is the whole keyspace. Its reason is "rollback to R"
// (followed by ": " and req.Reason, if any) and its RollbackTo is R. When the
// scope already equals revision To, nothing is committed and the returned
// Revision has the current Rev and no Changes. With DryRun the changes are
// computed and returned (Rev 0) but not committed.
func (s *Store) Rollback(ctx context.Context, req RollbackRequest) (Revision, error) {
	if err := req.Validate(); err != nil {
		return Revision{}, err
	}
	if req.Origin == "" {
		req.Origin = "api"
	}
	if req.DryRun {
		return s.r.DryRunRollback(ctx, req)
	}
	return s.w.Rollback(ctx, req)
}

// ApplySource replaces the raw values of a source's layer with snapshot
// (full keys, mount included) in one revision, with actor and origin
// "source:<layer>". Keys whose effective value changes become the
// revision's Changes (and reach watchers); changes hidden by a higher layer
// are recorded only as LayerChanges. A snapshot equal to what the layer
// holds records nothing and returns the current revision. Invalid keys or
// values refuse the whole snapshot, changing nothing.
func (s *Store) ApplySource(ctx context.Context, layer string, snapshot map[string]LayerValue, opts ...SourceOption) (Revision, error) {
	var o sourceOptions
	for _, opt := range opts {
		opt(&o)
	}
	return s.w.ApplySource(ctx, layer, snapshot, o.fence)
}

// SourceOption configures one ApplySource.
type SourceOption func(*sourceOptions)

type sourceOptions struct{ fence Fence }

// Fenced makes a replica (WithEtcd) record the snapshot only if f holds in
// the same etcd transaction that records it: f's key still exists with its
// creation revision. Otherwise nothing is recorded and ApplySource fails
// with ErrFenced. A source's replica gives its election key, so that a
// replica that lost the source's role without knowing it yet records
// nothing (docs/ha.md, "The source's writer fence"). A store without etcd
// refuses a fenced snapshot. The zero Fence is no fence.
func Fenced(f Fence) SourceOption { return func(o *sourceOptions) { o.fence = f } }
