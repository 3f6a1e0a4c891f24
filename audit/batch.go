package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/configd/configd/audit/internal/sqlitedb"
)

// The writer's batch state. A group commit runs every request against an
// in-memory view, the mirror (s.current) plus an overlay of what the
// batch's earlier requests changed, and stages the rows each request
// writes; the rows go to SQLite in multi-row statements when the batch is
// flushed: before commit, and before any request that reads the database
// itself (a rollback, a source snapshot, a write that needs the layer
// rows). Every check that can refuse a request (a conflict, a key owned by
// a higher layer, a secret without its data key) runs before the request
// stages anything, so a refused request leaves no trace without a
// savepoint; a failed statement fails the whole batch.
//
// Invariant: inside the batch's transaction, after a flush, the kv table
// equals the mirror with the overlay applied (the values sealed).

// maxMulti is the most rows of one prepared multi-row statement; there is
// one of each power of two up to it, and a flush of n rows runs one
// statement per bit of n (and n/maxMulti of the largest).
const maxMulti = 128

// Multi-row statements: the column list and the suffix; the VALUES rows
// are added per size.
var multiStmts = []struct {
	name, prefix, row, suffix string
}{
	{"rev", `INSERT INTO revisions (rev, ts, actor, reason, origin, rollback_to, num_changes, hash, state) VALUES `, "(?,?,?,?,?,?,?,?,?)", ""},
	{"change", `INSERT INTO changes (rev, key, op, old_value, old_type, old_create_rev, old_mod_rev, old_version,
		new_value, new_type, new_create_rev, new_version, secret) VALUES `, "(?,?,?,?,?,?,?,?,?,?,?,?,?)", ""},
	{"layerChange", `INSERT INTO layer_changes (rev, layer, key, old_value, old_type, new_value, new_type, secret) VALUES `, "(?,?,?,?,?,?,?,?)", ""},
	{"kv", `INSERT INTO kv (key, value, content_type, create_rev, mod_rev, version, secret) VALUES `, "(?,?,?,?,?,?,?)",
		` ON CONFLICT (key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,
		create_rev = excluded.create_rev, mod_rev = excluded.mod_rev, version = excluded.version, secret = excluded.secret`},
	{"layerKV", `INSERT INTO layer_kv (layer, key, value, content_type, secret) VALUES `, "(?,?,?,?,?)",
		` ON CONFLICT (layer, key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,
		secret = excluded.secret`},
}

func multiQuery(i, n int) string {
	m := multiStmts[i]
	return m.prefix + strings.TrimSuffix(strings.Repeat(m.row+",", n), ",") + m.suffix
}

// Indexes into multiStmts.
const (
	mRev = iota
	mChange
	mLayerChange
	mKV
	mLayerKV
	nMulti
)

// prepareMulti prepares every multi-row statement, of 1, 2, 4 … maxMulti
// rows.
func (w *writer) prepareMulti(ctx context.Context) error {
	for i := range multiStmts {
		for n := 1; n <= maxMulti; n *= 2 {
			st, err := w.s.wdb.PrepareContext(ctx, multiQuery(i, n))
			if err != nil {
				return fmt.Errorf("audit: prepare: %w", err)
			}
			w.multi[i] = append(w.multi[i], st)
		}
	}
	return nil
}

type layerKey struct{ layer, key string }

// pending is what the batch has staged and not yet flushed.
type pending struct {
	args  [nMulti][]any // the rows' arguments, flat, per statement
	rows  [nMulti]int
	kv    map[string]*KeyValue // sealed; nil: delete
	kvOrd []string
	lkv   map[layerKey]*LayerValue // sealed; nil: delete
	lkOrd []layerKey
}

func (p *pending) reset() {
	for i := range p.args {
		clear(p.args[i])
		p.args[i], p.rows[i] = p.args[i][:0], 0
	}
	clear(p.kv)
	clear(p.lkv)
	p.kvOrd, p.lkOrd = p.kvOrd[:0], p.lkOrd[:0]
}

