package read

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/audit/internal/layer"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/keyspace"
)

// Reader reads a store: its current values from memory, everything else
// from the database's readers' connections. It is safe for concurrent
// use.
type Reader struct {
	db     *sql.DB
	keys   *keyring.Keyring
	layers *layer.Order
	cur    *Current
	// settled, when set, waits until the database holds a revision
	// (commit.Writer.AwaitSettled): a store whose batches the database
	// takes after they are durable.
	settled func(ctx context.Context, rev int64) error
}

// New returns the reader of the store whose readers' connections are db,
// whose secrets keys opens, whose layers are layers and whose current
// state is cur.
func New(db *sql.DB, keys *keyring.Keyring, layers *layer.Order, cur *Current) *Reader {
	return &Reader{db: db, keys: keys, layers: layers, cur: cur}
}

// AwaitDatabase makes every read of the database first wait, with fn,
// until the database holds the newest durable revision (cur's): set it
// before the first read, on a store whose batches the database takes
// after they are durable (sqlitelog with a journal).
func (r *Reader) AwaitDatabase(fn func(ctx context.Context, rev int64) error) { r.settled = fn }

// AwaitDB waits until the database holds the newest durable revision (see
// AwaitDatabase); every read of the database comes after it.
func (r *Reader) AwaitDB(ctx context.Context) error {
	if r.settled == nil {
		return nil
	}
	return r.settled(ctx, r.cur.Rev())
}

// Current is the newest durable state in memory: every key's current
// value (a mirror of the kv table, secrets in the clear) and the newest
// durable revision. The commit path advances it once a revision is
// durable, and only then: a reader never sees a revision that a crash
// could take back. Values in it are never modified.
type Current struct {
	mu  sync.RWMutex
	kv  map[string]*record.KeyValue
	rev atomic.Int64
	// under holds, for the prefixes Range was asked for, the keys under
	// each, kept as keys change: Range then costs the keys under its
	// prefix, not every key. Few prefixes ask (those with a schema, and
	// the schemas' records'); beyond maxIndexed the indexes are dropped
	// and built again on use.
	under map[string]map[string]*record.KeyValue
	// secrets counts the keys marked secret: with none, IsSecret (asked
	// of every write) answers without looking the key up.
	secrets int
}

// maxIndexed bounds Current.under: the schemas' prefixes and the
// schemas' records' own.
const maxIndexed = 1024

// NewCurrent returns the state whose keys are kvs at revision rev.
func NewCurrent(kvs []record.KeyValue, rev int64) *Current {
	c := &Current{kv: make(map[string]*record.KeyValue, len(kvs))}
	for i := range kvs {
		c.kv[kvs[i].Key] = &kvs[i]
		if kvs[i].Secret {
			c.secrets++
		}
	}
	c.rev.Store(rev)
	return c
}

// Rev returns the newest durable revision; 0 for an empty store.
func (c *Current) Rev() int64 { return c.rev.Load() }

// Get returns key's current value, or nil. The caller must not modify it.
func (c *Current) Get(key string) *record.KeyValue {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.kv[key]
}

