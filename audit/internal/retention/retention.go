// Package retention removes the history that a store no longer keeps.
//
// By default history is kept forever. A Policy sets two limits, each a
// promise of what is kept:
//
//   - KeepRevisions: at least the newest KeepRevisions revisions are kept
//     (a watcher or a client can always resume that far back);
//   - KeepAge: at least every revision committed within KeepAge is kept
//     (an auditor can always see that far back).
//
// A revision is removed only when both promises allow it: it is outside the
// newest KeepRevisions AND older than KeepAge. So the limits combine as
// "keep whichever is more": an operator who sets "30 days" and "10,000
// revisions" never loses a revision that either setting promised, whatever
// the write rate. A limit of 0 promises nothing (it does not restrict
// removal); with both 0, retention is off and nothing is ever removed. The
// newest revision is always kept, as is the current value of every key.
//
// Compaction removes the oldest revisions, with their changes and layer
// changes, up to a horizon: revisions before Horizon() are gone; the
// horizon revision and every newer one are kept whole. The state as of each
// retained revision stays readable (the values that keys unchanged since
// had then are kept in history_base). Reads at, from or since a revision
// below the horizon fail with ErrRevisionGone, naming the horizon.
//
// Compaction is never silent: each one is recorded in the compactions table
// (Compactions) and logged at Info. The audit chain stays verifiable: the
// record keeps the hash of the last removed revision, which the first
// retained one follows, and a digest of history_base; the records are
// chained too (package chain). Before removing revisions, a compaction
// verifies them, so that it never erases the evidence of an edit: a broken
// chain stops it.
package retention

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/commit"
)

// withLast is each key's last change before a revision (the argument): the
// history base that a compaction to that horizon leaves is made of it.
const withLast = `WITH last AS (SELECT key, op, new_value, new_type, new_create_rev, max(rev) AS mrev, new_version, secret
	FROM changes WHERE rev < ? GROUP BY key) `

// Policy is how much history to keep, and how a compaction goes.
type Policy struct {
	// KeepRevisions and KeepAge are the limits (0: no limit of that kind).
	KeepRevisions int
	KeepAge       time.Duration
	// Batch is how many revisions one step (one write transaction)
	// removes at most.
	Batch int
}

// On reports whether the policy removes anything at all.
func (p Policy) On() bool { return p.KeepRevisions > 0 || p.KeepAge > 0 }

// Result is what one Compact did.
type Result struct {
	// ID is the compaction's record (0 when nothing was removed).
	ID int64
	// From is the horizon before and Horizon the one after (equal when
	// nothing was removed). 0 means no horizon: nothing was ever removed.
	From, Horizon int64
	// Revisions is how many revisions were removed, Rows how many rows
	// (revisions, changes and layer changes).
	Revisions, Rows int64
}

// Compaction is the record of one compaction.
type Compaction struct {
	ID   int64
	Time time.Time // UTC, of its last step
	// From is the horizon before it; revisions From..UpTo were removed
	// (From 0: from the first one) and Horizon (UpTo+1) is the oldest
	// revision kept.
	From, UpTo, Horizon int64
	Revisions, Rows     int64
	// KeepRevisions and KeepAge are the retention it applied.
	KeepRevisions int
	KeepAge       time.Duration
}

// Writer runs fn on the store's writer, alone: after the batch of commits
// under way and before the next, so that a compaction step never races a
// commit for the database.
type Writer interface {
	Alone(ctx context.Context, fn func(ctx context.Context) error) error
}

// Compactor compacts one store's history under a policy.
type Compactor struct {
	policy   Policy
	readers  *sql.DB          // for the target
	db       *sql.DB          // the writer's connection, for the steps
	writer   Writer           // runs the steps
	rev      func() int64     // the newest durable revision
	now      func() time.Time // the clock of revision times
	log      *slog.Logger     //
	horizon  atomic.Int64     // see Horizon
	cluster  Cluster          // nil: the store compacts alone
	applying sync.Mutex       // held by Apply
}

// NewCompactor returns the compactor of the store whose readers and writer
// connections are readers and db, whose writer is w and whose newest
// durable revision rev returns, and whose history horizon is now horizon.
// A replica's compactor decides its compactions in cluster (nil for a
// store on SQLite alone).
func NewCompactor(p Policy, readers, db *sql.DB, w Writer, rev func() int64, now func() time.Time, log *slog.Logger, horizon int64, cluster Cluster) *Compactor {
	c := &Compactor{policy: p, readers: readers, db: db, writer: w, rev: rev, now: now, log: log, cluster: cluster}
	c.horizon.Store(horizon)
	return c
}

// Horizon returns the oldest revision the store still keeps whole:
// revisions before it were compacted away. 0 means nothing was ever
// removed (every revision from 1 is kept).
func (c *Compactor) Horizon() int64 { return c.horizon.Load() }

