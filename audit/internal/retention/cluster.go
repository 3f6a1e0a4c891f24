package retention

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
)

// A replicated store (a replica of a cluster, see package etcdlog) does not
// compact on its own: a compaction is decided once for the cluster, by the
// replica whose policy asks for it, with its complete record (ID, time,
// horizon, counts, anchor, base digest and hash) computed before anything
// is removed; every replica, the one that decided it included, then runs
// it (Apply) and checks that it gives that very record. So the chain of
// compaction records is the same on every replica.

// Cluster is where a replica's compactions are decided.
type Cluster interface {
	// Decide records p as the cluster's next compaction. It reports
	// false when another replica recorded a compaction under
	// p.Record.ID first (then nothing of p was recorded).
	Decide(ctx context.Context, p Plan) (bool, error)
	// Floor returns the lowest revision that a replica alive now has
	// applied, as far as the cluster knows: a compaction's horizon goes
	// no further than the revision after it, so that the replica can
	// still catch up from the log. It reports false when it knows of no
	// replica to wait for (no bound). An error stops this compaction (it
	// is tried again at the next one).
	Floor(ctx context.Context) (rev int64, ok bool, err error)
}

// Plan is a compaction decided before it runs.
type Plan struct {
	// Record is the compaction record that the compaction will leave.
	Record chain.Compaction
	// Base is the state before the horizon: each key's row as stored, in
	// key order; it is the history base the compaction leaves.
	Base []record.KeyValue
	// State is the state digest that revision Record.Horizon-1 recorded:
	// the state before the horizon must give it.
	State []byte
}

// LayerRow is a row of layer_kv, as stored.
type LayerRow = chain.LayerRow

// decide plans the compaction to target, has the cluster record it, then
// runs it here.
func (c *Compactor) decide(ctx context.Context, target int64) (Result, error) {
	res := Result{From: c.Horizon(), Horizon: c.Horizon()}
	floor, bounded, err := c.cluster.Floor(ctx)
	if err != nil {
		return res, fmt.Errorf("audit: compact: the replicas' applied revisions: %w", err)
	}
	if bounded && floor+1 < target {
		c.log.Info("audit: the compaction waits for a replica that is behind: its horizon stops at the revision after the one it has applied",
			"horizon", floor+1, "policy_horizon", target)
		target = floor + 1
	}
	p, ok, err := c.plan(ctx, target)
	if err != nil || !ok {
		return res, err
	}
	decided, err := c.cluster.Decide(ctx, p)
	if !decided {
		// Another replica decided compaction p.Record.ID: it reaches
		// this one through the log, and the next interval plans again.
		return res, err
	}
	// (An error now is of what comes after the decision: the compaction
	// is the cluster's, and runs here.) Here or in the replica's
	// follower, whichever comes first: the result is the compaction's,
	// whoever ran it.
	if _, aerr := c.Apply(ctx, p.Record); aerr != nil {
		return res, errors.Join(aerr, err)
	}
	r := p.Record
	return Result{ID: r.ID, From: r.From, Horizon: r.Horizon, Revisions: r.Revisions, Rows: r.Rows}, err
}

// recentlyDecided reports whether the cluster's newest compaction, as
// applied here, is younger than half of every (by the clock of the replica
// that decided it): the background compaction of a replica leaves the
// interval's compaction to whichever replica came first.
func (c *Compactor) recentlyDecided(ctx context.Context, every time.Duration) bool {
	last, err := chain.LoadHorizon(ctx, c.readers)
	return err == nil && last.Found && c.now().Sub(time.Unix(0, last.TS)) < every/2
}

