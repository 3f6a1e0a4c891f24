// Package chain is what makes configd's history tamper-evident: the hash
// chain of the revisions, the digest of the state each revision produced,
// and the chain of the compaction records that let old revisions go. It
// computes them (Head, for the commit path) and checks them (Verify,
// CheckState, for Open, the verify API and restores).
//
// The audit chain makes the history tamper-evident. Each revision row
// carries hash = SHA-256(chainDomain || previous revision's hash || the
// revision's canonical content); revision 1 follows 32 zero bytes. The
// canonical content is the revision's columns (rev, ts, actor, reason,
// origin, rollback_to, num_changes) and, when the revision has one, the
// digest of the state it produced (state.go), then every change row
// sorted by key and every layer change row sorted by layer and key, each
// column encoded with a type tag and a length, so that no two different
// contents encode the same way.
//
// The commit path computes the hash in memory while it decides the
// revision, from the same values that are stored (Head); Verify recomputes
// every hash from the rows. An edit of a row, a deleted or inserted
// revision, change or layer change, or a reordering breaks the chain at the
// first revision concerned.
//
// The state digest and the high-water mark (state.go) catch a current
// state that disagrees with the history, and newest revisions cut off.
// What the chain cannot catch on its own: someone who can write the file
// and recomputes every hash and digest after their edit (the mark too).
// Against that, keep the head (VerifyResult.Head and HeadHash) somewhere
// else — a backup, a log, a ticket — and compare.
package chain

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
)

// ErrChainBroken: the audit chain does not verify. The error names the
// first broken revision.
var ErrChainBroken = errors.New("audit chain does not verify")

const chainDomain = "configd audit chain v1\n"

// verifyBatch is how many revisions Verify (and the backfill) loads at once.
const verifyBatch = 512

// VerifyResult is what Verify found.
type VerifyResult struct {
	// OK is true when every revision's hash matches its content and its
	// predecessor.
	OK bool
	// Revisions is how many revisions were checked.
	Revisions int64
	// Head is the newest revision checked and HeadHash its hash (hex), to
	// keep elsewhere and compare later: a chain rewritten from some
	// revision on, or cut short, no longer ends there.
	Head     int64
	HeadHash string
	// Horizon is the oldest revision kept after compactions (0: none
	// removed): the chain is checked from it, following the hash that the
	// newest compaction record keeps of the last removed revision.
	Horizon int64
	// LegacyThrough is the newest revision written before the database had
	// the chain (0: none); those revisions were hashed when the database was
	// upgraded, so the chain attests their content from then on.
	LegacyThrough int64
	// StateFrom is the first revision that records a digest of the state
	// it produced; the revisions before it were written before configd had
	// the digest (an upgraded database). Verify compares the current state
	// with the head's digest once the head is at or past StateFrom.
	StateFrom int64
	// BrokenRev is the first revision that does not verify (0 when OK), and
	// Problem says why.
	BrokenRev int64
	Problem   string
	// StateMismatch is true when the chain verifies but the current state
	// disagrees with it: the state does not match the head's digest, a key
	// was modified after the head, or the history ends below the newest
	// revision ever committed (its newest revisions were removed).
	StateMismatch bool
}

// chainEncoder builds the canonical encoding of one revision.
type chainEncoder struct {
	buf   []byte
	order []int // revisionHash's order of a revision's rows, reused
}

func (e *chainEncoder) reset(prev []byte) {
	e.buf = append(e.buf[:0], chainDomain...)
	if len(prev) == 0 {
		var zero [sha256.Size]byte
		e.buf = append(e.buf, zero[:]...)
	} else {
		e.buf = append(e.buf, prev...)
	}
}

func (e *chainEncoder) int(v int64) {
	e.buf = append(e.buf, 'i')
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v))
}

func (e *chainEncoder) nullInt(v sql.NullInt64) {
	if !v.Valid {
		e.buf = append(e.buf, 'n')
		return
	}
	e.int(v.Int64)
}