func (p *pending) empty() bool {
	return p.rows == [nMulti]int{} && len(p.kvOrd) == 0 && len(p.lkOrd) == 0
}

func (p *pending) add(i int, args ...any) {
	p.args[i] = append(p.args[i], args...)
	p.rows[i]++
}

func (p *pending) putKV(key string, kv *KeyValue) {
	if _, ok := p.kv[key]; !ok {
		p.kvOrd = append(p.kvOrd, key)
	}
	p.kv[key] = kv
}

func (p *pending) putLayer(k layerKey, v *LayerValue) {
	if _, ok := p.lkv[k]; !ok {
		p.lkOrd = append(p.lkOrd, k)
	}
	p.lkv[k] = v
}

// beginBatch resets the batch state.
func (w *writer) beginBatch() {
	w.pend.reset()
	clear(w.overlay)
	w.head.Begin()
}

// old returns key's current value in the batch, decrypted (a copy: the
// caller may keep it); nil when the key does not exist. Without the mirror
// (a sealed store) it reads the database, which the caller has flushed.
func (w *writer) old(ctx context.Context, tx *sql.Tx, key string) (*KeyValue, error) {
	if !w.mirror {
		return w.getKV(ctx, w.tx(ctx, tx, qGetKV), key)
	}
	kv, ok := w.overlay[key]
	if !ok {
		kv = w.s.current[key] // only the writer changes the mirror
	}
	if kv == nil {
		return nil, nil
	}
	c := *kv
	return &c, nil
}

// needsDB reports whether req reads the database itself, so that the batch
// must be flushed before it.
func (w *writer) needsDB(req *request) bool {
	return req.rollback != nil || req.source != nil || w.layered || !w.mirror
}

// flush writes the staged rows.
func (w *writer) flush(ctx context.Context, tx *sql.Tx) error {
	p := &w.pend
	if p.empty() {
		return nil
	}
	for _, k := range p.kvOrd {
		kv := p.kv[k]
		if kv == nil {
			if _, err := w.tx(ctx, tx, qDelKV).ExecContext(ctx, k); err != nil {
				return fmt.Errorf("audit: delete key: %w", err)
			}
			continue
		}
		p.add(mKV, k, kv.Value, kv.ContentType, kv.CreateRev, kv.ModRev, kv.Version, sqlitedb.SecretCol(kv.Secret))
	}
	for _, k := range p.lkOrd {
		v := p.lkv[k]
		if v == nil {
			if _, err := w.tx(ctx, tx, qDelLayerKV).ExecContext(ctx, k.layer, k.key); err != nil {
				return fmt.Errorf("audit: write layer %s: %w", k.layer, err)
			}
			continue
		}
		val, ct := sqlitedb.LayerCols(v)
		p.add(mLayerKV, k.layer, k.key, val, ct, sqlitedb.SecretCol(v.Secret))
	}
	// Revisions first: changes and layer changes refer to them.
	for i := range multiStmts {
		if err := w.execMulti(ctx, tx, i, p.args[i], p.rows[i]); err != nil {
			return fmt.Errorf("audit: write %s rows: %w", multiStmts[i].name, err)
		}
	}
	p.reset()
	return nil
}

// execMulti inserts n rows of statement i, whose arguments args holds.
func (w *writer) execMulti(ctx context.Context, tx *sql.Tx, i int, args []any, n int) error {
	if n == 0 {
		return nil
	}
	cols := len(args) / n
	for n > 0 {
		k, size := len(w.multi[i])-1, maxMulti
		for size > n {
			k, size = k-1, size/2
		}
		if _, err := tx.StmtContext(ctx, w.multi[i][k]).ExecContext(ctx, args[:size*cols]...); err != nil {
			return err
		}
		args, n = args[size*cols:], n-size
	}
	return nil
}