// plan computes, in one read of the database, the record that a
// compaction to target (or to the newest revision, if older) would leave,
// and the state before that horizon. It reports false when there is
// nothing to remove.
func (c *Compactor) plan(ctx context.Context, target int64) (Plan, bool, error) {
	tx, err := c.readers.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Plan{}, false, fmt.Errorf("audit: compact: begin: %w", err)
	}
	defer tx.Rollback()
	last, err := chain.LoadHorizon(ctx, tx)
	if err != nil {
		return Plan{}, false, err
	}
	var p Plan
	var applied int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rev), 0) FROM revisions`).Scan(&applied); err != nil {
		return Plan{}, false, fmt.Errorf("audit: compact: %w", err)
	}
	from, to := max(last.Horizon, 1), min(target, applied)
	if to <= from {
		return Plan{}, false, nil
	}
	rec := chain.Compaction{ID: last.ID + 1, TS: c.now().UTC().UnixNano(), From: last.Horizon, Horizon: to,
		KeepRevisions: int64(c.policy.KeepRevisions), KeepAge: int64(c.policy.KeepAge)}
	if err := tx.QueryRowContext(ctx, `SELECT hash, state FROM revisions WHERE rev = ?`, to-1).Scan(&rec.Anchor, &p.State); err != nil || rec.Anchor == nil {
		return Plan{}, false, fmt.Errorf("audit: compact: %w: revision %d is missing or has no hash: %v; run Verify, nothing was removed", chain.ErrChainBroken, to-1, err)
	}
	for _, table := range []string{"layer_changes", "changes", "revisions"} {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE rev < ?`, to).Scan(&n); err != nil {
			return Plan{}, false, fmt.Errorf("audit: compact: %s: %w", table, err)
		}
		rec.Rows += n
		if table == "revisions" {
			rec.Revisions = n
		}
	}
	if p.Base, err = baseBefore(ctx, tx, to); err != nil {
		return Plan{}, false, err
	}
	rec.BaseHash = chain.BaseHash(p.Base)
	rec.Hash = chain.CompactionHash(last.Hash, &rec)
	rec.Found = true
	p.Record = rec
	return p, true, nil
}

// baseBefore returns the history base that a compaction to horizon would
// leave: the history base now, with each key's last change before horizon
// over it; in key order.
func baseBefore(ctx context.Context, q sqlitedb.Querier, horizon int64) ([]record.KeyValue, error) {
	rows, err := q.QueryContext(ctx, withLast+`SELECT key, value, content_type, create_rev, mod_rev, version, secret
		FROM history_base WHERE key NOT IN (SELECT key FROM last)
		UNION ALL SELECT key, new_value, new_type, new_create_rev, mrev, new_version, secret FROM last WHERE op = 1
		ORDER BY key`, horizon)
	if err != nil {
		return nil, fmt.Errorf("audit: compact: history base: %w", err)
	}
	defer rows.Close()
	var out []record.KeyValue
	for rows.Next() {
		var kv record.KeyValue
		if err := rows.Scan(&kv.Key, &kv.Value, &kv.ContentType, &kv.CreateRev, &kv.ModRev, &kv.Version, &kv.Secret); err != nil {
			return nil, fmt.Errorf("audit: compact: history base: %w", err)
		}
		out = append(out, kv)
	}
	return out, rows.Err()
}

// Apply runs compaction rec, which the cluster decided: its steps keep
// rec's time and retention, and the record it leaves must be rec (else
// commit.ErrDiverged, and the step that found it removed nothing). A
// compaction applied already is skipped; one applied in part (a replica
// stopped between steps) goes on. The compactions before rec must have
// been applied.
func (c *Compactor) Apply(ctx context.Context, rec chain.Compaction) (Result, error) {
	// One run at a time: the replica that decided a compaction and its
	// follower both apply it, and the second finds it done.
	c.applying.Lock()
	defer c.applying.Unlock()
	res := Result{From: c.Horizon(), Horizon: c.Horizon()}
	last, err := chain.LoadHorizon(ctx, c.readers)
	if err != nil {
		return res, err
	}
	sp := stepSpec{target: rec.Horizon, keepRevisions: rec.KeepRevisions, keepAge: rec.KeepAge, want: &rec}
	switch {
	case last.ID > rec.ID || last.ID == rec.ID && last.Horizon == rec.Horizon:
		if last.ID == rec.ID && !bytes.Equal(last.Hash, rec.Hash) {
			return res, fmt.Errorf("%w: compaction %d here is not the cluster's", commit.ErrDiverged, rec.ID)
		}
		return res, nil
	case last.ID == rec.ID:
		sp.id = rec.ID
	case last.ID+1 != rec.ID:
		return res, fmt.Errorf("%w: compaction %d, and the newest here is %d", commit.ErrGap, rec.ID, last.ID)
	}
	res, err = c.run(ctx, sp)
	if err == nil && c.Horizon() < rec.Horizon { // (another run of it may have done the work)
		err = fmt.Errorf("audit: compaction %d to horizon %d reached %d here: the replica has applied revision %d only",
			rec.ID, rec.Horizon, c.Horizon(), c.rev())
	}
	return res, err
}