// Compact removes the revisions that the policy no longer keeps, in steps
// of at most Policy.Batch revisions, each one write transaction that runs
// on the writer between commits. It records itself in Compactions and
// logs at Info. With the policy off it does nothing. If ctx ends between
// steps, Compact returns what was done with ctx.Err().
func (c *Compactor) Compact(ctx context.Context) (Result, error) {
	res := Result{From: c.Horizon(), Horizon: c.Horizon()}
	if !c.policy.On() {
		return res, nil
	}
	target, err := c.target(ctx)
	if err != nil {
		return res, err
	}
	if c.cluster != nil {
		return c.decide(ctx, target)
	}
	return c.run(ctx, stepSpec{target: target, keepRevisions: int64(c.policy.KeepRevisions), keepAge: int64(c.policy.KeepAge)})
}

// run runs the steps of one compaction, to sp.target.
func (c *Compactor) run(ctx context.Context, sp stepSpec) (Result, error) {
	res := Result{From: c.Horizon(), Horizon: c.Horizon()}
	start := time.Now()
	for {
		var st step
		err := c.writer.Alone(ctx, func(ctx context.Context) error {
			var err error
			st, err = c.step(ctx, sp)
			return err
		})
		if err == nil && st.revisions > 0 {
			if res.ID == 0 {
				res.From = st.from
			}
			sp.id, res.ID, res.Horizon = st.id, st.id, st.horizon
			res.Revisions += st.revisions
			res.Rows += st.rows
		}
		if err != nil || st.revisions == 0 {
			if res.Revisions > 0 {
				c.log.Info("audit: history compacted", "compaction", res.ID,
					"removed_revisions", fmt.Sprintf("%d..%d", max(res.From, 1), res.Horizon-1),
					"horizon", res.Horizon, "revisions", res.Revisions, "rows", res.Rows,
					"keep_revisions", sp.keepRevisions, "keep_age", time.Duration(sp.keepAge).String(),
					"duration", time.Since(start).Round(time.Millisecond).String())
			}
			return res, err
		}
	}
}

