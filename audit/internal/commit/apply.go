package commit

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/secrets"
)

// ErrGap: records given to Apply do not start right after the newest
// applied revision: some are missing (the caller reads them again from the
// shared log).
var ErrGap = errors.New("audit: the records do not follow the newest applied revision")

// Apply applies records that a replicated Log already holds (committed by
// this replica or another), in order, to the local database, and advances
// as a local commit does: the chain's head, the in-memory state, the
// hooks. Records at or below the newest applied revision are skipped; the
// rest must follow it without a gap (ErrGap). Each record is checked
// against the local state first: its chain hash and state digest must be
// the ones its content and the local rows it replaces give, or nothing is
// applied and the writer refuses from then on (ErrDiverged). It runs alone
// on the writer, between batches.
func (w *Writer) Apply(ctx context.Context, recs []Record) error {
	if w.replica == nil {
		return errors.New("audit: apply: the store's log is not replicated")
	}
	return w.Alone(ctx, func(ctx context.Context) error { return w.applyRecords(ctx, recs, w.replica.BeginApply) })
}

// Recover applies records that a Deferred log's journal held at start and
// its database lacks (a crash came before they were settled), checked and
// applied as Apply does a replicated log's, so that the in-memory state,
// the chain and the database all hold them.
func (w *Writer) Recover(ctx context.Context, recs []Record) error {
	if w.deferred == nil {
		return errors.New("audit: recover: the store's log has no journal")
	}
	return w.Alone(ctx, func(ctx context.Context) error { return w.applyRecords(ctx, recs, w.deferred.BeginApply) })
}

// Diverge makes the writer refuse from now on with err, why the replica
// cannot follow the replicated log, found outside the records (a
// compaction the cluster recorded that does not match the local history,
// records compacted away before the replica applied them), as after a
// record that does not verify.
func (w *Writer) Diverge(ctx context.Context, err error) error {
	return w.Alone(ctx, func(context.Context) error {
		if w.diverged == nil {
			w.diverged = err
			w.logger.Error("audit: the replica cannot follow the replicated log: it applies nothing more and refuses writes", "err", err)
		}
		return nil
	})
}

// catchUp applies what the shared log holds after the newest applied
// revision.
func (w *Writer) catchUp(ctx context.Context) error {
	if w.diverged != nil {
		return w.diverged
	}
	recs, err := w.replica.After(ctx, w.d.cur.Rev())
	if err != nil {
		return err
	}
	return w.applyRecords(ctx, recs, w.replica.BeginApply)
}

// applyRecords is Apply, on the writer goroutine, on batches that begin
// starts.
func (w *Writer) applyRecords(ctx context.Context, recs []Record, begin func(context.Context) (Batch, error)) error {
	if w.diverged != nil {
		return w.diverged
	}
	rev := w.d.cur.Rev()
	for len(recs) > 0 && recs[0].Rev.Rev <= rev {
		recs = recs[1:]
	}
	if len(recs) == 0 {
		return nil
	}
	plains, err := w.reveal(ctx, recs)
	if err != nil {
		return err
	}
	b, err := begin(ctx)
	if err != nil {
		return err
	}
	w.d.begin()
	for i := range recs {
		rec := &recs[i]
		if rec.Rev.Rev != rev+1 {
			b.Abort()
			return fmt.Errorf("%w: revision %d after %d", ErrGap, rec.Rev.Rev, rev)
		}
		if err := w.verify(ctx, b, rec); err != nil {
			b.Abort()
			if errors.Is(err, ErrDiverged) {
				w.diverged = err
				w.logger.Error("audit: the replicated log diverges from this replica: it applies nothing more", "err", err)
			}
			return err
		}
		b.Append(*rec)
		w.d.noteLayers(&rec.Rev)
		rev = rec.Rev.Rev
	}
	if err := b.Commit(ctx); err != nil {
		return err
	}
	w.advance(plains, rev)
	return nil
}

// reveal returns recs as the hooks and the in-memory state take them:
// their secrets decrypted. A record sealed with a data key that the
// keyring lacks (another replica created it since) has the writer take
// the shared keys first (Config.SyncKeys), before the batch holds the
// database.
func (w *Writer) reveal(ctx context.Context, recs []Record) ([]record.Revision, error) {
	plains := make([]record.Revision, len(recs))
	synced := false
	for i := range recs {
		var err error
		plains[i], err = w.keys.RevealRevision(&recs[i].Rev)
		if errors.Is(err, secrets.ErrDecrypt) && w.syncKeys != nil && !synced {
			synced = true
			if err = w.syncKeys(ctx); err == nil {
				plains[i], err = w.keys.RevealRevision(&recs[i].Rev)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("audit: apply revision %d: %w", recs[i].Rev.Rev, err)
		}
	}
	return plains, nil
}

// verify checks that rec follows the chain's pending head, given the rows
// of the batch's state that it replaces, and moves the pending head past
// it.
func (w *Writer) verify(ctx context.Context, b Batch, rec *Record) error {
	d, r := &w.d, &rec.Rev
	clear(d.oldKV)
	clear(d.oldLayer)
	d.oldKV, d.oldLayer = d.oldKV[:0], d.oldLayer[:0]
	for _, c := range r.Changes {
		kv, err := b.KV(ctx, c.Key)
		if err != nil {
			return err
		}
		if (kv == nil) != (c.Old == nil) {
			return fmt.Errorf("%w: revision %d changes key %q, which exists here: %v, and in the record: %v",
				ErrDiverged, r.Rev, c.Key, kv != nil, c.Old != nil)
		}
		d.oldKV = append(d.oldKV, kv)
	}
	for _, lc := range r.LayerChanges {
		var old *record.LayerValue
		if lc.Old != nil {
			v, err := b.LayerRow(ctx, lc.Layer, lc.Key)
			if err != nil {
				return fmt.Errorf("%w: revision %d: %w", ErrDiverged, r.Rev, err)
			}
			old = v
		}
		d.oldLayer = append(d.oldLayer, old)
	}
	hash, state := d.head.Add(r, d.oldKV, d.oldLayer)
	switch {
	case !bytes.Equal(state, rec.State):
		return fmt.Errorf("%w: revision %d records a state digest that the local state and its changes do not give", ErrDiverged, r.Rev)
	case !bytes.Equal(hash, rec.Hash):
		return fmt.Errorf("%w: revision %d's chain hash does not match its content and the hash of revision %d", ErrDiverged, r.Rev, r.Rev-1)
	}
	return nil
}
