package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/configd/configd/audit/internal/sqlitedb"
)

// History retention.
//
// By default history is kept forever. WithRetention sets two limits, each
// a promise of what is kept:
//
//   - keepRevisions: at least the newest keepRevisions revisions are kept
//     (a watcher or a client can always resume that far back);
//   - keepAge: at least every revision committed within keepAge is kept
//     (an auditor can always see that far back).
//
// A revision is removed only when both promises allow it: it is outside the
// newest keepRevisions AND older than keepAge. So the limits combine as
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
// chained too. Before removing revisions, a compaction verifies them, so
// that it never erases the evidence of an edit: a broken chain stops it.

// DefaultCompactInterval is how often a store with retention compacts.
const DefaultCompactInterval = time.Hour

// defaultCompactBatch is how many revisions one compaction step (one write
// transaction) removes at most.
const defaultCompactBatch = 2000

// WithRetention sets how much history the store keeps: at least the newest
// keepRevisions revisions and at least the revisions of the last keepAge
// (0: no limit of that kind; both 0, the default: keep everything). See the
// package's retention notes above for how the two combine. With retention
// set, the store compacts when it opens and then every compaction interval
// (WithCompactInterval).
func WithRetention(keepRevisions int, keepAge time.Duration) Option {
	return func(o *options) { o.keepRevisions, o.keepAge = keepRevisions, keepAge }
}

// WithCompactInterval sets how often a store with retention compacts in
// the background (default DefaultCompactInterval). A negative interval
// turns the background compaction off: only Compact compacts.
func WithCompactInterval(d time.Duration) Option {
	return func(o *options) { o.compactInterval = d }
}

