package chain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"hash"

	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
)

// Compactions remove the oldest revisions (see package retention) without
// breaking the chain: each compaction record keeps the hash of the last
// revision it removed (its anchor), which the first one kept follows, and
// a digest of history_base, the values that keys unchanged since had
// before the horizon; the records are chained to each other too.

// Compaction is a compaction record, a row of the compactions table.
type Compaction struct {
	ID int64
	// TS is the time of its last step (Unix nanoseconds).
	TS int64
	// From is the horizon before it and Horizon the one after: revisions
	// before Horizon were removed.
	From, Horizon int64
	// Revisions and Rows count what it removed.
	Revisions, Rows int64
	// KeepRevisions and KeepAge (nanoseconds) are the retention it applied.
	KeepRevisions, KeepAge int64
	// Anchor is the hash of the last revision removed; BaseHash the digest
	// of history_base after it (HistoryBaseHash); Hash its own hash
	// (CompactionHash), which the next record follows.
	Anchor, BaseHash, Hash []byte
	// Found is false for the zero Compaction that LoadHorizon returns when
	// nothing was ever compacted.
	Found bool
}

// LoadHorizon returns the newest compaction record: the history horizon
// and where the chain of the revisions kept starts. Nothing compacted yet
// is the zero Compaction.
func LoadHorizon(ctx context.Context, q sqlitedb.Querier) (Compaction, error) {
	var h Compaction
	err := q.QueryRowContext(ctx, `SELECT id, ts, from_horizon, horizon, revisions_removed, rows_removed,
		keep_revisions, keep_age, anchor, base_hash, hash FROM compactions ORDER BY id DESC LIMIT 1`).
		Scan(&h.ID, &h.TS, &h.From, &h.Horizon, &h.Revisions, &h.Rows, &h.KeepRevisions, &h.KeepAge, &h.Anchor, &h.BaseHash, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Compaction{}, nil
	}
	if err != nil {
		return h, fmt.Errorf("audit: read the history horizon: %w", err)
	}
	h.Found = true
	return h, nil
}

const (
	compactionDomain = "configd compaction v1\n"
	baseDomain       = "configd history base v1\n"
)

// CompactionHash is the hash of compaction record r (its Hash aside),
// chained to prev, the hash of the record before it (nil for the first).
func CompactionHash(prev []byte, r *Compaction) []byte {
	var e chainEncoder
	e.buf = append(e.buf, compactionDomain...)
	e.blob(prev)
	for _, v := range []int64{r.ID, r.TS, r.From, r.Horizon, r.Revisions, r.Rows, r.KeepRevisions, r.KeepAge} {
		e.int(v)
	}
	e.blob(r.Anchor)
	e.blob(r.BaseHash)
	return e.sum()
}

// HistoryBaseHash digests history_base, in key order.
func HistoryBaseHash(ctx context.Context, q sqlitedb.Querier) ([]byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value, content_type, create_rev, mod_rev, version, secret FROM history_base ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("audit: history base: %w", err)
	}
	defer rows.Close()
	b := newBaseHasher()
	for rows.Next() {
		var kv record.KeyValue
		if err := rows.Scan(&kv.Key, &kv.Value, &kv.ContentType, &kv.CreateRev, &kv.ModRev, &kv.Version, &kv.Secret); err != nil {
			return nil, fmt.Errorf("audit: history base: %w", err)
		}
		b.add(&kv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: history base: %w", err)
	}
	return b.h.Sum(nil), nil
}

// BaseHash is HistoryBaseHash of a history base that would hold kvs (in
// key order, values as stored): what a compaction to a horizon records,
// computed before it runs.
func BaseHash(kvs []record.KeyValue) []byte {
	b := newBaseHasher()
	for i := range kvs {
		b.add(&kvs[i])
	}
	return b.h.Sum(nil)
}

// baseHasher digests the rows of a history base, in key order: the one
// home of their encoding.
type baseHasher struct {
	h hash.Hash
	e chainEncoder
}

func newBaseHasher() *baseHasher {
	b := &baseHasher{h: sha256.New()}
	b.h.Write([]byte(baseDomain))
	return b
}

func (b *baseHasher) add(kv *record.KeyValue) {
	b.e.buf = b.e.buf[:0]
	b.e.kvRow(kv.Key, kv)
	b.h.Write(b.e.buf)
}

// verifyCompactions checks the compaction records' chain and the history
// base against the newest record, and returns the newest record: where the
// revisions' chain starts. A problem is reported in res.
func verifyCompactions(ctx context.Context, q sqlitedb.Querier, res *VerifyResult) (Compaction, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, ts, from_horizon, horizon, revisions_removed, rows_removed,
		keep_revisions, keep_age, anchor, base_hash, hash FROM compactions ORDER BY id`)
	if err != nil {
		return Compaction{}, fmt.Errorf("audit: chain: read compactions: %w", err)
	}
	var last Compaction
	var prev []byte
	for rows.Next() {
		var r Compaction
		if err := rows.Scan(&r.ID, &r.TS, &r.From, &r.Horizon, &r.Revisions, &r.Rows, &r.KeepRevisions, &r.KeepAge,
			&r.Anchor, &r.BaseHash, &r.Hash); err != nil {
			rows.Close()
			return Compaction{}, fmt.Errorf("audit: chain: read compactions: %w", err)
		}
		r.Found = true
		if res.Problem == "" && (!bytes.Equal(CompactionHash(prev, &r), r.Hash) || r.Horizon <= last.Horizon) {
			res.BrokenRev = max(r.Horizon, 1)
			res.Problem = fmt.Sprintf("compaction record %d does not match its hash: it, or the record before it, was modified or removed", r.ID)
		}
		prev, last = r.Hash, r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Compaction{}, fmt.Errorf("audit: chain: read compactions: %w", err)
	}
	if res.Problem != "" || !last.Found {
		return last, nil
	}
	base, err := HistoryBaseHash(ctx, q)
	if err != nil {
		return last, err
	}
	if !bytes.Equal(base, last.BaseHash) {
		res.BrokenRev = last.Horizon
		res.Problem = fmt.Sprintf("the history base (the values of keys unchanged since before the horizon %d) does not match compaction record %d", last.Horizon, last.ID)
	}
	return last, nil
}
