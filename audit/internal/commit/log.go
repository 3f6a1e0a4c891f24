package commit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
)

// Record is one decided revision, as the Log takes it: its content as it
// is stored (secret values sealed), its chain hash, and the digest of the
// state it produces (see package chain). It is what a replicated log
// would carry: a replica that applies the records in order holds the same
// history, chain and state.
type Record struct {
	Rev   record.Revision
	Hash  []byte
	State []byte
}

// Log is the second half of the commit path: it makes the revisions that
// the first half decided durable and applies them to the local database
// (see the package documentation). The writer calls it from its one
// goroutine, one batch at a time.
type Log interface {
	// Begin starts a batch on top of the newest durable revision.
	Begin(ctx context.Context) (Batch, error)
}

// Batch is one group commit on its way through the Log: the records
// appended to it become durable, and applied, together or not at all.
type Batch interface {
	// State is the local state as the batch sees it: decisions read it.
	State
	// Append queues rec's rows: the revision, its changes and layer
	// changes, and the kv and layer_kv rows they leave. Records are
	// appended in revision order, each following the one before.
	Append(rec Record)
	// Flush writes what Append queued into the batch's view of the local
	// state, so that State's reads of the database see it. It makes
	// nothing durable.
	Flush(ctx context.Context) error
	// Commit makes every appended record durable and applied, in order,
	// or none of them (an error). When it returns nil the revisions are
	// acknowledged: no crash takes them back.
	Commit(ctx context.Context) error
	// Abort drops the batch and everything appended to it.
	Abort()
}

// Deferred is a Log whose batches are durable before the database holds
// them (sqlitelog with a journal): Commit writes a batch's records to a
// journal and syncs them, and leaves its rows in one database transaction
// with the batches before it, which Settle commits. The writer settles
// when it is idle, when the oldest unsettled batch is older than
// MaxUnsettled or the journal is Full, before it runs anything alone, and
// when a reader waits for a revision the database lacks (AwaitSettled).
type Deferred interface {
	Log
	// Unsettled reports since when the log has held batches that the
	// database does not (zero: none).
	Unsettled() time.Time
	// Full reports that the journal wants a Settle soon.
	Full() bool
	// Settle commits them to the database.
	Settle(ctx context.Context) error
	// Settled returns the newest revision the database holds; any
	// goroutine may call it.
	Settled() int64
	// BeginApply starts a batch that the database commits alone, for
	// records that are durable already (what the journal held at start).
	BeginApply(ctx context.Context) (Batch, error)
}

// Fencer is a Batch that checks fences (a replicated Log's): its Commit
// makes the batch durable only if every fence given holds at that moment,
// checked in the same step (one etcd transaction); when one does not, it
// fails with a *FenceError and nothing of the batch is durable.
type Fencer interface {
	Fence(f record.Fence)
}

// FenceError: a replicated Log refused a batch because Fences no longer
// hold. Nothing of the batch was made durable: the writer fails the
// requests that carried those fences (record.ErrFenced) and decides the
// others again.
type FenceError struct{ Fences []record.Fence }

func (e *FenceError) Error() string {
	return fmt.Sprintf("%v: %v is gone", record.ErrFenced, e.Fences)
}

func (e *FenceError) Unwrap() error { return record.ErrFenced }

// TokenFencer is a Batch that checks the token epoch (a replicated
// Log's): its Commit makes the batch durable only if the cluster's token
// epoch is still the one given, checked in the same step; when it moved
// (a token revoked, or its grants changed, since), Commit fails with a
// *TokensMovedError and nothing of the batch is durable.
type TokenFencer interface {
	FenceTokens(epoch int64)
}

// TokensMovedError: a replicated Log refused a batch because the
// cluster's token epoch is no longer the one the batch's writes were
// allowed at. Nothing of the batch was made durable: the writer brings
// the replica's copy of the tokens up to date (Config.RefreshTokens),
// decides again whether each write's token allows it (those it no longer
// allows fail as their door would refuse them), and decides the others
// again. HeadMoved: another replica committed too, and the writer catches
// up first.
type TokensMovedError struct {
	Epoch     int64
	HeadMoved bool
}

func (e *TokensMovedError) Error() string {
	return fmt.Sprintf("audit: the cluster's tokens changed (token epoch %d) after this batch's writes were allowed", e.Epoch)
}

// State is the local state as a batch sees it: the newest durable
// revision's, with the batch's records applied as far as they were
// flushed. Its reads return rows as stored (a secret's value sealed).
type State interface {
	// QueryContext and QueryRowContext read the database in the batch's
	// transaction (flushed records included).
	sqlitedb.Querier
	// KV returns key's kv row, the batch's records included even when not
	// flushed, or nil when the key does not exist.
	KV(ctx context.Context, key string) (*record.KeyValue, error)
	// LayerRow returns the layer_kv row of layer and key, the batch's
	// records included even when not flushed; a missing row is an error.
	LayerRow(ctx context.Context, layer, key string) (*record.LayerValue, error)
	// LayerRows returns key's rows in the configured layers, by layer, as
	// far as the batch was flushed.
	LayerRows(ctx context.Context, key string) (map[string]*record.LayerValue, error)
}

// ErrHeadMoved: a replicated Log refused a batch because the shared log's
// head is no longer the revision the batch was decided on: another replica
// committed first. Nothing of the batch was made durable; the writer
// catches up (Replicated.After) and decides the batch again.
var ErrHeadMoved = errors.New("audit: the replicated log moved on: another replica committed first")

// ErrDiverged: a record of the shared log does not follow this replica's
// chain: its hash or its state digest differs from the ones computed from
// the local state and the record's content (a record tampered with, or a
// local database that is not the log's). The writer applies nothing of it
// and keeps refusing until the replica is rebuilt.
var ErrDiverged = errors.New("audit: the replicated log does not follow this replica's audit chain")

// Replicated is a Log shared by several replicas (package etcdlog). A batch
// of Begin compares the shared log's head with the revision it was decided
// on: when another replica moved it, Commit fails with ErrHeadMoved and
// nothing is durable. Besides the batches it decides, the writer applies,
// in order, the records the other replicas committed (Writer.Apply), each
// checked against the local chain and state.
type Replicated interface {
	Log
	// BeginApply starts a batch of records that the shared log already
	// holds: its Commit commits them to the local database alone.
	BeginApply(ctx context.Context) (Batch, error)
	// After returns the records the shared log holds after revision rev,
	// in order.
	After(ctx context.Context, rev int64) ([]Record, error)
}
