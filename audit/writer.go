package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/keyspace"
)

// request is one commit or rollback waiting for the writer.
type request struct {
	ctx      context.Context
	txn      Txn                             // a commit, when rollback is nil
	rollback *RollbackRequest                // a rollback, computed inside the writer
	source   *sourceRequest                  // a source's new snapshot
	alone    func(ctx context.Context) error // work that runs alone, between batches
	done     chan result
}

type result struct {
	rev Revision
	err error
}

// Alone runs fn on the writer, alone: after the batch under way and before
// the next one, with ctx's values but not its end (once fn starts, it
// finishes). If ctx ends while fn waits in the queue, fn does not run.
func (s *Store) alone(ctx context.Context, fn func(ctx context.Context) error) error {
	_, err := s.submitResult(ctx, &request{alone: fn})
	return err
}

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
	if err := s.prepare(&txn); err != nil {
		return Revision{}, err
	}
	var secretKeys []string
	for _, op := range txn.Ops {
		if op.Type == OpPut && (op.Secret || s.IsSecret(op.Key)) {
			secretKeys = append(secretKeys, op.Key)
		}
	}
	if len(secretKeys) > 0 {
		if err := s.ensureDataKeys(ctx, secretKeys); err != nil {
			return Revision{}, err
		}
	}
	return s.submit(ctx, &request{txn: txn})
}

// prepare validates and normalises a transaction outside the writer, so
// that the writer spends its time on SQL only.
func (s *Store) prepare(txn *Txn) error {
	if len(txn.Ops) == 0 {
		return fmt.Errorf("%w: transaction has no operations", ErrBadRequest)
	}
	if txn.Origin == "" {
		txn.Origin = "api"
	}
	seen := make(map[string]struct{}, len(txn.Ops))
	ops := make([]Op, len(txn.Ops))
	for i, op := range txn.Ops {
		// A put writes a key, which must look like what it is; a delete
		// takes any key, one stored before that rule included.
		check := keyspace.Validate
		if op.Type == OpPut {
			check = keyspace.ValidateNew
		}
		if err := check(op.Key); err != nil {
			return err
		}
		if _, dup := seen[op.Key]; dup {
			return fmt.Errorf("%w: key %q appears more than once in one transaction", ErrBadRequest, op.Key)
		}
		seen[op.Key] = struct{}{}
		switch op.Type {
		case OpPut:
			ct, err := NormalizeContentType(op.ContentType)
			if err != nil {
				return fmt.Errorf("key %q: %w", op.Key, err)
			}
			op.ContentType = ct
			if len(op.Value) > s.opts.maxValueSize {
				return fmt.Errorf("%w: key %q: value is %d bytes, the limit is %d", ErrTooLarge, op.Key, len(op.Value), s.opts.maxValueSize)
			}
			if err := record.CheckValue(op.Key, op.Value, ct); err != nil {
				if op.Secret || s.IsSecret(op.Key) {
					// The parser's message may quote the value.
					return fmt.Errorf("%w: key %q: the value does not parse as %s (details withheld: the key is secret)", ErrInvalidValue, op.Key, ct)
				}
				return err
			}
			if op.Value == nil {
				op.Value = []byte{}
			}
		case OpDelete:
			if op.Secret {
				return fmt.Errorf("%w: key %q: a delete cannot mark a key secret", ErrBadRequest, op.Key)
			}
			op.Value, op.ContentType = nil, ""
		default:
			return fmt.Errorf("%w: key %q: unknown operation %d", ErrBadRequest, op.Key, op.Type)
		}
		if op.IfModRev != nil && *op.IfModRev < 0 {
			return fmt.Errorf("%w: key %q: if_mod_rev must be >= 0", ErrBadRequest, op.Key)
		}
		ops[i] = op
	}
	txn.Ops = ops
	return nil
}

func (s *Store) submit(ctx context.Context, req *request) (Revision, error) {
	res, err := s.submitResult(ctx, req)
	return res.rev, err
}

func (s *Store) submitResult(ctx context.Context, req *request) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	req.ctx = ctx
	req.done = make(chan result, 1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return result{}, ErrClosed
	}
	select {
	case s.queue <- req:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return result{}, ctx.Err()
	}
	res := <-req.done
	return res, res.err
}

