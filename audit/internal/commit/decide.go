package commit

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/audit/internal/layer"
	"github.com/configd/configd/audit/internal/read"
	"github.com/configd/configd/audit/internal/schema"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
)

// decider is the first half of the commit path: it decides what each
// request of a batch commits, against the newest durable state and what
// the batch's earlier requests decided. It keeps an in-memory view of the
// batch, the mirror (read.Current) plus an overlay of what the batch's
// earlier requests changed, and reads the Batch's state only where the
// view does not reach: a rollback, a source's snapshot, a write when some
// key has layer rows of its own (layered), a sealed store. Every check
// that can refuse a request (a conflict, a key owned by a higher layer, a
// secret without its data key) runs before the request appends anything,
// so a refused request leaves no trace while the others commit.
//
// Invariant: inside the batch, after a Flush, the kv table equals the
// mirror with the overlay applied (the values sealed).
type decider struct {
	keys    *keyring.Keyring
	layers  *layer.Order
	schemas *schema.Cache
	cur     *read.Current
	head    *chain.Head
	now     func() time.Time

	// mirror: old values come from cur and the overlay (false for a
	// sealed store, whose mirror holds ciphertext: they come from the
	// database).
	mirror bool
	// layered: some key may have layer rows other than its store layer
	// row mirroring kv (a source's row or a tombstone), so a write reads
	// the key's layer rows. Set at start and when a source writes rows;
	// never cleared while the store is open.
	layered bool
	overlay map[string]*record.KeyValue // the batch's changes, plain; nil: deleted
	// batchSchemas: the overlay's schema records (see checkSchemas).
	batchSchemas map[string]*record.KeyValue

	// The rows, as stored, that the revision being appended replaces
	// (see storedOld); reused.
	oldKV    []*record.KeyValue
	oldLayer []*record.LayerValue
}

// begin starts a batch.
func (d *decider) begin() {
	clear(d.overlay)
	clear(d.batchSchemas)
	d.head.Begin()
}

// readsDB reports whether deciding req reads the database, so that the
// batch must be flushed before it.
func (d *decider) readsDB(req revisionRequest) bool {
	return req.readsDB() || d.layered || !d.mirror
}

// decideTxn decides a transaction (a rollback's when rollbackTo > 0);
// force: a schema it sets is not checked against the state.
func (d *decider) decideTxn(ctx context.Context, b Batch, txn record.Txn, rollbackTo, prev int64, force bool) (record.Revision, error) {
	if txn.IfRev != nil && *txn.IfRev != prev {
		return record.Revision{}, &record.ConflictError{Expected: *txn.IfRev, Rev: prev}
	}
	olds := make([]*record.KeyValue, len(txn.Ops))
	for i, op := range txn.Ops {
		old, err := d.old(ctx, b, op.Key)
		if err != nil {
			return record.Revision{}, err
		}
		olds[i] = old
		if op.IfModRev != nil {
			var actual int64
			if old != nil {
				actual = old.ModRev
			}
			if actual != *op.IfModRev {
				return record.Revision{}, &record.ConflictError{Key: op.Key, Expected: *op.IfModRev, Actual: actual, Rev: prev}
			}
		}
	}
	// The store layer: a key that a higher layer defines cannot be changed
	// here; a delete leaves a tombstone when a lower layer defines the key.
	// A put of a secret key, or one that marks it, is secret; the mark
	// goes with a delete.
	secret := make([]bool, len(txn.Ops))
	for i, op := range txn.Ops {
		secret[i] = op.Type == record.OpPut && (op.Secret || olds[i] != nil && olds[i].Secret)
		if secret[i] && !d.keys.Enabled() {
			return record.Revision{}, fmt.Errorf("%w: key %q is secret and the store has no master key", keyring.ErrNoMasterKey, op.Key)
		}
	}
	var lcs []record.LayerChange
	for i, op := range txn.Ops {
		stack, err := d.stack(ctx, b, op.Key, olds[i])
		if err != nil {
			return record.Revision{}, err
		}
		if owner := d.layers.OwnerAbove(stack); owner != "" {
			return record.Revision{}, &record.OwnedError{Key: op.Key, Layer: owner}
		}
		var nv *record.LayerValue
		switch {
		case op.Type == record.OpPut:
			nv = &record.LayerValue{Value: op.Value, ContentType: op.ContentType, Secret: secret[i]}
		case d.layers.DefinedBelow(stack):
			nv = &record.LayerValue{Tombstone: true}
		}
		if old := stack[record.StoreLayer]; !old.Equal(nv) {
			lcs = append(lcs, record.LayerChange{Layer: record.StoreLayer, Key: op.Key, Old: old, New: nv})
		}
	}
	rev := prev + 1
	var changes []record.Change
	for i, op := range txn.Ops {
		old := olds[i]
		switch op.Type {
		case record.OpPut:
			if c, ok := effectiveChange(op.Key, old, &record.LayerValue{Value: op.Value, ContentType: op.ContentType}, secret[i], rev); ok {
				changes = append(changes, c)
			}
		case record.OpDelete:
			if c, ok := effectiveChange(op.Key, old, nil, false, rev); ok {
				changes = append(changes, c)
			}
		}
	}
	if len(changes) == 0 && len(lcs) == 0 {
		return record.Revision{Rev: prev}, nil
	}
	if err := d.checkSchemas(changes, force); err != nil {
		return record.Revision{}, err
	}
	r := record.Revision{
		Rev: rev, Time: d.now().UTC(), Actor: txn.Actor, Reason: txn.Reason, Origin: txn.Origin,
		RollbackTo: rollbackTo, NumChanges: len(changes), Changes: changes, LayerChanges: lcs,
	}
	if err := d.append(ctx, b, r); err != nil {
		return record.Revision{}, err
	}
	return r, nil
}