// Install makes db, the database of a new replica, start at the
// cluster's horizon: recs are the cluster's compaction records, oldest
// first, base the state before the newest one's horizon (its history base,
// as Plan.Base) and layers the layer rows then. The records must chain and
// the base must be the one the newest record digests; what the state
// holds is checked when the revision at the horizon is applied on top of
// it (its state digest covers every row). db must hold no revision.
func Install(ctx context.Context, db *sql.DB, recs []chain.Compaction, base []record.KeyValue, layers []LayerRow) error {
	if len(recs) == 0 {
		return errors.New("audit: install: no compaction record")
	}
	var prev []byte
	for i := range recs {
		r := &recs[i]
		if !bytes.Equal(chain.CompactionHash(prev, r), r.Hash) || i > 0 && r.Horizon <= recs[i-1].Horizon {
			return fmt.Errorf("%w: the cluster's compaction record %d does not follow the one before it", commit.ErrDiverged, r.ID)
		}
		prev = r.Hash
	}
	newest := recs[len(recs)-1]
	if !bytes.Equal(chain.BaseHash(base), newest.BaseHash) {
		return fmt.Errorf("%w: the cluster's state at horizon %d is not the one compaction record %d digests", commit.ErrDiverged, newest.Horizon, newest.ID)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: install: begin: %w", err)
	}
	defer tx.Rollback()
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM revisions) + (SELECT count(*) FROM compactions)`).Scan(&n); err != nil || n > 0 {
		return fmt.Errorf("audit: install: the database is not empty (%d rows): %v", n, err)
	}
	for i := range recs {
		r := &recs[i]
		if _, err := tx.ExecContext(ctx, `INSERT INTO compactions (id, ts, from_horizon, horizon, revisions_removed, rows_removed,
			keep_revisions, keep_age, anchor, base_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.TS, r.From, r.Horizon, r.Revisions, r.Rows, r.KeepRevisions, r.KeepAge, r.Anchor, r.BaseHash, r.Hash); err != nil {
			return fmt.Errorf("audit: install: compaction record: %w", err)
		}
	}
	for _, table := range []string{"history_base", "kv"} {
		for i := range base {
			kv := &base[i]
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (key, value, content_type, create_rev, mod_rev, version, secret)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, kv.Key, valueCol(kv.Value), kv.ContentType, kv.CreateRev, kv.ModRev, kv.Version,
				sqlitedb.SecretCol(kv.Secret)); err != nil {
				return fmt.Errorf("audit: install: %s: %w", table, err)
			}
		}
	}
	for i := range layers {
		r := &layers[i]
		v, t := sqlitedb.LayerCols(&r.Value)
		if _, err := tx.ExecContext(ctx, `INSERT INTO layer_kv (layer, key, value, content_type, secret) VALUES (?, ?, ?, ?, ?)`,
			r.Layer, r.Key, v, t, sqlitedb.SecretCol(r.Value.Secret)); err != nil {
			return fmt.Errorf("audit: install: layers: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_chain SET high_water = ? WHERE id = 1`, newest.Horizon-1); err != nil {
		return fmt.Errorf("audit: install: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: install: commit: %w", err)
	}
	return nil
}

// valueCol is a kv value column: never NULL (kv.value is NOT NULL).
func valueCol(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