// writer owns the write connection. It takes queued requests in batches and
// commits each batch as one SQLite transaction: one fsync for many commits.
type writer struct {
	s     *Store
	stmts map[string]*sql.Stmt
	multi [nMulti][]*sql.Stmt // by row count: 1, 2, 4 … maxMulti
	head  *chain.Head

	// mirror: the writer reads current values from s.current and the
	// overlay (false for a sealed store, whose mirror holds ciphertext).
	mirror bool
	// layered: some key may have layer rows other than its store layer
	// row mirroring kv (a source's row or a tombstone), so a write reads
	// the key's layer rows. Set at Open and when a source writes rows;
	// never cleared while the store is open.
	layered bool
	overlay map[string]*KeyValue // the batch's changes, plain; nil: deleted
	pend    pending
}

const (
	qGetKV     = `SELECT value, content_type, create_rev, mod_rev, version, secret FROM kv WHERE key = ?`
	qInsRev    = `INSERT INTO revisions (rev, ts, actor, reason, origin, rollback_to, num_changes) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qInsChange = `INSERT INTO changes (rev, key, op, old_value, old_type, old_create_rev, old_mod_rev, old_version,
		new_value, new_type, new_create_rev, new_version, secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qPutKV = `INSERT INTO kv (key, value, content_type, create_rev, mod_rev, version, secret) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,
		create_rev = excluded.create_rev, mod_rev = excluded.mod_rev, version = excluded.version, secret = excluded.secret`
	qDelKV      = `DELETE FROM kv WHERE key = ?`
	qGetLayerKV = `SELECT value, content_type, secret FROM layer_kv WHERE layer = ? AND key = ?`
	qHighWater  = `UPDATE audit_chain SET high_water = max(high_water, ?) WHERE id = 1`
)

// tx returns the writer's prepared statement for query, bound to tx.
func (w *writer) tx(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	return tx.StmtContext(ctx, w.stmts[query])
}

// newWriter prepares the writer of s, whose state has the LtHash state.
func newWriter(ctx context.Context, s *Store, state chain.LtHash) (*writer, error) {
	head, err := chain.Prepare(ctx, s.wdb)
	if err != nil {
		return nil, err
	}
	layered, err := sqlitedb.Layered(ctx, s.wdb, s.opts.layers)
	if err != nil {
		return nil, err
	}
	w := &writer{s: s, stmts: map[string]*sql.Stmt{}, head: chain.NewHead(head, state),
		mirror: !s.opts.sealed, layered: layered, overlay: map[string]*KeyValue{},
		pend: pending{kv: map[string]*KeyValue{}, lkv: map[layerKey]*LayerValue{}}}
	for _, q := range []string{qGetKV, qDelKV, s.qLayerRows, qDelLayerKV, qGetLayerKV, qHighWater} {
		st, err := s.wdb.PrepareContext(ctx, q)
		if err != nil {
			w.closeStmts()
			return nil, fmt.Errorf("audit: prepare: %w", err)
		}
		w.stmts[q] = st
	}
	if err := w.prepareMulti(ctx); err != nil {
		w.closeStmts()
		return nil, err
	}
	return w, nil
}

func (w *writer) closeStmts() {
	for _, st := range w.stmts {
		st.Close()
	}
	for _, sts := range w.multi {
		for _, st := range sts {
			st.Close()
		}
	}
}

func (w *writer) run() {
	defer close(w.s.stopped)
	defer w.closeStmts()
	batch := make([]*request, 0, w.s.opts.maxBatch)
	for req := range w.s.queue {
		if req.alone != nil {
			w.runAlone(req)
			continue
		}
		batch = append(batch[:0], req)
		var alone *request // work that runs alone, taken while draining
	drain:
		for len(batch) < w.s.opts.maxBatch {
			select {
			case r, ok := <-w.s.queue:
				if !ok {
					break drain
				}
				if r.alone != nil {
					alone = r
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		w.commitBatch(batch)
		if alone != nil {
			w.runAlone(alone)
		}
	}
}

// runAlone runs a request's work alone, between batches of commits.
func (w *writer) runAlone(req *request) {
	if err := req.ctx.Err(); err != nil {
		req.done <- result{err: err}
		return
	}
	req.done <- result{err: req.alone(context.WithoutCancel(req.ctx))}
}

// commitBatch runs a batch in one transaction. Each request is checked
// against the batch's view before it stages anything (see batch.go), so a
// request that fails (a conflict, a key owned by a higher layer) leaves no
// trace while the others commit. Results are sent only once the
// transaction is durable.
func (w *writer) commitBatch(batch []*request) {
	results := make([]result, len(batch))
	ctx := context.Background()
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		w.failAll(batch, fmt.Errorf("audit: begin: %w", err))
		return
	}
	rev := w.s.rev.Load()
	w.beginBatch()
	var committed []Revision
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		if w.needsDB(req) {
			if err := w.flush(ctx, tx); err != nil {
				tx.Rollback()
				w.failAll(batch, err)
				return
			}
		}
		r, err := w.apply(ctx, tx, req, rev)
		if err != nil {
			results[i].err = err
			continue
		}
		// The caller gets r with its secrets withheld; the hooks and the
		// in-memory state get the plain values.
		results[i].rev, err = w.s.keys.WithholdRevision(r)
		if err != nil {
			results[i] = result{err: err}
		}
		if len(r.Changes) > 0 || len(r.LayerChanges) > 0 {
			rev = r.Rev
			committed = append(committed, r)
		}
	}
	if err := w.flush(ctx, tx); err != nil {
		tx.Rollback()
		w.failAll(batch, err)
		return
	}
	// The high-water mark: one row per batch, in its transaction.
	if rev > w.s.rev.Load() {
		if _, err := w.tx(ctx, tx, qHighWater).ExecContext(ctx, rev); err != nil {
			tx.Rollback()
			w.failAll(batch, fmt.Errorf("audit: record the high-water mark: %w", err))
			return
		}
	}
	if checkBatch != nil {
		if err := checkBatch(ctx, w, tx); err != nil {
			tx.Rollback()
			w.failAll(batch, err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		w.failAll(batch, fmt.Errorf("audit: commit: %w", err))
		return
	}
	w.head.Advance()
	w.s.currentMu.Lock()
	for _, r := range committed {
		for _, c := range r.Changes {
			if c.New != nil {
				w.s.current[c.Key] = c.New
			} else {
				delete(w.s.current, c.Key)
			}
		}
	}
	w.s.currentMu.Unlock()
	w.s.rev.Store(rev)
	for _, r := range committed {
		for _, fn := range w.s.opts.onCommit {
			fn(r)
		}
	}
	for i, req := range batch {
		req.done <- results[i]
	}
}

// checkBatch, when set (by tests), checks the batch's transaction before
// it commits; an error fails the batch.
var checkBatch func(ctx context.Context, w *writer, tx *sql.Tx) error

func (w *writer) failAll(batch []*request, err error) {
	if err = sqlitedb.StorageError(err); errors.Is(err, ErrDiskFull) {
		w.s.diskFull.Add(1)
	}
	w.s.opts.logger.Error("audit: commit failed", "err", err, "requests", len(batch))
	for _, req := range batch {
		req.done <- result{err: err}
	}
}

// apply runs one request inside the batch transaction. prev is the newest
// revision so far, including earlier requests of this batch.
func (w *writer) apply(ctx context.Context, tx *sql.Tx, req *request, prev int64) (Revision, error) {
	if req.source != nil {
		return w.applySource(ctx, tx, req.source, prev)
	}
	txn := req.txn
	if req.rollback != nil {
		plan, err := w.s.planRollbackTxn(ctx, tx, req.rollback, prev)
		if err != nil {
			return Revision{}, err
		}
		if len(plan.Ops) == 0 {
			return Revision{Rev: prev}, nil
		}
		txn = Txn{Actor: plan.Actor, Reason: plan.Reason, Origin: plan.Origin}
		for _, op := range plan.Ops {
			txn.Ops = append(txn.Ops, op.Op)
		}
	}
	olds := make([]*KeyValue, len(txn.Ops))
	for i, op := range txn.Ops {
		old, err := w.old(ctx, tx, op.Key)
		if err != nil {
			return Revision{}, err
		}
		olds[i] = old
		if op.IfModRev != nil {
			var actual int64
			if old != nil {
				actual = old.ModRev
			}
			if actual != *op.IfModRev {
				return Revision{}, &ConflictError{Key: op.Key, Expected: *op.IfModRev, Actual: actual, Rev: prev}
			}
		}
	}
	// The store layer: a key that a higher layer defines cannot be changed
	// here; a delete leaves a tombstone when a lower layer defines the key.
	// A put of a secret key, or one that marks it, is secret; the mark
	// goes with a delete.
	secret := make([]bool, len(txn.Ops))
	for i, op := range txn.Ops {
		secret[i] = op.Type == OpPut && (op.Secret || olds[i] != nil && olds[i].Secret)
		if secret[i] && !w.s.SecretsEnabled() {
			return Revision{}, fmt.Errorf("%w: key %q is secret and the store has no master key", ErrNoMasterKey, op.Key)
		}
	}
	var lcs []LayerChange
	for i, op := range txn.Ops {
		stack, err := w.stack(ctx, tx, op.Key, olds[i])
		if err != nil {
			return Revision{}, err
		}
		if owner := w.s.ownerAbove(stack); owner != "" {
			return Revision{}, &OwnedError{Key: op.Key, Layer: owner}
		}
		var nv *LayerValue
		switch {
		case op.Type == OpPut:
			nv = &LayerValue{Value: op.Value, ContentType: op.ContentType, Secret: secret[i]}
		case w.s.definedBelow(stack):
			nv = &LayerValue{Tombstone: true}
		}
		if old := stack[StoreLayer]; !old.Equal(nv) {
			lcs = append(lcs, LayerChange{Layer: StoreLayer, Key: op.Key, Old: old, New: nv})
		}
	}
	rev := prev + 1
	var changes []Change
	for i, op := range txn.Ops {
		old := olds[i]
		switch op.Type {
		case OpPut:
			if c, ok := effectiveChange(op.Key, old, &LayerValue{Value: op.Value, ContentType: op.ContentType}, secret[i], rev); ok {
				changes = append(changes, c)
			}
		case OpDelete:
			if c, ok := effectiveChange(op.Key, old, nil, false, rev); ok {
				changes = append(changes, c)
			}
		}
	}
	if len(changes) == 0 && len(lcs) == 0 {
		return Revision{Rev: prev}, nil
	}
	r := Revision{
		Rev: rev, Time: w.s.opts.now().UTC(), Actor: txn.Actor, Reason: txn.Reason, Origin: txn.Origin,
		NumChanges: len(changes), Changes: changes, LayerChanges: lcs,
	}
	if req.rollback != nil {
		r.RollbackTo = req.rollback.To
	}
	if err := w.stage(ctx, tx, r); err != nil {
		return Revision{}, err
	}
	return r, nil
}

// stack returns key's layer rows, decrypted, given its current value old:
// its store layer row alone when no other layer holds rows (see
// writer.layered), and otherwise the rows the database holds (flushed).
func (w *writer) stack(ctx context.Context, tx *sql.Tx, key string, old *KeyValue) (map[string]*LayerValue, error) {
	if w.layered || !w.mirror {
		return w.layerRows(ctx, tx, key)
	}
	if old == nil {
		return map[string]*LayerValue{}, nil
	}
	return map[string]*LayerValue{StoreLayer: {Value: old.Value, ContentType: old.ContentType, Secret: old.Secret}}, nil
}

// effectiveChange returns the change that makes key's effective value nv
// (nil: absent; secret: a secret's) at revision rev, given its current
// value old, and false when nothing changes.
func effectiveChange(key string, old *KeyValue, nv *LayerValue, secret bool, rev int64) (Change, bool) {
	switch {
	case nv == nil && old == nil:
		return Change{}, false
	case nv == nil:
		return Change{Key: key, Type: OpDelete, Old: old}, true
	case old != nil && old.ContentType == nv.ContentType && bytes.Equal(old.Value, nv.Value) && old.Secret == secret:
		return Change{}, false
	}
	kv := &KeyValue{Key: key, Value: nv.Value, ContentType: nv.ContentType, CreateRev: rev, ModRev: rev, Version: 1, Secret: secret}
	if old != nil {
		kv.CreateRev, kv.Version = old.CreateRev, old.Version+1
	}
	return Change{Key: key, Type: OpPut, Old: old, New: kv}, true
}

// applySource commits a source's snapshot as one revision.
func (w *writer) applySource(ctx context.Context, tx *sql.Tx, sr *sourceRequest, prev int64) (Revision, error) {
	lcs, eff, err := w.planSource(ctx, tx, sr)
	if err != nil {
		return Revision{}, err
	}
	if len(lcs) == 0 {
		return Revision{Rev: prev}, nil
	}
	rev := prev + 1
	var changes []Change
	for _, lc := range lcs {
		old, err := w.old(ctx, tx, lc.Key)
		if err != nil {
			return Revision{}, err
		}
		// A source's value of a secret key stays secret (the mark sticks);
		// a source cannot mark a key.
		if c, ok := effectiveChange(lc.Key, old, eff[lc.Key], old != nil && old.Secret, rev); ok {
			changes = append(changes, c)
		}
	}
	who := sourceActor(sr.layer)
	r := Revision{Rev: rev, Time: w.s.opts.now().UTC(), Actor: who, Origin: who,
		NumChanges: len(changes), Changes: changes, LayerChanges: lcs}
	if err := w.stage(ctx, tx, r); err != nil {
		return Revision{}, err
	}
	return r, nil
}

// stage records revision r in the batch: its row, its changes, the
// effective state in kv and its layer changes, staged for the next flush,
// its changes in the overlay and the state it produces in the LtHash. It
// fails (sealing a secret, reading a secret's stored row) before it stages
// anything.
func (w *writer) stage(ctx context.Context, tx *sql.Tx, plain Revision) error {
	// What is stored, and hashed: secrets sealed.
	r, err := w.s.keys.SealRevision(&plain)
	if err != nil {
		return err
	}
	oldKV, oldLayer, err := w.storedOld(ctx, tx, &plain)
	if err != nil {
		return err
	}
	hash, state := w.head.Add(&r, oldKV, oldLayer)
	p := &w.pend
	p.add(mRev, r.Rev, r.Time.UnixNano(), r.Actor, r.Reason, r.Origin, r.RollbackTo, r.NumChanges, hash, state)
	for i := range r.Changes {
		c := &r.Changes[i]
		args := []any{r.Rev, c.Key, int(c.Type)}
		if c.Old != nil {
			args = append(args, c.Old.Value, c.Old.ContentType, c.Old.CreateRev, c.Old.ModRev, c.Old.Version)
		} else {
			args = append(args, nil, nil, nil, nil, nil)
		}
		if c.New != nil {
			args = append(args, c.New.Value, c.New.ContentType, c.New.CreateRev, c.New.Version)
		} else {
			args = append(args, nil, nil, nil, nil)
		}
		args = append(args, sqlitedb.SecretCol(c.IsSecret()))
		p.add(mChange, args...)
		p.putKV(c.Key, c.New)
	}
	for i := range r.LayerChanges {
		lc := &r.LayerChanges[i]
		oldV, oldT := sqlitedb.LayerCols(lc.Old)
		newV, newT := sqlitedb.LayerCols(lc.New)
		p.add(mLayerChange, r.Rev, lc.Layer, lc.Key, oldV, oldT, newV, newT, sqlitedb.SecretCol(lc.IsSecret()))
		p.putLayer(layerKey{lc.Layer, lc.Key}, lc.New)
		if lc.New != nil && (lc.Layer != StoreLayer || lc.New.Tombstone) {
			w.layered = true
		}
	}
	for _, c := range plain.Changes {
		w.overlay[c.Key] = c.New
	}
	return nil
}

// getKV reads key's current row in the writer's transaction, its value
// decrypted; nil when the key does not exist.
func (w *writer) getKV(ctx context.Context, getKV *sql.Stmt, key string) (*KeyValue, error) {
	old, err := sqlitedb.ScanKV(key, getKV.QueryRowContext(ctx, key))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := w.s.keys.RevealKV(old); err != nil {
		return nil, err
	}
	return old, nil
}

// storedKV returns key's kv row as stored (a secret's value sealed): the
// one the batch staged, or else the database's.
func (w *writer) storedKV(ctx context.Context, tx *sql.Tx, key string) (*KeyValue, error) {
	if kv, ok := w.pend.kv[key]; ok && kv != nil {
		return kv, nil
	}
	return sqlitedb.ScanKV(key, w.tx(ctx, tx, qGetKV).QueryRowContext(ctx, key))
}

// storedLayer returns a layer_kv row as stored: the one the batch staged,
// or else the database's.
func (w *writer) storedLayer(ctx context.Context, tx *sql.Tx, layer, key string) (*LayerValue, error) {
	if v, ok := w.pend.lkv[layerKey{layer, key}]; ok && v != nil {
		return v, nil
	}
	v := &LayerValue{}
	err := w.tx(ctx, tx, qGetLayerKV).QueryRowContext(ctx, layer, key).Scan(&v.Value, &v.ContentType, &v.Secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("audit: state: layer %s has no row for %q", layer, key)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: state: read layer %s of %q: %w", layer, key, err)
	}
	v.Tombstone = v.ContentType == ""
	return v, nil
}

// storedOld returns the rows, as stored, that plain's changes replace:
// from plain, except a secret's, whose ciphertext only the database (or
// the batch) holds.
func (w *writer) storedOld(ctx context.Context, tx *sql.Tx, plain *Revision) ([]*KeyValue, []*LayerValue, error) {
	oldKV := make([]*KeyValue, len(plain.Changes))
	for i, c := range plain.Changes {
		oldKV[i] = c.Old
		if c.Old != nil && c.Old.Secret {
			kv, err := w.storedKV(ctx, tx, c.Key)
			if err != nil {
				return nil, nil, err
			}
			oldKV[i] = kv
		}
	}
	oldLayer := make([]*LayerValue, len(plain.LayerChanges))
	for i, lc := range plain.LayerChanges {
		oldLayer[i] = lc.Old
		if lc.Old != nil && lc.Old.Secret && !lc.Old.Tombstone {
			v, err := w.storedLayer(ctx, tx, lc.Layer, lc.Key)
			if err != nil {
				return nil, nil, err
			}
			oldLayer[i] = v
		}
	}
	return oldKV, oldLayer, nil
}