// decideRollback plans a rollback against the batch's state, then decides
// its transaction.
func (d *decider) decideRollback(ctx context.Context, b Batch, req *record.RollbackRequest, prev int64) (record.Revision, error) {
	plan, err := read.PlanRollback(ctx, b, d.keys, req, prev)
	if err != nil {
		return record.Revision{}, err
	}
	if len(plan.Ops) == 0 {
		return record.Revision{Rev: prev}, nil
	}
	txn := record.Txn{Actor: plan.Actor, Reason: plan.Reason, Origin: plan.Origin}
	for _, op := range plan.Ops {
		txn.Ops = append(txn.Ops, op.Op)
	}
	return d.decideTxn(ctx, b, txn, req.To, prev, false)
}

// decideSource decides a source's snapshot as one revision.
func (d *decider) decideSource(ctx context.Context, b Batch, sr *sourceRequest, prev int64) (record.Revision, error) {
	lcs, eff, err := d.planSource(ctx, b, sr)
	if err != nil {
		return record.Revision{}, err
	}
	if len(lcs) == 0 {
		return record.Revision{Rev: prev}, nil
	}
	rev := prev + 1
	var changes []record.Change
	for _, lc := range lcs {
		old, err := d.old(ctx, b, lc.Key)
		if err != nil {
			return record.Revision{}, err
		}
		// A source's value of a secret key stays secret (the mark sticks);
		// a source cannot mark a key.
		if c, ok := effectiveChange(lc.Key, old, eff[lc.Key], old != nil && old.Secret, rev); ok {
			changes = append(changes, c)
		}
	}
	if err := d.checkSchemas(changes, false); err != nil {
		return record.Revision{}, fmt.Errorf("source %s: %w", sr.layer, err)
	}
	who := sourceActor(sr.layer)
	r := record.Revision{Rev: rev, Time: d.now().UTC(), Actor: who, Origin: who,
		NumChanges: len(changes), Changes: changes, LayerChanges: lcs}
	if err := d.append(ctx, b, r); err != nil {
		return record.Revision{}, err
	}
	return r, nil
}

// sourceActor is the actor and origin of a source's revisions.
func sourceActor(layer string) string { return "source:" + layer }

// planSource computes, against the batch's state, the layer changes and
// effective changes that a source's snapshot makes.
func (d *decider) planSource(ctx context.Context, b Batch, sr *sourceRequest) ([]record.LayerChange, map[string]*record.LayerValue, error) {
	rows, err := b.QueryContext(ctx, `SELECT key, value, content_type, secret FROM layer_kv WHERE layer = ?`, sr.layer)
	var old map[string]*record.LayerValue
	if err == nil {
		old, err = sqlitedb.ScanLayerRows(rows)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("audit: read layer %s: %w", sr.layer, err)
	}
	for k, v := range old {
		if err := d.keys.RevealLayer(k, v); err != nil {
			return nil, nil, err
		}
	}
	var lcs []record.LayerChange
	for k, v := range sr.snap {
		nv := v
		if !old[k].Equal(&nv) {
			lcs = append(lcs, record.LayerChange{Layer: sr.layer, Key: k, Old: old[k], New: &nv})
		}
	}
	for k, v := range old {
		if _, still := sr.snap[k]; !still {
			lcs = append(lcs, record.LayerChange{Layer: sr.layer, Key: k, Old: v})
		}
	}
	sort.Slice(lcs, func(i, j int) bool { return lcs[i].Key < lcs[j].Key })
	// The effective value of each changed key, after the change.
	eff := make(map[string]*record.LayerValue, len(lcs))
	for _, lc := range lcs {
		stack, err := d.layerRows(ctx, b, lc.Key)
		if err != nil {
			return nil, nil, err
		}
		stack[sr.layer] = lc.New
		if lc.New == nil {
			delete(stack, sr.layer)
		}
		_, v := d.layers.Resolve(stack)
		eff[lc.Key] = v
	}
	return lcs, eff, nil
}

