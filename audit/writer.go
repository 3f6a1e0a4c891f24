package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/configd/configd/keyspace"
)

// request is one commit or rollback waiting for the writer.
type request struct {
	ctx      context.Context
	txn      Txn              // a commit, when rollback is nil
	rollback *RollbackRequest // a rollback, computed inside the writer
	source   *sourceRequest   // a source's new snapshot
	compact  *compactRequest  // a compaction step, run in its own transaction
	dataKey  *dataKeyRequest  // new data keys or a master key rotation, in its own transaction
	done     chan result
}

type result struct {
	rev  Revision
	step compactStep // of a compaction
	err  error
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
		if err := keyspace.Validate(op.Key); err != nil {
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
			if err := checkValue(op.Key, op.Value, ct); err != nil {
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
	chain chainState
}

const (
	qGetKV     = `SELECT value, content_type, create_rev, mod_rev, version, secret FROM kv WHERE key = ?`
	qInsRev    = `INSERT INTO revisions (rev, ts, actor, reason, origin, rollback_to, num_changes) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qInsChange = `INSERT INTO changes (rev, key, op, old_value, old_type, old_create_rev, old_mod_rev, old_version,
		new_value, new_type, new_create_rev, new_version, secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qPutKV = `INSERT INTO kv (key, value, content_type, create_rev, mod_rev, version, secret) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,
		create_rev = excluded.create_rev, mod_rev = excluded.mod_rev, version = excluded.version, secret = excluded.secret`
	qDelKV = `DELETE FROM kv WHERE key = ?`
)

// Savepoint statements, prepared once.
const (
	qSavepoint  = `SAVEPOINT req`
	qRollbackTo = `ROLLBACK TO req`
	qRelease    = `RELEASE req`
)

// tx returns the writer's prepared statement for query, bound to tx.
func (w *writer) tx(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	return tx.StmtContext(ctx, w.stmts[query])
}

func newWriter(ctx context.Context, s *Store) (*writer, error) {
	head, err := prepareChain(ctx, s.wdb)
	if err != nil {
		return nil, err
	}
	w := &writer{s: s, stmts: map[string]*sql.Stmt{}, chain: chainState{head: head}}
	for _, q := range []string{qGetKV, qInsRevChain, qInsChange, qPutKV, qDelKV,
		qLayerRows, qInsLayerChange, qDelLayerKV, qPutLayerKV, qSavepoint, qRollbackTo, qRelease} {
		st, err := s.wdb.PrepareContext(ctx, q)
		if err != nil {
			w.closeStmts()
			return nil, fmt.Errorf("audit: prepare: %w", err)
		}
		w.stmts[q] = st
	}
	return w, nil
}

func (w *writer) closeStmts() {
	for _, st := range w.stmts {
		st.Close()
	}
}

func (w *writer) run() {
	defer close(w.s.stopped)
	defer w.closeStmts()
	batch := make([]*request, 0, w.s.opts.maxBatch)
	for req := range w.s.queue {
		if req.compact != nil || req.dataKey != nil {
			w.runSolo(req)
			continue
		}
		batch = append(batch[:0], req)
		var compact *request // a compaction or data key step taken while draining
	drain:
		for len(batch) < w.s.opts.maxBatch {
			select {
			case r, ok := <-w.s.queue:
				if !ok {
					break drain
				}
				if r.compact != nil || r.dataKey != nil {
					compact = r
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		w.commitBatch(batch)
		if compact != nil {
			w.runSolo(compact)
		}
	}
}

// runSolo runs a request that takes a transaction of its own.
func (w *writer) runSolo(req *request) {
	if req.dataKey != nil {
		w.runDataKeys(req)
		return
	}
	w.runCompact(req)
}

// runCompact runs one compaction step, alone in its transaction, between
// batches of commits.
func (w *writer) runCompact(req *request) {
	if err := req.ctx.Err(); err != nil {
		req.done <- result{err: err}
		return
	}
	step, err := w.compact(req.compact)
	req.done <- result{step: step, err: err}
}

// commitBatch runs a batch in one transaction. Each request runs inside its
// own savepoint, so a request that fails (a conflict, a SQL error) leaves no
// trace while the others commit. Results are sent only once the transaction
// is durable.
func (w *writer) commitBatch(batch []*request) {
	results := make([]result, len(batch))
	ctx := context.Background()
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		w.failAll(batch, fmt.Errorf("audit: begin: %w", err))
		return
	}
	rev := w.s.rev.Load()
	w.chain.pending = w.chain.head
	var committed []Revision
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		if _, err := w.tx(ctx, tx, qSavepoint).ExecContext(ctx); err != nil {
			results[i].err = fmt.Errorf("audit: savepoint: %w", err)
			continue
		}
		r, err := w.apply(ctx, tx, req, rev)
		if err != nil {
			if _, rerr := w.tx(ctx, tx, qRollbackTo).ExecContext(ctx); rerr != nil {
				tx.Rollback()
				w.failAll(batch, fmt.Errorf("audit: rollback to savepoint: %w", rerr))
				return
			}
		}
		if _, rerr := w.tx(ctx, tx, qRelease).ExecContext(ctx); rerr != nil {
			tx.Rollback()
			w.failAll(batch, fmt.Errorf("audit: release savepoint: %w", rerr))
			return
		}
		if err != nil {
			results[i].err = err
			continue
		}
		// The caller gets r with its secrets withheld; the hooks and the
		// in-memory state get the plain values.
		results[i].rev, err = w.s.keys.withholdRevision(r)
		if err != nil {
			results[i] = result{err: err}
		}
		if len(r.Changes) > 0 || len(r.LayerChanges) > 0 {
			rev = r.Rev
			committed = append(committed, r)
		}
	}
	if err := tx.Commit(); err != nil {
		w.failAll(batch, fmt.Errorf("audit: commit: %w", err))
		return
	}
	w.chain.head = w.chain.pending
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

func (w *writer) failAll(batch []*request, err error) {
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
	getKV := tx.StmtContext(ctx, w.stmts[qGetKV])
	olds := make([]*KeyValue, len(txn.Ops))
	for i, op := range txn.Ops {
		old, err := w.getKV(ctx, getKV, op.Key)
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
		stack, err := w.layerRows(ctx, tx, op.Key)
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
		if old := stack[StoreLayer]; !old.equal(nv) {
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
	if err := w.write(ctx, tx, r); err != nil {
		return Revision{}, err
	}
	return r, nil
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
	getKV := tx.StmtContext(ctx, w.stmts[qGetKV])
	var changes []Change
	for _, lc := range lcs {
		old, err := w.getKV(ctx, getKV, lc.Key)
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
	if err := w.write(ctx, tx, r); err != nil {
		return Revision{}, err
	}
	return r, nil
}

// write records revision r: its row, its changes, the effective state in kv
// and its layer changes.
func (w *writer) write(ctx context.Context, tx *sql.Tx, plain Revision) error {
	// What is stored, and hashed: secrets sealed.
	r, err := w.s.keys.sealRevision(&plain)
	if err != nil {
		return err
	}
	hash := w.chain.enc.revisionHash(w.chain.pending, &r)
	if _, err := tx.StmtContext(ctx, w.stmts[qInsRevChain]).ExecContext(ctx,
		r.Rev, r.Time.UnixNano(), r.Actor, r.Reason, r.Origin, r.RollbackTo, r.NumChanges, hash); err != nil {
		return fmt.Errorf("audit: insert revision: %w", err)
	}
	insChange := tx.StmtContext(ctx, w.stmts[qInsChange])
	putKV := tx.StmtContext(ctx, w.stmts[qPutKV])
	delKV := tx.StmtContext(ctx, w.stmts[qDelKV])
	for _, c := range r.Changes {
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
		args = append(args, secretBool(changeSecret(&c)))
		if _, err := insChange.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("audit: insert change: %w", err)
		}
		if c.New != nil {
			_, err := putKV.ExecContext(ctx, c.Key, c.New.Value, c.New.ContentType, c.New.CreateRev, c.New.ModRev, c.New.Version, secretBool(c.New.Secret))
			if err != nil {
				return fmt.Errorf("audit: write key: %w", err)
			}
		} else if _, err := delKV.ExecContext(ctx, c.Key); err != nil {
			return fmt.Errorf("audit: delete key: %w", err)
		}
	}
	if err := w.writeLayerChanges(ctx, tx, r.Rev, r.LayerChanges); err != nil {
		return err
	}
	w.chain.pending = hash
	return nil
}

// getKV reads key's current row in the writer's transaction, its value
// decrypted; nil when the key does not exist.
func (w *writer) getKV(ctx context.Context, getKV *sql.Stmt, key string) (*KeyValue, error) {
	old, err := scanKV(key, getKV.QueryRowContext(ctx, key))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := w.s.keys.revealKV(old); err != nil {
		return nil, err
	}
	return old, nil
}