// Range calls fn with every key under the canonical prefix p, in no
// order, holding the state still: fn must be quick and not call c. The
// first Range of a prefix walks every key and indexes the prefix's (see
// Current.under); later ones walk the prefix's keys alone. A schema's
// check (the commit path's) is its caller.
func (c *Current) Range(p string, fn func(kv *record.KeyValue)) {
	c.mu.RLock()
	m, ok := c.under[p]
	if ok {
		defer c.mu.RUnlock()
		for _, kv := range m {
			fn(kv)
		}
		return
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok = c.under[p]; !ok {
		m = map[string]*record.KeyValue{}
		for k, kv := range c.kv {
			if keyspace.InPrefix(k, p) {
				m[k] = kv
			}
		}
		if c.under == nil || len(c.under) >= maxIndexed {
			c.under = map[string]map[string]*record.KeyValue{}
		}
		c.under[p] = m
	}
	for _, kv := range m {
		fn(kv)
	}
}

// IsSecret reports whether key is currently marked secret.
func (c *Current) IsSecret(key string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.secrets == 0 {
		return false
	}
	kv := c.kv[key]
	return kv != nil && kv.Secret
}

// Advance applies revs, in order, and makes rev the newest durable
// revision. The commit path calls it once revs are durable, and before
// anyone is told of them.
func (c *Current) Advance(revs []record.Revision, rev int64) {
	c.mu.Lock()
	for _, r := range revs {
		for _, ch := range r.Changes {
			if old := c.kv[ch.Key]; old != nil && old.Secret {
				c.secrets--
			}
			if ch.New != nil {
				c.kv[ch.Key] = ch.New
				if ch.New.Secret {
					c.secrets++
				}
			} else {
				delete(c.kv, ch.Key)
			}
			for p, m := range c.under {
				if !keyspace.InPrefix(ch.Key, p) {
					continue
				}
				if ch.New != nil {
					m[ch.Key] = ch.New
				} else {
					delete(m, ch.Key)
				}
			}
		}
	}
	c.mu.Unlock()
	c.rev.Store(rev)
}

// GoneBelow is the error for a revision below the history horizon.
func GoneBelow(rev, horizon int64) error {
	return fmt.Errorf("%w: revision %d is older than the history horizon %d (revisions before %d were compacted away; see the compactions)",
		record.ErrRevisionGone, rev, horizon, horizon)
}

// LayerRows returns key's rows in the layers of order, as q holds them
// (secrets sealed), its store layer row included where the database leaves
// it implied by kv.
func LayerRows(ctx context.Context, q sqlitedb.Querier, order []string, key string) (map[string]*record.LayerValue, error) {
	rows, err := q.QueryContext(ctx, sqlitedb.StackQuery(order), sqlitedb.StackArgs(order, key)...)
	if err == nil {
		var out map[string]*record.LayerValue
		if out, err = sqlitedb.ScanLayerRows(rows); err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("audit: read layers of %q: %w", key, err)
}

// Stack returns the layers that define key, highest precedence first, and
// marks the one its effective value comes from. A secret's value is
// withheld (LayerValue.Hash and Length stand for it).
func (r *Reader) Stack(ctx context.Context, key string) ([]record.LayerEntry, error) {
	if err := keyspace.Validate(key); err != nil {
		return nil, err
	}
	if err := r.AwaitDB(ctx); err != nil {
		return nil, err
	}
	rows, err := LayerRows(ctx, r.db, r.layers.Names(), key)
	if err != nil {
		return nil, err
	}
	if err := r.keys.RevealLayers(key, rows); err != nil {
		return nil, err
	}
	out := r.layers.Stack(rows)
	for i := range out {
		w, err := r.keys.WithheldLayer(key, &out[i].Value)
		if err != nil {
			return nil, err
		}
		out[i].Value = *w
	}
	return out, nil
}

// LoadLayerChanges adds the layer changes of the given revisions, secrets
// decrypted with k.
func LoadLayerChanges(ctx context.Context, q sqlitedb.Querier, k *keyring.Keyring, revs []record.Revision) error {
	for i := range revs {
		rows, err := q.QueryContext(ctx, `SELECT layer, key, old_value, old_type, new_value, new_type, secret
			FROM layer_changes WHERE rev = ? ORDER BY key, layer`, revs[i].Rev)
		if err != nil {
			return fmt.Errorf("audit: load layer changes: %w", err)
		}
		for rows.Next() {
			var lc record.LayerChange
			var oldV, newV []byte
			var oldT, newT sql.NullString
			var secret bool
			if err := rows.Scan(&lc.Layer, &lc.Key, &oldV, &oldT, &newV, &newT, &secret); err != nil {
				rows.Close()
				return fmt.Errorf("audit: load layer changes: %w", err)
			}
			lc.Old, lc.New = sqlitedb.LayerValueOf(oldV, oldT, secret), sqlitedb.LayerValueOf(newV, newT, secret)
			for _, v := range []*record.LayerValue{lc.Old, lc.New} {
				if err := k.RevealLayer(lc.Key, v); err != nil {
					rows.Close()
					return err
				}
			}
			revs[i].LayerChanges = append(revs[i].LayerChanges, lc)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("audit: load layer changes: %w", err)
		}
	}
	return nil
}

// RollbackPlan is a rollback's transaction with the change each op makes.
type RollbackPlan struct {
	Actor, Reason, Origin string
	Ops                   []PlannedOp
}

// PlannedOp is an op of a rollback and the change it makes.
type PlannedOp struct {
	record.Op
	Change record.Change
}

// PlanRollback computes the transaction that rolls req's scope back to
// req.To, given the current state visible through q at revision current,
// secrets opened with keys.
func PlanRollback(ctx context.Context, q sqlitedb.Querier, keys *keyring.Keyring, req *record.RollbackRequest, current int64) (RollbackPlan, error) {
	if req.To > current {
		return RollbackPlan{}, fmt.Errorf("%w: revision %d (current revision is %d)", record.ErrFutureRevision, req.To, current)
	}
	cond, args, err := ScopeCond("key", req.Scope)
	if err != nil {
		return RollbackPlan{}, err
	}
	h, err := chain.LoadHorizon(ctx, q)
	if err != nil {
		return RollbackPlan{}, err
	}
	if req.To < h.Horizon {
		return RollbackPlan{}, GoneBelow(req.To, h.Horizon)
	}
	if req.ExpectRev > 0 {
		var n int
		err := q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM changes WHERE `+cond+` AND rev > ? LIMIT 1)`,
			append(append([]any{}, args...), req.ExpectRev)...).Scan(&n)
		if err != nil {
			return RollbackPlan{}, fmt.Errorf("audit: rollback: %w", err)
		}
		if n > 0 {
			return RollbackPlan{}, &record.ConflictError{Expected: req.ExpectRev, Rev: current}
		}
	}
	changes, err := DiffRange(ctx, q, keys, cond, args, req.To, current)
	if err != nil {
		return RollbackPlan{}, err
	}
	reason := fmt.Sprintf("rollback to %d", req.To)
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	t := RollbackPlan{Actor: req.Actor, Reason: reason, Origin: req.Origin}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Key < changes[j].Key })
	for _, c := range changes {
		// c turns the state at To into the current one; the rollback is its
		// inverse, conditional on the key still being as we saw it.
		inv := record.Change{Key: c.Key, Old: c.New, New: c.Old}
		var op record.Op
		if c.Old == nil {
			inv.Type = record.OpDelete
			op = record.Delete(c.Key)
		} else {
			inv.Type = record.OpPut
			op = record.Put(c.Key, c.Old.Value, c.Old.ContentType)
			// A secret value comes back as a secret. (A key marked secret
			// since keeps its mark too: the writer sees it in kv.)
			op.Secret = c.Old.Secret
		}
		var modRev int64
		if c.New != nil {
			modRev = c.New.ModRev
		}
		op = op.WithModRev(modRev)
		t.Ops = append(t.Ops, PlannedOp{Op: op, Change: inv})
	}
	return t, nil
}

// DryRunRollback computes the revision that req (validated, its origin
// set) would commit, its secrets withheld, and commits nothing: its Rev
// is 0.
func (r *Reader) DryRunRollback(ctx context.Context, req record.RollbackRequest) (record.Revision, error) {
	var out record.Revision
	err := r.ReadTx(ctx, func(tx *sql.Tx, current int64) error {
		txn, err := PlanRollback(ctx, tx, r.keys, &req, current)
		if err != nil {
			return err
		}
		out = record.Revision{Actor: txn.Actor, Reason: txn.Reason, Origin: txn.Origin, RollbackTo: req.To}
		for _, op := range txn.Ops {
			out.Changes = append(out.Changes, op.Change)
		}
		out.NumChanges = len(out.Changes)
		out.Changes, err = r.keys.WithholdChanges(out.Changes)
		return err
	})
	return out, err
}
