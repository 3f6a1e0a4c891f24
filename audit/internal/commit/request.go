package commit

import (
	"context"

	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/keyspace"
)

// A request is one piece of work queued for the writer. Its kind is its
// type: a revisionRequest (a transaction, a rollback or a source's
// snapshot) is decided in a batch with others, one revision each; an
// aloneRequest runs by itself between batches.
type request interface {
	base() *ticket
}

// revisionRequest asks for one revision, decided in a batch.
type revisionRequest interface {
	request
	// targets are what a token needs the write permission on to make the
	// request (record.Authorization's Reauthorize): the keys it writes,
	// or its scope.
	targets() []string
	// readsDB reports whether deciding the request reads the database
	// itself, beyond the batch's in-memory view: the batch is flushed
	// before it.
	readsDB() bool
	// decide decides what the request commits, after revision prev (the
	// newest so far, the batch's earlier requests included), and appends
	// it to b; a request that changes nothing returns Revision{Rev: prev}.
	// A refused request (a conflict, a key owned by a higher layer)
	// appends nothing.
	decide(ctx context.Context, d *decider, b Batch, prev int64) (record.Revision, error)
}

var (
	_ revisionRequest = (*txnRequest)(nil)
	_ revisionRequest = (*rollbackRequest)(nil)
	_ revisionRequest = (*sourceRequest)(nil)
	_ request         = (*aloneRequest)(nil)
)

// ticket is the part every request has: its caller's context, and where
// its outcome goes; and for a write a token allowed, on a replicated log,
// that token (see record.Authorization) and the token epoch it was last
// allowed at.
type ticket struct {
	ctx   context.Context
	done  chan result
	auth  record.Authorization
	epoch int64
}

func (t *ticket) base() *ticket { return t }

// result is a request's outcome.
type result struct {
	rev record.Revision // as the caller sees it: secrets withheld
	err error
}

// txnRequest is a transaction, validated (see validateTxn), or a schema's
// (validateSchemaTxn; force: see CommitSchema).
type txnRequest struct {
	ticket
	txn   record.Txn
	force bool
}

func (r *txnRequest) readsDB() bool { return false }

func (r *txnRequest) targets() []string {
	keys := make([]string, len(r.txn.Ops))
	for i, op := range r.txn.Ops {
		keys[i] = op.Key
		if p, ok := keyspace.SchemaPrefix(op.Key); ok {
			keys[i] = p // a schema needs the write permission on its prefix
		}
	}
	return keys
}

func (r *txnRequest) decide(ctx context.Context, d *decider, b Batch, prev int64) (record.Revision, error) {
	return d.decideTxn(ctx, b, r.txn, 0, prev, r.force)
}

// rollbackRequest is a rollback, validated, planned inside the batch
// against the state its earlier requests leave.
type rollbackRequest struct {
	ticket
	req record.RollbackRequest
}

func (r *rollbackRequest) readsDB() bool { return true }

// targets is the rollback's scope: its key, or its prefix ("" is every
// key).
func (r *rollbackRequest) targets() []string { return []string{r.req.Key + r.req.Prefix} }

func (r *rollbackRequest) decide(ctx context.Context, d *decider, b Batch, prev int64) (record.Revision, error) {
	return d.decideRollback(ctx, b, &r.req, prev)
}

// sourceRequest is a source's new snapshot of its layer, validated (see
// validateSnapshot).
type sourceRequest struct {
	ticket
	layer string
	snap  map[string]record.LayerValue
	fence record.Fence // checked by the Log in the commit (Fencer); zero: none
}

func (r *sourceRequest) readsDB() bool { return true }

// targets is nothing a token could be refused: a source writes its layer
// under no token.
func (r *sourceRequest) targets() []string { return nil }

func (r *sourceRequest) decide(ctx context.Context, d *decider, b Batch, prev int64) (record.Revision, error) {
	return d.decideSource(ctx, b, r, prev)
}

// aloneRequest is work that runs alone on the writer, between batches:
// a compaction step, new data keys.
type aloneRequest struct {
	ticket
	fn func(ctx context.Context) error
}