// Run compacts now and then every interval until ctx ends, and calls
// after (unless nil) with what each compaction did.
func (c *Compactor) Run(ctx context.Context, every time.Duration, after func(Result, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if c.cluster != nil && c.recentlyDecided(ctx, every) {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			continue
		}
		res, err := c.Compact(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Error("audit: history compaction failed", "err", err)
		}
		if after != nil {
			after(res, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// target returns the horizon that the policy allows now.
func (c *Compactor) target(ctx context.Context) (int64, error) {
	current := c.rev()
	target := current // the newest revision is always kept
	if n := int64(c.policy.KeepRevisions); n > 0 {
		target = min(target, current-n+1)
	}
	if c.policy.KeepAge > 0 {
		cutoff := c.now().Add(-c.policy.KeepAge).UnixNano()
		var young sql.NullInt64
		if err := c.readers.QueryRowContext(ctx, `SELECT min(rev) FROM revisions WHERE ts >= ?`, cutoff).Scan(&young); err != nil {
			return 0, fmt.Errorf("audit: compact: %w", err)
		}
		if young.Valid {
			target = min(target, young.Int64)
		}
	}
	return target, nil
}

// Compactions returns the compaction records of the database, newest
// first.
func Compactions(ctx context.Context, db *sql.DB) ([]Compaction, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, ts, from_horizon, horizon, revisions_removed, rows_removed,
		keep_revisions, keep_age FROM compactions ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("audit: compactions: %w", err)
	}
	defer rows.Close()
	var out []Compaction
	for rows.Next() {
		var c Compaction
		var ts, age int64
		if err := rows.Scan(&c.ID, &ts, &c.From, &c.Horizon, &c.Revisions, &c.Rows, &c.KeepRevisions, &age); err != nil {
			return nil, fmt.Errorf("audit: compactions: %w", err)
		}
		c.Time, c.KeepAge, c.UpTo = time.Unix(0, ts).UTC(), time.Duration(age), c.Horizon-1
		out = append(out, c)
	}
	return out, rows.Err()
}

// step is what one compaction step did.
type step struct {
	id, from, horizon, revisions, rows int64
}

// stepSpec is what a compaction's steps do.
type stepSpec struct {
	// target is the horizon to reach; id the compaction's record (0
	// before its first step).
	target, id int64
	// keepRevisions and keepAge are the retention the record names.
	keepRevisions, keepAge int64
	// want, for a compaction decided by the cluster, is its record:
	// the record's ID, time and hash must be its (see Apply).
	want *chain.Compaction
}

// step runs one compaction step of sp's compaction in its own
// transaction: it removes the revisions before min(target,
// horizon+batch, newest revision).
func (c *Compactor) step(ctx context.Context, sp stepSpec) (step, error) {
	target, id := sp.target, sp.id
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return step{}, fmt.Errorf("audit: compact: begin: %w", err)
	}
	defer tx.Rollback()
	last, err := chain.LoadHorizon(ctx, tx)
	if err != nil {
		return step{}, err
	}
	if w := sp.want; w != nil {
		// The cluster's compaction: another run of it may have gone
		// further in the meantime (the follower and the replica that
		// decided it both run it).
		if last.ID > w.ID {
			return step{}, nil
		}
		if last.ID == w.ID {
			id = w.ID
		}
	}
	from := max(last.Horizon, 1)
	to := min(target, c.rev(), from+int64(c.policy.Batch))
	if to <= from {
		return step{}, nil
	}
	// Verify what is about to go, from the anchor: a compaction must not
	// erase the evidence of an edit.
	var anchor []byte
	var broken string
	err = chain.Walk(ctx, tx, from, to-1, last.Anchor, func(r chain.RevRow, hash, stored []byte) (bool, error) {
		if hash == nil || stored == nil || !bytes.Equal(hash, stored) {
			broken = fmt.Sprintf("revision %d does not verify", r.Rev)
			return false, nil
		}
		anchor = hash
		return true, nil
	})
	if err != nil {
		return step{}, err
	}
	if broken != "" || anchor == nil {
		if broken == "" {
			broken = fmt.Sprintf("revision %d is missing", to-1)
		}
		return step{}, fmt.Errorf("audit: compact: %w: %s; run Verify, nothing was removed", chain.ErrChainBroken, broken)
	}
	// The base: each key's last change before the new horizon.
	if _, err := tx.ExecContext(ctx, withLast+`INSERT INTO history_base (key, value, content_type, create_rev, mod_rev, version, secret)
		SELECT key, new_value, new_type, new_create_rev, mrev, new_version, secret FROM last WHERE op = 1
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,
		create_rev = excluded.create_rev, mod_rev = excluded.mod_rev, version = excluded.version,
		secret = excluded.secret`, to); err != nil {
		return step{}, fmt.Errorf("audit: compact: history base: %w", err)
	}
	if _, err := tx.ExecContext(ctx, withLast+`DELETE FROM history_base WHERE key IN (SELECT key FROM last WHERE op = 2)`, to); err != nil {
		return step{}, fmt.Errorf("audit: compact: history base: %w", err)
	}
	var st step
	st.from, st.horizon = last.Horizon, to
	for _, table := range []string{"layer_changes", "changes", "revisions"} {
		r, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE rev < ?`, to)
		if err != nil {
			return step{}, fmt.Errorf("audit: compact: %s: %w", table, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return step{}, fmt.Errorf("audit: compact: %s: %w", table, err)
		}
		st.rows += n
		if table == "revisions" {
			st.revisions = n
		}
	}
	baseHash, err := chain.HistoryBaseHash(ctx, tx)
	if err != nil {
		return step{}, err
	}
	rec := chain.Compaction{TS: c.now().UTC().UnixNano(), From: last.Horizon, Horizon: to,
		Revisions: st.revisions, Rows: st.rows, Anchor: anchor, BaseHash: baseHash,
		KeepRevisions: sp.keepRevisions, KeepAge: sp.keepAge}
	if sp.want != nil {
		rec.TS = sp.want.TS
	}
	prev := last.Hash
	if id != 0 && id == last.ID {
		// A later step of the same compaction: its record grows.
		rec.ID, rec.From, rec.Revisions, rec.Rows = id, last.From, last.Revisions+st.revisions, last.Rows+st.rows
		prev = nil
		if err := tx.QueryRowContext(ctx, `SELECT hash FROM compactions WHERE id < ? ORDER BY id DESC LIMIT 1`, id).Scan(&prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return step{}, fmt.Errorf("audit: compact: %w", err)
		}
	} else {
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM compactions`).Scan(&rec.ID); err != nil {
			return step{}, fmt.Errorf("audit: compact: %w", err)
		}
	}
	rec.Hash = chain.CompactionHash(prev, &rec)
	if w := sp.want; w != nil && (rec.ID != w.ID || to == w.Horizon && !bytes.Equal(rec.Hash, w.Hash)) {
		return step{}, fmt.Errorf("%w: compaction %d to horizon %d, as the cluster recorded it, gives another record here (%d to horizon %d): nothing of this step was removed",
			commit.ErrDiverged, w.ID, w.Horizon, rec.ID, to)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO compactions (id, ts, from_horizon, horizon, revisions_removed, rows_removed,
		keep_revisions, keep_age, anchor, base_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET ts = excluded.ts, horizon = excluded.horizon,
		revisions_removed = excluded.revisions_removed, rows_removed = excluded.rows_removed,
		anchor = excluded.anchor, base_hash = excluded.base_hash, hash = excluded.hash`,
		rec.ID, rec.TS, rec.From, rec.Horizon, rec.Revisions, rec.Rows, rec.KeepRevisions, rec.KeepAge,
		rec.Anchor, rec.BaseHash, rec.Hash); err != nil {
		return step{}, fmt.Errorf("audit: compact: record: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return step{}, fmt.Errorf("audit: compact: commit: %w", err)
	}
	c.horizon.Store(to)
	st.id = rec.ID
	return st, nil
}