// effectiveChange returns the change that makes key's effective value nv
// (nil: absent; secret: a secret's) at revision rev, given its current
// value old, and false when nothing changes.
func effectiveChange(key string, old *record.KeyValue, nv *record.LayerValue, secret bool, rev int64) (record.Change, bool) {
	switch {
	case nv == nil && old == nil:
		return record.Change{}, false
	case nv == nil:
		return record.Change{Key: key, Type: record.OpDelete, Old: old}, true
	case old != nil && old.ContentType == nv.ContentType && bytes.Equal(old.Value, nv.Value) && old.Secret == secret:
		return record.Change{}, false
	}
	kv := &record.KeyValue{Key: key, Value: nv.Value, ContentType: nv.ContentType, CreateRev: rev, ModRev: rev, Version: 1, Secret: secret}
	if old != nil {
		kv.CreateRev, kv.Version = old.CreateRev, old.Version+1
	}
	return record.Change{Key: key, Type: record.OpPut, Old: old, New: kv}, true
}

// old returns key's current value in the batch, decrypted (a copy: the
// caller may keep it); nil when the key does not exist. Without the mirror
// (a sealed store) it reads the database, which the caller has flushed.
func (d *decider) old(ctx context.Context, b Batch, key string) (*record.KeyValue, error) {
	var kv *record.KeyValue
	if d.mirror {
		var ok bool
		if kv, ok = d.overlay[key]; !ok {
			kv = d.cur.Get(key)
		}
	} else {
		var err error
		if kv, err = b.KV(ctx, key); err != nil {
			return nil, err
		}
	}
	if kv == nil {
		return nil, nil
	}
	c := *kv
	if !d.mirror {
		if err := d.keys.RevealKV(&c); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// stack returns key's layer rows, decrypted, given its current value old:
// its store layer row alone when no other layer holds rows (see
// decider.layered), and otherwise the rows the database holds (flushed).
func (d *decider) stack(ctx context.Context, b Batch, key string, old *record.KeyValue) (map[string]*record.LayerValue, error) {
	if d.layered || !d.mirror {
		return d.layerRows(ctx, b, key)
	}
	if old == nil {
		return map[string]*record.LayerValue{}, nil
	}
	return map[string]*record.LayerValue{record.StoreLayer: {Value: old.Value, ContentType: old.ContentType, Secret: old.Secret}}, nil
}

// layerRows returns key's rows in the configured layers, decrypted.
func (d *decider) layerRows(ctx context.Context, b Batch, key string) (map[string]*record.LayerValue, error) {
	rows, err := b.LayerRows(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := d.keys.RevealLayers(key, rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// append seals plain, chains it (its hash and the digest of the state it
// produces) and appends it to the batch; then the overlay takes its
// changes. It fails (sealing a secret, reading a secret's stored row)
// before it appends anything or moves the chain.
func (d *decider) append(ctx context.Context, b Batch, plain record.Revision) error {
	// What is stored, and hashed: secrets sealed.
	r, err := d.keys.SealRevision(&plain)
	if err != nil {
		return err
	}
	if err := d.storedOld(ctx, b, &plain); err != nil {
		return err
	}
	hash, state := d.head.Add(&r, d.oldKV, d.oldLayer)
	b.Append(Record{Rev: r, Hash: hash, State: state})
	d.noteLayers(&r)
	for _, c := range plain.Changes {
		d.overlay[c.Key] = c.New
	}
	d.noteSchemas(plain.Changes)
	return nil
}

// noteLayers sets layered once r writes a layer row other than the store
// layer's mirror of kv: a source's row or a tombstone.
func (d *decider) noteLayers(r *record.Revision) {
	for _, lc := range r.LayerChanges {
		if lc.New != nil && (lc.Layer != record.StoreLayer || lc.New.Tombstone) {
			d.layered = true
		}
	}
}

// storedOld sets d.oldKV and d.oldLayer to the rows, as stored, that
// plain's changes replace: from plain, except a secret's, whose ciphertext
// only the database (or the batch) holds.
func (d *decider) storedOld(ctx context.Context, b Batch, plain *record.Revision) error {
	clear(d.oldKV)
	clear(d.oldLayer)
	d.oldKV, d.oldLayer = d.oldKV[:0], d.oldLayer[:0]
	for _, c := range plain.Changes {
		old := c.Old
		if c.Old != nil && c.Old.Secret {
			kv, err := b.KV(ctx, c.Key)
			if err != nil {
				return err
			}
			if kv == nil {
				return fmt.Errorf("%w: %q", record.ErrNotFound, c.Key)
			}
			old = kv
		}
		d.oldKV = append(d.oldKV, old)
	}
	for _, lc := range plain.LayerChanges {
		old := lc.Old
		if lc.Old != nil && lc.Old.Secret && !lc.Old.Tombstone {
			v, err := b.LayerRow(ctx, lc.Layer, lc.Key)
			if err != nil {
				return err
			}
			old = v
		}
		d.oldLayer = append(d.oldLayer, old)
	}
	return nil
}