// WithClock sets the clock the store reads for revision times and for the
// age of revisions (default time.Now). For tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// CompactResult is what one Compact did.
type CompactResult struct {
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

// compactRequest is one compaction step for the writer.
type compactRequest struct {
	target        int64 // the horizon to reach
	id            int64 // the compaction's record, 0 before the first step
	keepRevisions int
	keepAge       time.Duration
}

// compactStep is what one step did.
type compactStep struct {
	id, from, horizon, revisions, rows int64
}

// Horizon returns the oldest revision the store still keeps whole:
// revisions before it were compacted away. 0 means nothing was ever
// removed (every revision from 1 is kept).
func (s *Store) Horizon() int64 { return s.horizon.Load() }

// Compact removes the revisions that the retention (WithRetention) no
// longer keeps, in steps of a bounded number of revisions, each one write
// transaction that goes through the writer between commits. It records
// itself in Compactions and logs at Info. Without retention it does
// nothing. If ctx ends between steps, Compact returns what was done with
// ctx.Err().
func (s *Store) Compact(ctx context.Context) (CompactResult, error) {
	res := CompactResult{From: s.Horizon(), Horizon: s.Horizon()}
	if s.opts.keepRevisions <= 0 && s.opts.keepAge <= 0 {
		return res, nil
	}
	target, err := s.compactTarget(ctx)
	if err != nil {
		return res, err
	}
	start := time.Now()
	req := &compactRequest{target: target, keepRevisions: s.opts.keepRevisions, keepAge: s.opts.keepAge}
	for {
		r, err := s.submitResult(ctx, &request{compact: req})
		if err == nil && r.step.revisions > 0 {
			if res.ID == 0 {
				res.From = r.step.from
			}
			req.id, res.ID, res.Horizon = r.step.id, r.step.id, r.step.horizon
			res.Revisions += r.step.revisions
			res.Rows += r.step.rows
		}
		if err != nil || r.step.revisions == 0 {
			if res.Revisions > 0 {
				s.opts.logger.Info("audit: history compacted", "compaction", res.ID,
					"removed_revisions", fmt.Sprintf("%d..%d", max(res.From, 1), res.Horizon-1),
					"horizon", res.Horizon, "revisions", res.Revisions, "rows", res.Rows,
					"keep_revisions", s.opts.keepRevisions, "keep_age", s.opts.keepAge.String(),
					"duration", time.Since(start).Round(time.Millisecond).String())
			}
			return res, err
		}
	}
}

// compactTarget returns the horizon that the retention allows now.
func (s *Store) compactTarget(ctx context.Context) (int64, error) {
	current := s.Rev()
	target := current // the newest revision is always kept
	if n := int64(s.opts.keepRevisions); n > 0 {
		target = min(target, current-n+1)
	}
	if s.opts.keepAge > 0 {
		cutoff := s.opts.now().Add(-s.opts.keepAge).UnixNano()
		var young sql.NullInt64
		if err := s.rdb.QueryRowContext(ctx, `SELECT min(rev) FROM revisions WHERE ts >= ?`, cutoff).Scan(&young); err != nil {
			return 0, fmt.Errorf("audit: compact: %w", err)
		}
		if young.Valid {
			target = min(target, young.Int64)
		}
	}
	return target, nil
}

// Compactions returns the compaction records, newest first.
func (s *Store) Compactions(ctx context.Context) ([]Compaction, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, ts, from_horizon, horizon, revisions_removed, rows_removed,
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

// compactLoop compacts now and then every interval until ctx ends.
func (s *Store) compactLoop(ctx context.Context, every time.Duration) {
	defer close(s.compactDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		res, err := s.Compact(ctx)
		if err != nil && ctx.Err() == nil {
			s.opts.logger.Error("audit: history compaction failed", "err", err)
		}
		if s.opts.onCompact != nil {
			s.opts.onCompact(res, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// horizonState is the newest compaction record as the writer and Verify
// need it.
type horizonState struct {
	id, horizon    int64
	anchor, hash   []byte
	baseHash       []byte
	found          bool
	ts, from       int64
	revs, rowsGone int64
}

func loadHorizon(ctx context.Context, q sqlitedb.Querier) (horizonState, error) {
	var h horizonState
	err := q.QueryRowContext(ctx, `SELECT id, ts, from_horizon, horizon, revisions_removed, rows_removed, anchor, base_hash, hash
		FROM compactions ORDER BY id DESC LIMIT 1`).
		Scan(&h.id, &h.ts, &h.from, &h.horizon, &h.revs, &h.rowsGone, &h.anchor, &h.baseHash, &h.hash)
	if errors.Is(err, sql.ErrNoRows) {
		return horizonState{}, nil
	}
	if err != nil {
		return h, fmt.Errorf("audit: read the history horizon: %w", err)
	}
	h.found = true
	return h, nil
}

// compact runs one compaction step in its own transaction: it removes the
// revisions before min(target, horizon+batch, newest revision).
func (w *writer) compact(cr *compactRequest) (compactStep, error) {
	ctx := context.Background()
	s := w.s
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return compactStep{}, fmt.Errorf("audit: compact: begin: %w", err)
	}
	defer tx.Rollback()
	last, err := loadHorizon(ctx, tx)
	if err != nil {
		return compactStep{}, err
	}
	from := max(last.horizon, 1)
	to := min(cr.target, s.rev.Load(), from+int64(s.opts.compactBatch))
	if to <= from {
		return compactStep{}, nil
	}
	// Verify what is about to go, from the anchor: a compaction must not
	// erase the evidence of an edit.
	var anchor []byte
	var broken string
	err = walkChain(ctx, tx, from, to-1, last.anchor, func(r chainRev, hash, stored []byte) (bool, error) {
		if hash == nil || stored == nil || !bytes.Equal(hash, stored) {
			broken = fmt.Sprintf("revision %d does not verify", r.rev)
			return false, nil
		}
		anchor = hash
		return true, nil
	})
	if err != nil {
		return compactStep{}, err
	}
	if broken != "" || anchor == nil {
		if broken == "" {
			broken = fmt.Sprintf("revision %d is missing", to-1)
		}
		return compactStep{}, fmt.Errorf("audit: compact: %w: %s; run Verify, nothing was removed", ErrChainBroken, broken)
	}
	// The base: each key's last change before the new horizon.
	const withLast = `WITH last AS (SELECT key, op, new_value, new_type, new_create_rev, max(rev) AS mrev, new_version, secret
		FROM changes WHERE rev < ? GROUP BY key) `
	if _, err := tx.ExecContext(ctx, withLast+`INSERT INTO history_base (key, value, content_type, create_rev, mod_rev, version, secret)
		SELECT key, new_value, new_type, new_create_rev, mrev, new_version, secret FROM last WHERE op = 1
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,
		create_rev = excluded.create_rev, mod_rev = excluded.mod_rev, version = excluded.version,
		secret = excluded.secret`, to); err != nil {
		return compactStep{}, fmt.Errorf("audit: compact: history base: %w", err)
	}
	if _, err := tx.ExecContext(ctx, withLast+`DELETE FROM history_base WHERE key IN (SELECT key FROM last WHERE op = 2)`, to); err != nil {
		return compactStep{}, fmt.Errorf("audit: compact: history base: %w", err)
	}
	var step compactStep
	step.from, step.horizon = last.horizon, to
	for _, table := range []string{"layer_changes", "changes", "revisions"} {
		r, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE rev < ?`, to)
		if err != nil {
			return compactStep{}, fmt.Errorf("audit: compact: %s: %w", table, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return compactStep{}, fmt.Errorf("audit: compact: %s: %w", table, err)
		}
		step.rows += n
		if table == "revisions" {
			step.revisions = n
		}
	}
	baseHash, err := historyBaseHash(ctx, tx)
	if err != nil {
		return compactStep{}, err
	}
	rec := horizonState{ts: s.opts.now().UTC().UnixNano(), from: last.horizon, horizon: to,
		revs: step.revisions, rowsGone: step.rows, anchor: anchor, baseHash: baseHash}
	prev := last.hash
	if cr.id != 0 && cr.id == last.id {
		// A later step of the same compaction: its record grows.
		rec.id, rec.from, rec.revs, rec.rowsGone = cr.id, last.from, last.revs+step.revisions, last.rowsGone+step.rows
		prev = nil
		if err := tx.QueryRowContext(ctx, `SELECT hash FROM compactions WHERE id < ? ORDER BY id DESC LIMIT 1`, cr.id).Scan(&prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return compactStep{}, fmt.Errorf("audit: compact: %w", err)
		}
	} else {
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM compactions`).Scan(&rec.id); err != nil {
			return compactStep{}, fmt.Errorf("audit: compact: %w", err)
		}
	}
	rec.hash = compactionHash(prev, &rec, int64(cr.keepRevisions), int64(cr.keepAge))
	if _, err := tx.ExecContext(ctx, `INSERT INTO compactions (id, ts, from_horizon, horizon, revisions_removed, rows_removed,
		keep_revisions, keep_age, anchor, base_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET ts = excluded.ts, horizon = excluded.horizon,
		revisions_removed = excluded.revisions_removed, rows_removed = excluded.rows_removed,
		anchor = excluded.anchor, base_hash = excluded.base_hash, hash = excluded.hash`,
		rec.id, rec.ts, rec.from, rec.horizon, rec.revs, rec.rowsGone, cr.keepRevisions, int64(cr.keepAge),
		rec.anchor, rec.baseHash, rec.hash); err != nil {
		return compactStep{}, fmt.Errorf("audit: compact: record: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return compactStep{}, fmt.Errorf("audit: compact: commit: %w", err)
	}
	s.horizon.Store(to)
	step.id = rec.id
	return step, nil
}

const (
	compactionDomain = "configd compaction v1\n"
	baseDomain       = "configd history base v1\n"
)

// compactionHash chains a compaction record to the one before it.
func compactionHash(prev []byte, r *horizonState, keepRevisions, keepAge int64) []byte {
	var e chainEncoder
	e.buf = append(e.buf, compactionDomain...)
	e.blob(prev)
	for _, v := range []int64{r.id, r.ts, r.from, r.horizon, r.revs, r.rowsGone, keepRevisions, keepAge} {
		e.int(v)
	}
	e.blob(r.anchor)
	e.blob(r.baseHash)
	return e.sum()
}

// historyBaseHash digests history_base, in key order.
func historyBaseHash(ctx context.Context, q sqlitedb.Querier) ([]byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value, content_type, create_rev, mod_rev, version, secret FROM history_base ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("audit: history base: %w", err)
	}
	defer rows.Close()
	h := sha256.New()
	h.Write([]byte(baseDomain))
	var e chainEncoder
	for rows.Next() {
		var key, ct string
		var val []byte
		var create, mod, ver int64
		var secret bool
		if err := rows.Scan(&key, &val, &ct, &create, &mod, &ver, &secret); err != nil {
			return nil, fmt.Errorf("audit: history base: %w", err)
		}
		e.buf = e.buf[:0]
		e.text(key)
		e.blob(val)
		e.text(ct)
		e.int(create)
		e.int(mod)
		e.int(ver)
		e.secret(secret)
		h.Write(e.buf)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: history base: %w", err)
	}
	return h.Sum(nil), nil
}

// verifyCompactions checks the compaction records' chain and the history
// base against the newest record, and returns the newest record: where the
// revisions' chain starts. A problem is reported in res.
func verifyCompactions(ctx context.Context, q sqlitedb.Querier, res *VerifyResult) (horizonState, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, ts, from_horizon, horizon, revisions_removed, rows_removed,
		keep_revisions, keep_age, anchor, base_hash, hash FROM compactions ORDER BY id`)
	if err != nil {
		return horizonState{}, fmt.Errorf("audit: chain: read compactions: %w", err)
	}
	var last horizonState
	var prev []byte
	for rows.Next() {
		var r horizonState
		var keepRevs, keepAge int64
		if err := rows.Scan(&r.id, &r.ts, &r.from, &r.horizon, &r.revs, &r.rowsGone, &keepRevs, &keepAge,
			&r.anchor, &r.baseHash, &r.hash); err != nil {
			rows.Close()
			return horizonState{}, fmt.Errorf("audit: chain: read compactions: %w", err)
		}
		r.found = true
		if res.Problem == "" && (!bytes.Equal(compactionHash(prev, &r, keepRevs, keepAge), r.hash) || r.horizon <= last.horizon) {
			res.BrokenRev = max(r.horizon, 1)
			res.Problem = fmt.Sprintf("compaction record %d does not match its hash: it, or the record before it, was modified or removed", r.id)
		}
		prev, last = r.hash, r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return horizonState{}, fmt.Errorf("audit: chain: read compactions: %w", err)
	}
	if res.Problem != "" || !last.found {
		return last, nil
	}
	base, err := historyBaseHash(ctx, q)
	if err != nil {
		return last, err
	}
	if !bytes.Equal(base, last.baseHash) {
		res.BrokenRev = last.horizon
		res.Problem = fmt.Sprintf("the history base (the values of keys unchanged since before the horizon %d) does not match compaction record %d", last.horizon, last.id)
	}
	return last, nil
}

// goneBelow is the error for a revision below the horizon.
func goneBelow(rev, horizon int64) error {
	return fmt.Errorf("%w: revision %d is older than the history horizon %d (revisions before %d were compacted away; see the compactions)",
		ErrRevisionGone, rev, horizon, horizon)
}