func (e *chainEncoder) text(s string) {
	e.buf = append(e.buf, 't')
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *chainEncoder) nullText(v sql.NullString) {
	if !v.Valid {
		e.buf = append(e.buf, 'n')
		return
	}
	e.text(v.String)
}

// blob encodes a value column. NULL and an empty blob mean the same (an
// empty value, or none where the type column is NULL), so they encode the
// same: what SQLite makes of a zero-length blob does not matter.
func (e *chainEncoder) blob(b []byte) {
	e.buf = append(e.buf, 'b')
	e.buf = binary.AppendUvarint(e.buf, uint64(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *chainEncoder) sum() []byte {
	h := sha256.Sum256(e.buf)
	return h[:]
}

// RevRow is a revision's row as the chain sees it.
type RevRow struct {
	Rev                        int64
	ts, rollbackTo, numChanges int64
	actor, reason, origin      string
	state                      []byte // the state digest; nil when NULL
}

func (e *chainEncoder) revision(r RevRow, nChanges, nLayer int) {
	e.int(r.Rev)
	e.int(r.ts)
	e.text(r.actor)
	e.text(r.reason)
	e.text(r.origin)
	e.int(r.rollbackTo)
	e.int(r.numChanges)
	e.int(int64(nChanges))
	e.int(int64(nLayer))
	// Like the secret flag: nothing when NULL, so that the revisions
	// written before the digest existed hash as they always did.
	if r.state != nil {
		e.buf = append(e.buf, 'd')
		e.blob(r.state)
	}
}

// chainChange is a changes row (without its rev).
type chainChange struct {
	key                       string
	op                        int64
	oldValue                  []byte
	oldType                   sql.NullString
	oldCreate, oldMod, oldVer sql.NullInt64
	newValue                  []byte
	newType                   sql.NullString
	newCreate, newVer         sql.NullInt64
	secret                    bool
}

func (e *chainEncoder) change(c *chainChange) {
	e.text(c.key)
	e.int(c.op)
	e.blob(c.oldValue)
	e.nullText(c.oldType)
	e.nullInt(c.oldCreate)
	e.nullInt(c.oldMod)
	e.nullInt(c.oldVer)
	e.blob(c.newValue)
	e.nullText(c.newType)
	e.nullInt(c.newCreate)
	e.nullInt(c.newVer)
	e.secret(c.secret)
}

// secret encodes a row's secret flag: nothing when it is not set, so that
// the rows written before secrets existed (and the rows of plain keys
// since) encode as they always did; a tag when it is, so that clearing or
// setting the flag breaks the chain.
func (e *chainEncoder) secret(b bool) {
	if b {
		e.buf = append(e.buf, 's')
	}
}

// chainLayerChange is a layer_changes row (without its rev).
type chainLayerChange struct {
	layer, key string
	oldValue   []byte
	oldType    sql.NullString
	newValue   []byte
	newType    sql.NullString
	secret     bool
}

func (e *chainEncoder) layerChange(c *chainLayerChange) {
	e.text(c.layer)
	e.text(c.key)
	e.blob(c.oldValue)
	e.nullText(c.oldType)
	e.blob(c.newValue)
	e.nullText(c.newType)
	e.secret(c.secret)
}

// revisionHash returns the hash of r, with the state digest state,
// following prev, from the values that are stored for it.
func (e *chainEncoder) revisionHash(prev []byte, r *record.Revision, state []byte) []byte {
	e.reset(prev)
	e.revision(RevRow{Rev: r.Rev, ts: r.Time.UnixNano(), actor: r.Actor, reason: r.Reason, origin: r.Origin,
		rollbackTo: r.RollbackTo, numChanges: int64(r.NumChanges), state: state}, len(r.Changes), len(r.LayerChanges))
	n := max(len(r.Changes), len(r.LayerChanges))
	order := slices.Grow(e.order[:0], n)[:n]
	e.order = order
	for i := range order {
		order[i] = i
	}
	cs := order[:len(r.Changes)]
	slices.SortFunc(cs, func(i, j int) int { return strings.Compare(r.Changes[i].Key, r.Changes[j].Key) })
	for _, i := range cs {
		c := &r.Changes[i]
		cc := chainChange{key: c.Key, op: int64(c.Type), secret: c.IsSecret()}
		if c.Old != nil {
			cc.oldValue, cc.oldType = c.Old.Value, sql.NullString{String: c.Old.ContentType, Valid: true}
			cc.oldCreate = sql.NullInt64{Int64: c.Old.CreateRev, Valid: true}
			cc.oldMod = sql.NullInt64{Int64: c.Old.ModRev, Valid: true}
			cc.oldVer = sql.NullInt64{Int64: c.Old.Version, Valid: true}
		}
		if c.New != nil {
			cc.newValue, cc.newType = c.New.Value, sql.NullString{String: c.New.ContentType, Valid: true}
			cc.newCreate = sql.NullInt64{Int64: c.New.CreateRev, Valid: true}
			cc.newVer = sql.NullInt64{Int64: c.New.Version, Valid: true}
		}
		e.change(&cc)
	}
	for i := range order {
		order[i] = i
	}
	ls := order[:len(r.LayerChanges)]
	slices.SortFunc(ls, func(i, j int) int {
		a, b := &r.LayerChanges[i], &r.LayerChanges[j]
		return cmp.Or(strings.Compare(a.Layer, b.Layer), strings.Compare(a.Key, b.Key))
	})
	for _, i := range ls {
		lc := &r.LayerChanges[i]
		c := chainLayerChange{layer: lc.Layer, key: lc.Key, secret: lc.IsSecret()}
		c.oldValue, c.oldType = layerColsChain(lc.Old)
		c.newValue, c.newType = layerColsChain(lc.New)
		e.layerChange(&c)
	}
	return e.sum()
}

// layerColsChain is layerCols with the chain's types.
func layerColsChain(v *record.LayerValue) ([]byte, sql.NullString) {
	switch {
	case v == nil:
		return nil, sql.NullString{}
	case v.Tombstone:
		return nil, sql.NullString{Valid: true}
	}
	return v.Value, sql.NullString{String: v.ContentType, Valid: true}
}

// Prepare hashes, once, the revisions written before the chain
// existed (see migrations/0004_audit_chain.sql), and returns the hash of
// the newest revision: where the commit path's chain continues.
func Prepare(ctx context.Context, db *sql.DB) ([]byte, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("audit: chain: begin: %w", err)
	}
	defer tx.Rollback()
	var legacy, done int64
	if err := tx.QueryRowContext(ctx, `SELECT legacy_through, backfilled FROM audit_chain WHERE id = 1`).Scan(&legacy, &done); err != nil {
		return nil, fmt.Errorf("audit: chain: read state: %w", err)
	}
	if done == 0 {
		// A gap in the legacy revisions is left for Verify to report: it
		// must not keep configd from starting.
		err := Walk(ctx, tx, 1, legacy, nil, func(r RevRow, hash, stored []byte) (bool, error) {
			if hash == nil || stored != nil {
				return true, nil
			}
			if _, err := tx.ExecContext(ctx, `UPDATE revisions SET hash = ? WHERE rev = ?`, hash, r.Rev); err != nil {
				return false, fmt.Errorf("audit: chain: backfill revision %d: %w", r.Rev, err)
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_chain SET backfilled = 1 WHERE id = 1`); err != nil {
			return nil, fmt.Errorf("audit: chain: %w", err)
		}
	}
	var head []byte
	err = tx.QueryRowContext(ctx, `SELECT hash FROM revisions ORDER BY rev DESC LIMIT 1`).Scan(&head)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("audit: chain: read head: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("audit: chain: commit: %w", err)
	}
	return head, nil
}

// Walk reads revisions from..to in order (to < 0: to the newest),
// the first one following the hash prev (nil: the zero hash), and calls fn with each one's row, the hash its content and its
// predecessor's computed hash give, and the hash stored in its row (nil
// when NULL). A missing revision (a gap in the numbers) is reported to fn
// as RevRow{Rev: missing} with nil hashes; if fn goes on, the next
// revision follows the one before the gap. fn returns false to stop.
func Walk(ctx context.Context, q sqlitedb.Querier, from, to int64, prev []byte, fn func(r RevRow, hash, stored []byte) (bool, error)) error {
	var enc chainEncoder
	next := from
	for to < 0 || next <= to {
		hi := next + verifyBatch - 1
		if to >= 0 && hi > to {
			hi = to
		}
		revs, hashes, err := loadChainRevs(ctx, q, next, hi)
		if err != nil {
			return err
		}
		if len(revs) == 0 {
			limit := to
			if limit < 0 {
				limit = 1<<63 - 1
			}
			var more sql.NullInt64
			if err := q.QueryRowContext(ctx, `SELECT min(rev) FROM revisions WHERE rev > ? AND rev <= ?`, hi, limit).Scan(&more); err != nil {
				return fmt.Errorf("audit: chain: %w", err)
			}
			if !more.Valid {
				return nil
			}
			if goOn, err := fn(RevRow{Rev: next}, nil, nil); err != nil || !goOn {
				return err
			}
			next = more.Int64
			continue
		}
		changes, err := loadChainChanges(ctx, q, next, hi)
		if err != nil {
			return err
		}
		layers, err := loadChainLayerChanges(ctx, q, next, hi)
		if err != nil {
			return err
		}
		for i, r := range revs {
			if r.Rev != next {
				if goOn, err := fn(RevRow{Rev: next}, nil, nil); err != nil || !goOn {
					return err
				}
			}
			cs, ls := changes[r.Rev], layers[r.Rev]
			enc.reset(prev)
			enc.revision(r, len(cs), len(ls))
			for j := range cs {
				enc.change(&cs[j])
			}
			for j := range ls {
				enc.layerChange(&ls[j])
			}
			h := enc.sum()
			if goOn, err := fn(r, h, hashes[i]); err != nil || !goOn {
				return err
			}
			prev = h
			next = r.Rev + 1
		}
	}
	return nil
}

func loadChainRevs(ctx context.Context, q sqlitedb.Querier, lo, hi int64) ([]RevRow, [][]byte, error) {
	rows, err := q.QueryContext(ctx, `SELECT rev, ts, actor, reason, origin, rollback_to, num_changes, hash, state
		FROM revisions WHERE rev >= ? AND rev <= ? ORDER BY rev`, lo, hi)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: chain: read revisions: %w", err)
	}
	defer rows.Close()
	var revs []RevRow
	var hashes [][]byte
	for rows.Next() {
		var r RevRow
		var h []byte
		if err := rows.Scan(&r.Rev, &r.ts, &r.actor, &r.reason, &r.origin, &r.rollbackTo, &r.numChanges, &h, &r.state); err != nil {
			return nil, nil, fmt.Errorf("audit: chain: read revisions: %w", err)
		}
		revs = append(revs, r)
		hashes = append(hashes, h)
	}
	return revs, hashes, rows.Err()
}

func loadChainChanges(ctx context.Context, q sqlitedb.Querier, lo, hi int64) (map[int64][]chainChange, error) {
	rows, err := q.QueryContext(ctx, `SELECT rev, key, op, old_value, old_type, old_create_rev, old_mod_rev, old_version,
		new_value, new_type, new_create_rev, new_version, secret FROM changes WHERE rev >= ? AND rev <= ? ORDER BY rev, key`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("audit: chain: read changes: %w", err)
	}
	defer rows.Close()
	out := map[int64][]chainChange{}
	for rows.Next() {
		var rev int64
		var c chainChange
		if err := rows.Scan(&rev, &c.key, &c.op, &c.oldValue, &c.oldType, &c.oldCreate, &c.oldMod, &c.oldVer,
			&c.newValue, &c.newType, &c.newCreate, &c.newVer, &c.secret); err != nil {
			return nil, fmt.Errorf("audit: chain: read changes: %w", err)
		}
		out[rev] = append(out[rev], c)
	}
	return out, rows.Err()
}

func loadChainLayerChanges(ctx context.Context, q sqlitedb.Querier, lo, hi int64) (map[int64][]chainLayerChange, error) {
	rows, err := q.QueryContext(ctx, `SELECT rev, layer, key, old_value, old_type, new_value, new_type, secret
		FROM layer_changes WHERE rev >= ? AND rev <= ? ORDER BY rev, layer, key`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("audit: chain: read layer changes: %w", err)
	}
	defer rows.Close()
	out := map[int64][]chainLayerChange{}
	for rows.Next() {
		var rev int64
		var c chainLayerChange
		if err := rows.Scan(&rev, &c.layer, &c.key, &c.oldValue, &c.oldType, &c.newValue, &c.newType, &c.secret); err != nil {
			return nil, fmt.Errorf("audit: chain: read layer changes: %w", err)
		}
		out[rev] = append(out[rev], c)
	}
	return out, rows.Err()
}

// Verify walks the audit chain from revision 1 to the newest, in q's
// snapshot, and reports the first revision whose stored hash does not
// match its content and its predecessor's hash, or that is missing. When
// the chain verifies, it checks the current state against it (see
// CheckState): a state that disagrees is reported with StateMismatch. A
// broken chain is a result, not an error: the error is for a database that
// cannot be read.
//
// After a compaction the walk starts at the horizon, from the hash of the
// last removed revision that the compaction record keeps; the records
// themselves are chained and the history base is checked against the
// newest one.
func Verify(ctx context.Context, q sqlitedb.Querier) (VerifyResult, error) {
	var res VerifyResult
	if err := q.QueryRowContext(ctx, `SELECT legacy_through, state_from FROM audit_chain WHERE id = 1`).Scan(&res.LegacyThrough, &res.StateFrom); err != nil {
		return res, fmt.Errorf("audit: chain: read state: %w", err)
	}
	last, err := verifyCompactions(ctx, q, &res)
	if err != nil || res.Problem != "" {
		return res, err
	}
	res.Horizon = last.Horizon
	err = Walk(ctx, q, max(last.Horizon, 1), -1, last.Anchor, func(r RevRow, hash, stored []byte) (bool, error) {
		switch {
		case hash == nil:
			res.BrokenRev, res.Problem = r.Rev, fmt.Sprintf("revision %d is missing", r.Rev)
		case stored == nil:
			res.BrokenRev, res.Problem = r.Rev, fmt.Sprintf("revision %d has no hash", r.Rev)
		case !bytes.Equal(hash, stored):
			res.BrokenRev, res.Problem = r.Rev, fmt.Sprintf("revision %d does not match its hash: its row, its changes, its layer changes or its hash were modified, or the revision before it was replaced", r.Rev)
		default:
			res.Revisions++
			res.Head, res.HeadHash = r.Rev, hex.EncodeToString(hash)
			return true, nil
		}
		return false, nil
	})
	res.OK = err == nil && res.BrokenRev == 0 && res.Problem == ""
	if !res.OK {
		return res, err
	}
	st, err := CheckState(ctx, q, nil)
	if err != nil {
		return res, err
	}
	if st.Problem != "" {
		res.OK, res.StateMismatch, res.BrokenRev, res.Problem = false, true, st.BrokenRev, st.Problem
	}
	return res, nil
}
