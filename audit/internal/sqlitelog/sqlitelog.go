// Package sqlitelog is the commit log of a store on SQLite alone: a batch
// of records is one SQLite transaction on the writer's connection, and its
// COMMIT (WAL, synchronous=FULL) is what makes it durable. It is the
// implementation of commit.Log that configd runs today.
//
// A batch queues the rows of the records appended to it and writes them in
// multi-row statements when it is flushed: before commit, and before the
// decider reads the database itself (a rollback, a source snapshot, a write
// that needs the layer rows). The high-water mark (the newest revision ever
// committed, see package chain) moves in the same transaction: with each
// batch, or, for the journaled batches that one transaction gathers, once
// when Settle commits it.
package sqlitelog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/internal/journal"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
)

// maxMulti is the most rows of one prepared multi-row statement; there is
// one of each power of two up to it, and a flush of n rows runs one
// statement per bit of n (and n/maxMulti of the largest).
const maxMulti = 128

// Multi-row statements: the column list and the suffix; the VALUES rows
// are added per size.
//
// None of them needs SQLite's statement journal, which a multi-row
// statement that may abort halfway keeps (a copy of every page it
// changes, 3% of a write's CPU): each says OR ROLLBACK, so that a failed
// constraint rolls the whole transaction back, which is what the log does
// with a batch that fails (Abort: the batches before it are applied again
// from the journal); the log's transactions do not check foreign keys
// (beginTxn); and a key's kv row is inserted when it is new and updated
// when it is not (pending.putKV knows which), not upserted: an upsert's
// update may abort. layer_kv's rows are upserted still (a source's rows).
var multiStmts = []struct {
	name, prefix, row, suffix string
}{
	{"rev", `INSERT OR ROLLBACK INTO revisions (rev, ts, actor, reason, origin, rollback_to, num_changes, hash, state) VALUES `, "(?,?,?,?,?,?,?,?,?)", ""},
	{"change", `INSERT OR ROLLBACK INTO changes (rev, key, op, old_value, old_type, old_create_rev, old_mod_rev, old_version,
		new_value, new_type, new_create_rev, new_version, secret) VALUES `, "(?,?,?,?,?,?,?,?,?,?,?,?,?)", ""},
	{"layerChange", `INSERT OR ROLLBACK INTO layer_changes (rev, layer, key, old_value, old_type, new_value, new_type, secret) VALUES `, "(?,?,?,?,?,?,?,?)", ""},
	{"kv", `INSERT OR ROLLBACK INTO kv (key, value, content_type, create_rev, mod_rev, version, secret) VALUES `, kvCols, ""},
	{"kvUpdate", `UPDATE OR ROLLBACK kv SET value = v.column2, content_type = v.column3, create_rev = v.column4,
		mod_rev = v.column5, version = v.column6, secret = v.column7 FROM (VALUES `, kvCols, `) AS v WHERE kv.key = v.column1`},
	{"layerKV", `INSERT INTO layer_kv (layer, key, value, content_type, secret) VALUES `, "(?,?,?,?,?)",
		` ON CONFLICT (layer, key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,
		secret = excluded.secret`},
}

// kvCols is a kv row's arguments: key, value, content_type, create_rev,
// mod_rev, version, secret.
const kvCols = "(?,?,?,?,?,?,?)"

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
	mKVUpdate
	mLayerKV
	nMulti
)

// Statements other than the multi-row ones, prepared once.
const (
	qGetKV      = `SELECT value, content_type, create_rev, mod_rev, version, secret FROM kv WHERE key = ?`
	qDelKV      = `DELETE FROM kv WHERE key = ?`
	qGetLayerKV = `SELECT value, content_type, secret FROM layer_kv WHERE layer = ? AND key = ?`
	qDelLayerKV = `DELETE FROM layer_kv WHERE layer = ? AND key = ?`
	qHighWater  = `UPDATE audit_chain SET high_water = max(high_water, ?) WHERE id = 1`
	// qWriteOut writes out the store layer rows that kv implies.
	qWriteOut = `INSERT INTO layer_kv (layer, key, value, content_type, secret)
		SELECT ?, key, value, content_type, 0 FROM (` + sqlitedb.ImpliedStoreRows + `) WHERE true
		ON CONFLICT (layer, key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type, secret = excluded.secret`
)

// Log is the commit log on the writer's connection of a store's database.
// It serves one batch at a time.
type Log struct {
	db         *sql.DB
	layers     []string // lowest precedence first
	qLayerRows string   // sqlitedb.LayerRowsQuery(layers)
	stmts      map[string]*sql.Stmt
	b          batch // the batch under way, reused

	// The multi-row statements, by row count (1, 2, 4 … maxMulti),
	// prepared on the driver's connection dc, which execMulti runs
	// directly (see txn), and their arguments.
	dc     any
	dmulti [nMulti][]driver.Stmt
	nv     []driver.NamedValue

	// With a journal (Journal): the batches' durability, and the
	// database transaction that holds the batches made durable since the
	// last Settle.
	j         *journal.File
	tx        *txn
	since     time.Time    // when tx's first batch was made durable; zero: none
	unsettled int64        // the newest revision in tx
	lost      bool         // tx was lost with batches in it: replay them from the journal first
	settled   atomic.Int64 // the newest revision the database holds
	load      float64      // records a journaled batch, a moving average over the last 8 or so (writeAndSync)

	// implied: the database leaves the store layer's non-secret rows
	// out of layer_kv (ImplyStoreRows), as committed. txOut: tx wrote
	// them out (the first row of another layer), which its commit makes
	// the committed state.
	implied bool
	txOut   bool
}

var (
	_ commit.Log      = (*Log)(nil)
	_ commit.Deferred = (*Log)(nil)
)

// New prepares the log on db, the writer's connection of a database whose
// layers are layers (lowest precedence first).
func New(ctx context.Context, db *sql.DB, layers []string) (*Log, error) {
	l := &Log{db: db, layers: layers, qLayerRows: sqlitedb.LayerRowsQuery(layers), stmts: map[string]*sql.Stmt{}}
	l.b = batch{l: l, pend: pending{kv: map[string]kvRow{}, lkv: map[layerKey]*record.LayerValue{}}}
	for _, q := range []string{qGetKV, qDelKV, l.qLayerRows, qGetLayerKV, qDelLayerKV, qHighWater} {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("audit: prepare: %w", err)
		}
		l.stmts[q] = st
	}
	return l, nil
}

// Journal makes j the durability of the log's batches (see package
// journal): a batch's Commit writes its records to j and syncs them, and
// leaves them in a database transaction that Settle commits. rev is the
// newest revision the database holds. What j held after it is applied
// with BeginApply's batches before any other (commit.Writer.Recover).
func (l *Log) Journal(j *journal.File, rev int64) {
	l.j = j
	l.settled.Store(rev)
	j.Reset(rev)
}

// ImplyStoreRows has the batches leave the store layer's non-secret rows
// out of layer_kv, on a database that leaves them implied by kv
// (sqlitedb.Implied), until a batch writes a row of another layer (a
// source's) or a tombstone: that batch writes them all out first, and the
// later ones write them as they change.
func (l *Log) ImplyStoreRows() { l.implied = true }

// Close closes the prepared statements, after committing the batches the
// journal holds and the database does not yet (Settle) and closing the
// journal. The writer must be done with the log.
func (l *Log) Close() error {
	var errs []error
	if l.j != nil {
		// The journal keeps what the database lacks, if Settle failed.
		errs = append(errs, l.Settle(context.Background()), l.j.Close(l.settled.Load()))
		l.j = nil
	}
	errs = append(errs, l.closeDriverStmts())
	for _, st := range l.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// Begin starts a batch: a SQLite transaction that takes the write lock,
// or, with a journal, the transaction that holds the batches not yet
// settled. The batch is the log's one batch, reused: it
// is valid until it commits or aborts.
func (l *Log) Begin(ctx context.Context) (commit.Batch, error) {
	if l.j == nil {
		return l.begin(ctx)
	}
	if l.lost {
		if err := l.replay(ctx); err != nil {
			return nil, err
		}
	}
	if l.tx == nil {
		tx, err := l.beginTxn(ctx)
		if err != nil {
			return nil, err
		}
		l.tx = tx
	}
	l.b.tx, l.b.last, l.b.journaled, l.b.wrote, l.b.frames, l.b.records = l.tx, 0, true, false, l.b.frames[:0], 0
	l.b.implied, l.b.wroteOut = l.implied && !l.txOut, false
	l.b.pend.reset()
	return &l.b, nil
}

// BeginApply starts a batch that commits to the database alone, as a log
// without a journal does, after settling: the records appended are durable
// elsewhere already (the journal Open read, or a replicated log).
func (l *Log) BeginApply(ctx context.Context) (commit.Batch, error) {
	if err := l.Settle(ctx); err != nil {
		return nil, err
	}
	return l.begin(ctx)
}

func (l *Log) begin(ctx context.Context) (commit.Batch, error) {
	tx, err := l.beginTxn(ctx)
	if err != nil {
		return nil, err
	}
	l.b.tx, l.b.last, l.b.journaled = tx, 0, false
	l.b.implied, l.b.wroteOut = l.implied, false
	l.b.pend.reset()
	return &l.b, nil
}

// Unsettled reports since when the journal has held batches that the
// database does not commit yet (zero: none).
func (l *Log) Unsettled() time.Time { return l.since }

// Settled returns the newest revision the database holds. It is safe to
// call from any goroutine.
func (l *Log) Settled() int64 { return l.settled.Load() }

// Full reports whether the journal's cycle holds half its preallocated
// size: time to settle, so that it stays within it.
func (l *Log) Full() bool { return l.j != nil && l.j.Used() > l.j.Size()/2 }

// Settle commits the batches that the journal holds and the database does
// not (fsync'd: SQLite's synchronous=FULL), and starts the journal's next
// cycle. When the commit fails, the batches are applied again from the
// journal in a new transaction; when that fails too, the next Begin tries
// again first.
func (l *Log) Settle(ctx context.Context) error {
	if l.j == nil {
		return nil
	}
	if l.lost {
		return l.replay(ctx)
	}
	if l.tx == nil {
		return nil
	}
	// The high-water mark moves once a settle, to the newest revision
	// the transaction holds, rather than once a batch.
	var err error
	if l.unsettled > l.settled.Load() {
		if _, err = l.tx.StmtContext(ctx, l.stmts[qHighWater]).ExecContext(ctx, l.unsettled); err != nil {
			err = fmt.Errorf("record the high-water mark: %w", err)
		}
	}
	if err == nil {
		err = l.tx.Commit()
	} else {
		l.tx.Rollback()
	}
	l.tx = nil
	out := l.txOut
	l.txOut = false
	if err != nil {
		l.lost = true
		err = sqlitedb.StorageError(fmt.Errorf("audit: commit the journaled batches: %w", err))
		return errors.Join(err, l.replay(ctx))
	}
	if out {
		l.implied = false
	}
	l.settle(l.unsettled)
	return nil
}

// settle records that the database holds every revision up to rev.
func (l *Log) settle(rev int64) {
	l.since, l.lost = time.Time{}, false
	l.settled.Store(rev)
	l.j.Reset(rev)
}

// lose drops the open transaction after an error that may have rolled it
// back: the batches it held are applied again from the journal (replay).
func (l *Log) lose() {
	if l.tx != nil {
		l.tx.Rollback()
		l.tx = nil
	}
	l.txOut = false
	if !l.since.IsZero() {
		l.lost = true
	}
}

// replay applies the records of the journal's cycle that the database
// lacks, in one transaction that it commits.
func (l *Log) replay(ctx context.Context) error {
	rec, err := l.j.Current()
	if err != nil {
		return err
	}
	settled := l.settled.Load()
	b, err := l.begin(ctx)
	if err != nil {
		return err
	}
	for _, r := range rec.Records {
		if r.Rev.Rev > settled {
			b.Append(r)
		}
	}
	if err := b.Commit(ctx); err != nil {
		return fmt.Errorf("audit: apply the journaled batches again: %w", err)
	}
	l.settle(max(settled, rec.Last()))
	return nil
}

// batch is a Log's batch: its transaction and what was appended and not
// yet flushed.
type batch struct {
	l    *Log
	tx   *txn
	pend pending
	last int64 // the newest revision appended; 0: none
	// journaled: the batch writes its rows into the log's open
	// transaction, and is made durable by writing frames, its records',
	// to the journal. wrote: some of its rows reached the transaction,
	// which an Abort then gives up whole (the batches before it are
	// applied again from the journal: replay), rather than keep a
	// savepoint per batch, whose statement journal costs every batch.
	journaled bool
	wrote     bool
	frames    []byte
	records   int // appended to frames
	// implied: the store layer's non-secret rows are left out of
	// layer_kv in the batch's transaction (Log.ImplyStoreRows); wroteOut:
	// the batch wrote them out.
	implied  bool
	wroteOut bool
	// cols are the kv row columns of the changes of the record being
	// appended, by change (kvRow.cols).
	cols [][5]any
}

// stmt returns the log's prepared statement for query, bound to the
// batch's transaction.
func (b *batch) stmt(ctx context.Context, query string) *sql.Stmt {
	return b.tx.StmtContext(ctx, b.l.stmts[query])
}

func (b *batch) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return b.tx.QueryContext(ctx, query, args...)
}

func (b *batch) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return b.tx.QueryRowContext(ctx, query, args...)
}

func (b *batch) KV(ctx context.Context, key string) (*record.KeyValue, error) {
	if r, ok := b.pend.kv[key]; ok {
		return r.kv, nil
	}
	kv, err := sqlitedb.ScanKV(key, b.stmt(ctx, qGetKV).QueryRowContext(ctx, key))
	if errors.Is(err, record.ErrNotFound) {
		return nil, nil
	}
	return kv, err
}

func (b *batch) LayerRow(ctx context.Context, layer, key string) (*record.LayerValue, error) {
	if err := b.flushWriteOut(ctx); err != nil {
		return nil, err
	}
	implied := layer == record.StoreLayer && b.implied
	noRow := func() (*record.LayerValue, error) {
		if implied {
			if v, err := b.impliedRow(ctx, key); err != nil || v != nil {
				return v, err
			}
		}
		return nil, fmt.Errorf("audit: state: layer %s has no row for %q", layer, key)
	}
	if v, ok := b.pend.lkv[layerKey{layer, key}]; ok && v != nil {
		return v, nil
	} else if ok {
		return noRow() // the batch deleted the row
	}
	v := &record.LayerValue{}
	err := b.stmt(ctx, qGetLayerKV).QueryRowContext(ctx, layer, key).Scan(&v.Value, &v.ContentType, &v.Secret)
	if errors.Is(err, sql.ErrNoRows) {
		return noRow()
	}
	if err != nil {
		return nil, fmt.Errorf("audit: state: read layer %s of %q: %w", layer, key, err)
	}
	v.Tombstone = v.ContentType == ""
	return v, nil
}

func (b *batch) LayerRows(ctx context.Context, key string) (map[string]*record.LayerValue, error) {
	if err := b.flushWriteOut(ctx); err != nil {
		return nil, err
	}
	rows, err := b.stmt(ctx, b.l.qLayerRows).QueryContext(ctx, sqlitedb.LayerRowsArgs(b.l.layers, key)...)
	if err == nil {
		var out map[string]*record.LayerValue
		if out, err = sqlitedb.ScanLayerRows(rows); err == nil {
			if len(out) == 0 && b.implied {
				var v *record.LayerValue
				if v, err = b.impliedRow(ctx, key); err == nil && v != nil {
					out[record.StoreLayer] = v
				}
			}
			if err == nil {
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("audit: read layers of %q: %w", key, err)
}

// flushWriteOut flushes the batch when it has store layer rows to write
// out (writeOut), so that layer_kv holds them before it is read.
func (b *batch) flushWriteOut(ctx context.Context) error {
	if !b.pend.writeOut {
		return nil
	}
	return sqlitedb.StorageError(b.flush(ctx))
}

// impliedRow is key's store layer row that layer_kv leaves out (b.implied),
// from the batch's kv row; nil when there is none.
func (b *batch) impliedRow(ctx context.Context, key string) (*record.LayerValue, error) {
	kv, err := b.KV(ctx, key)
	if err != nil {
		return nil, err
	}
	return sqlitedb.ImpliedStoreRow(kv), nil
}

func (b *batch) Append(rec commit.Record) {
	r, p := &rec.Rev, &b.pend
	if b.implied && makesLayered(r) {
		b.writeOut()
	}
	// The revision's number goes into each of its rows: boxed once.
	rev := any(r.Rev)
	p.add(mRev, rev, r.Time.UnixNano(), r.Actor, r.Reason, r.Origin, r.RollbackTo, int64(r.NumChanges), rec.Hash, rec.State)
	for i := range r.Changes {
		c := &r.Changes[i]
		var o [5]any // the old_ columns: NULL for none
		if c.Old != nil {
			o = [5]any{c.Old.Value, c.Old.ContentType, c.Old.CreateRev, c.Old.ModRev, c.Old.Version}
		}
		kr := kvRow{kv: c.New, had: c.Old != nil}
		kr.cols[0] = c.Key
		var ver any // new_version
		if c.New != nil {
			kr.cols[1], kr.cols[2], kr.cols[3], ver = c.New.Value, c.New.ContentType, c.New.CreateRev, c.New.Version
			kr.cols[4] = rev
			if c.New.ModRev != r.Rev {
				kr.cols[4] = c.New.ModRev
			}
		}
		p.add(mChange, rev, kr.cols[0], int64(c.Type), o[0], o[1], o[2], o[3], o[4], kr.cols[1], kr.cols[2], kr.cols[3], ver, sqlitedb.SecretCol(c.IsSecret()))
		p.putKV(c.Key, kr)
		b.cols = append(b.cols, kr.cols)
	}
	for i := range r.LayerChanges {
		lc := &r.LayerChanges[i]
		oldV, oldT := sqlitedb.LayerCols(lc.Old)
		var key, newV, newT any
		if i < len(r.Changes) {
			key, newV, newT = sameCols(&r.Changes[i], lc, &b.cols[i])
		}
		if key == nil {
			key = lc.Key
			newV, newT = sqlitedb.LayerCols(lc.New)
		}
		p.add(mLayerChange, rev, lc.Layer, key, oldV, oldT, newV, newT, sqlitedb.SecretCol(lc.IsSecret()))
		switch {
		case !b.implied || lc.Layer != record.StoreLayer || !sqlitedb.LeftOut(lc.New):
			p.putLayer(layerKey{lc.Layer, lc.Key}, lc.New)
		case lc.Old != nil && lc.Old.Secret:
			p.putLayer(layerKey{lc.Layer, lc.Key}, nil) // a secret's row gone, its key's value now implied
		}
	}
	clear(b.cols) // keep no value alive
	b.cols = b.cols[:0]
	b.last = r.Rev
	if b.journaled {
		b.frames = journal.AppendFrame(b.frames, &rec)
		b.records++
	}
}

// sameCols returns the boxed key, value and content_type of c's kv row,
// cols, for the layer change lc when lc's new value is c's (a store
// layer change beside its key's change): nils otherwise.
func sameCols(c *record.Change, lc *record.LayerChange, cols *[5]any) (key, value, typ any) {
	if c.Key != lc.Key || c.New == nil || lc.New == nil || lc.New.Tombstone ||
		lc.New.ContentType != c.New.ContentType || len(lc.New.Value) != len(c.New.Value) ||
		unsafe.SliceData(lc.New.Value) != unsafe.SliceData(c.New.Value) {
		return nil, nil, nil
	}
	return cols[0], cols[1], cols[2]
}

// makesLayered reports whether r writes a row that makes layer rows matter:
// one of a layer other than the store's, or a tombstone.
func makesLayered(r *record.Revision) bool {
	for i := range r.LayerChanges {
		if lc := &r.LayerChanges[i]; lc.New != nil && (lc.Layer != record.StoreLayer || lc.New.Tombstone) {
			return true
		}
	}
	return false
}

// writeOut ends b.implied: the store layer's rows, as the records before
// the one being appended leave them, are written out, those of the keys
// the batch changed from the pending kv rows, the others from the kv table
// (at the next flush, before anything else).
func (b *batch) writeOut() {
	p := &b.pend
	for _, k := range p.kvOrd {
		kv := p.kv[k].kv
		if v := sqlitedb.ImpliedStoreRow(kv); v != nil || kv == nil {
			p.putLayer(layerKey{record.StoreLayer, k}, v) // nil: the key was deleted
		}
	}
	p.writeOut = true
	b.implied, b.wroteOut = false, true
}

func (b *batch) Flush(ctx context.Context) error {
	return sqlitedb.StorageError(b.flush(ctx))
}

// flush writes the queued rows.
func (b *batch) flush(ctx context.Context) error {
	p := &b.pend
	if p.empty() {
		return nil
	}
	b.wrote = true
	if p.writeOut {
		if _, err := b.tx.ExecContext(ctx, qWriteOut, record.StoreLayer); err != nil {
			return fmt.Errorf("audit: write the store layer's rows out: %w", err)
		}
		p.writeOut = false
	}
	for _, k := range p.kvOrd {
		r := p.kv[k]
		if r.kv == nil {
			if _, err := b.stmt(ctx, qDelKV).ExecContext(ctx, k); err != nil {
				return fmt.Errorf("audit: delete key: %w", err)
			}
			continue
		}
		m := mKV
		if r.had {
			m = mKVUpdate
		}
		c := &r.cols
		p.add(m, c[0], c[1], c[2], c[3], c[4], r.kv.Version, sqlitedb.SecretCol(r.kv.Secret))
	}
	for _, k := range p.lkOrd {
		v := p.lkv[k]
		if v == nil {
			if _, err := b.stmt(ctx, qDelLayerKV).ExecContext(ctx, k.layer, k.key); err != nil {
				return fmt.Errorf("audit: write layer %s: %w", k.layer, err)
			}
			continue
		}
		val, ct := sqlitedb.LayerCols(v)
		p.add(mLayerKV, k.layer, k.key, val, ct, sqlitedb.SecretCol(v.Secret))
	}
	// Revisions first: changes and layer changes refer to them.
	for i := range multiStmts {
		if err := b.execMulti(ctx, i, p.args[i], p.rows[i]); err != nil {
			return fmt.Errorf("audit: write %s rows: %w", multiStmts[i].name, err)
		}
	}
	p.reset()
	return nil
}

// execMulti inserts n rows of statement i, whose arguments args holds,
// with the statements prepared on the driver's connection (see txn).
func (b *batch) execMulti(ctx context.Context, i int, args []any, n int) error {
	if n == 0 {
		return nil
	}
	return b.tx.conn.Raw(func(dc any) error {
		multi, err := b.l.driverStmts(ctx, dc, i)
		if err != nil {
			return err
		}
		cols := len(args) / n
		for n > 0 {
			k, size := len(multi)-1, maxMulti
			for size > n {
				k, size = k-1, size/2
			}
			if err := b.l.exec(ctx, multi[k], args[:size*cols]); err != nil {
				return err
			}
			args, n = args[size*cols:], n-size
		}
		return nil
	})
}

// txn is a transaction on a connection of the writer's pool that the log
// holds until the transaction ends, so that the multi-row inserts can run
// on the driver's connection directly (sql.Conn.Raw): database/sql would
// copy every argument of every statement into a new slice, 20% of the
// bytes a commit allocated.
type txn struct {
	*sql.Tx
	conn *sql.Conn
}

// beginTxn begins a transaction, which takes the write lock (the DSN's
// _txlock), with foreign keys unchecked until it ends: every row the log
// writes that refers to a revision (changes, layer_changes) is written by
// the Append that writes the revision, and an immediate foreign key check
// would have SQLite keep a statement journal for each multi-row insert
// (see multiStmts). The connection's other transactions check them.
func (l *Log) beginTxn(ctx context.Context) (*txn, error) {
	c, err := l.db.Conn(ctx)
	if err != nil {
		return nil, sqlitedb.StorageError(fmt.Errorf("audit: begin: %w", err))
	}
	if _, err := c.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		c.Close()
		return nil, sqlitedb.StorageError(fmt.Errorf("audit: begin: %w", err))
	}
	t := &txn{conn: c}
	if t.Tx, err = c.BeginTx(ctx, nil); err != nil {
		return nil, sqlitedb.StorageError(errors.Join(fmt.Errorf("audit: begin: %w", err), t.release()))
	}
	return t, nil
}

// Commit commits the transaction and gives the connection back.
func (t *txn) Commit() error {
	err := t.Tx.Commit()
	return errors.Join(err, t.release())
}

// Rollback rolls the transaction back and gives the connection back.
func (t *txn) Rollback() error {
	err := t.Tx.Rollback()
	return errors.Join(err, t.release())
}

// release checks foreign keys on the connection again and gives it back
// to the pool; a connection that cannot check them is given up instead.
func (t *txn) release() error {
	if _, err := t.conn.ExecContext(context.Background(), `PRAGMA foreign_keys = ON`); err != nil {
		t.conn.Raw(func(any) error { return driver.ErrBadConn }) // closes it: the pool drops it
		return fmt.Errorf("audit: check foreign keys again: %w", err)
	}
	return t.conn.Close()
}

// driverStmts returns the multi-row statements i prepared on dc, the
// driver's connection, preparing them all first if the pool's connection
// is not the one they were prepared on.
func (l *Log) driverStmts(ctx context.Context, dc any, i int) ([]driver.Stmt, error) {
	if dc == l.dc {
		return l.dmulti[i], nil
	}
	cp, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("audit: the SQLite driver's connection (%T) cannot prepare statements", dc)
	}
	var sts [nMulti][]driver.Stmt
	for j := range multiStmts {
		for n := 1; n <= maxMulti; n *= 2 {
			st, err := cp.PrepareContext(ctx, multiQuery(j, n))
			if err == nil {
				if _, ok := st.(driver.StmtExecContext); !ok {
					st.Close()
					err = fmt.Errorf("the SQLite driver's statement (%T) cannot run with a context", st)
				}
			}
			if err != nil {
				closeAll(sts)
				return nil, fmt.Errorf("audit: prepare: %w", err)
			}
			sts[j] = append(sts[j], st)
		}
	}
	l.dc, l.dmulti = dc, sts
	return l.dmulti[i], nil
}

// exec runs st, a statement of driverStmts, with args, which are
// driver.Values (Append and flush queue int64s, not ints).
func (l *Log) exec(ctx context.Context, st driver.Stmt, args []any) error {
	nv := l.nv[:0]
	for j, a := range args {
		nv = append(nv, driver.NamedValue{Ordinal: j + 1, Value: a})
	}
	_, err := st.(driver.StmtExecContext).ExecContext(ctx, nv)
	clear(nv) // keep no value alive
	l.nv = nv[:0]
	return err
}

// closeDriverStmts closes the statements of driverStmts, on their
// connection.
func (l *Log) closeDriverStmts() error {
	if l.dc == nil {
		return nil
	}
	c, err := l.db.Conn(context.Background())
	if err != nil {
		return fmt.Errorf("audit: close statements: %w", err)
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		if dc == l.dc {
			closeAll(l.dmulti)
		}
		l.dc, l.dmulti = nil, [nMulti][]driver.Stmt{}
		return nil
	})
}

func closeAll(sts [nMulti][]driver.Stmt) {
	for _, s := range sts {
		for _, st := range s {
			st.Close()
		}
	}
}

// Commit flushes the batch, moves the high-water mark to its newest
// revision (one row per batch, in its transaction) and commits: SQLite's
// COMMIT, fsync'd, is the durability. A journaled batch is durable once
// its records are written to the journal and synced; its rows stay in the
// log's open transaction, which Settle commits with the high-water mark
// of its newest batch.
func (b *batch) Commit(ctx context.Context) error {
	if b.journaled {
		return b.commitJournaled(ctx)
	}
	if err := b.flushAll(ctx); err != nil {
		b.Abort()
		return sqlitedb.StorageError(err)
	}
	if err := b.tx.Commit(); err != nil {
		return sqlitedb.StorageError(fmt.Errorf("audit: commit: %w", err))
	}
	if b.wroteOut {
		b.l.implied = false
	}
	if b.last > 0 && b.l.j != nil {
		b.l.settle(b.last) // the journal's next cycle starts after it
	}
	return nil
}

// flushAll writes the queued rows and the high-water mark.
func (b *batch) flushAll(ctx context.Context) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	if b.last > 0 {
		if _, err := b.stmt(ctx, qHighWater).ExecContext(ctx, b.last); err != nil {
			return fmt.Errorf("audit: record the high-water mark: %w", err)
		}
	}
	return nil
}

// commitJournaled writes the batch's records to the journal and syncs
// them while it writes its rows into the open transaction: the two
// overlap. Rows that cannot be written fail the batch, and its records
// are then taken back from the journal (journal.Undo) before the batch
// answers.
func (b *batch) commitJournaled(ctx context.Context) error {
	l := b.l
	if b.last == 0 { // nothing to make durable
		b.Abort()
		return nil
	}
	from := l.j.Used()
	err, jerr := b.writeAndSync(ctx)
	if jerr != nil {
		b.Abort()
		return sqlitedb.StorageError(jerr)
	}
	if err != nil {
		if uerr := l.j.Undo(from); uerr != nil {
			err = errors.Join(err, uerr)
		}
		b.Abort()
		return sqlitedb.StorageError(err)
	}
	if l.since.IsZero() {
		l.since = time.Now()
	}
	l.unsettled = b.last
	l.txOut = l.txOut || b.wroteOut
	return nil
}

// writeAndSync writes the batch's rows into the open transaction (the
// high-water mark moves at Settle) while its frames are written to the
// journal and synced, and returns the two errors. Which of the two runs
// on a goroutine of its own depends on the load, because Go starts that
// goroutine only when a processor is free:
//
//   - A batch of one record while recent batches held about one record
//     each (Log.load below 2): one caller at a time, a quiet machine. The
//     writer syncs the journal itself, so the sync starts at once, while
//     the rows are written on another processor. The other way round, the
//     journal's goroutine started only once the writer had written the
//     rows: 40 µs later, about a tenth of a lone writer's latency
//     (BENCHMARKS.md, issue 17).
//   - Otherwise callers' goroutines keep the processors busy (a third of
//     the batches at 16 and 64 writers hold one record too, between
//     larger ones). The writer writes the rows and the journal goroutine
//     waits for a processor; a writer that blocked in fdatasync instead
//     would, when it returned, queue for one behind the callers
//     (measured: no better at 64 writers, worse at 16).
func (b *batch) writeAndSync(ctx context.Context) (flushErr, syncErr error) {
	l := b.l
	rows := func() error { return b.flush(ctx) }
	sync := func() error { return l.j.Write(b.frames) }
	l.load += (float64(b.records) - l.load) / 8
	if b.records == 1 && l.load < 2 {
		flushErr, syncErr = overlap(rows, sync)
	} else {
		syncErr, flushErr = overlap(sync, rows)
	}
	return flushErr, syncErr
}

// overlap runs other on a goroutine of its own while it runs here on the
// caller's, and returns their errors once both are done.
func overlap(other, here func() error) (otherErr, hereErr error) {
	done := make(chan error, 1)
	go func() { done <- other() }()
	hereErr = here()
	return <-done, hereErr
}

func (b *batch) Abort() {
	if !b.journaled {
		b.tx.Rollback()
		return
	}
	// Rows of the batch in the open transaction: give it up, and apply
	// the batches before it again from the journal at the next Begin. A
	// transaction that holds no batch yet is ended, so that the
	// connection is free.
	if b.wrote || b.l.since.IsZero() {
		b.l.lose()
	}
}

type layerKey struct{ layer, key string }

// pending is what the batch has staged and not yet flushed.
type pending struct {
	args  [nMulti][]any // the rows' arguments, flat, per statement
	rows  [nMulti]int
	kv    map[string]kvRow
	kvOrd []string
	lkv   map[layerKey]*record.LayerValue // sealed; nil: delete
	lkOrd []layerKey
	// writeOut: write the store layer rows that kv implies out first
	// (batch.writeOut).
	writeOut bool
}

func (p *pending) reset() {
	for i := range p.args {
		clear(p.args[i])
		p.args[i], p.rows[i] = p.args[i][:0], 0
	}
	clear(p.kv)
	clear(p.lkv)
	p.kvOrd, p.lkOrd = p.kvOrd[:0], p.lkOrd[:0]
	p.writeOut = false
}

func (p *pending) empty() bool {
	return p.rows == [nMulti]int{} && len(p.kvOrd) == 0 && len(p.lkOrd) == 0 && !p.writeOut
}

func (p *pending) add(i int, args ...any) {
	p.args[i] = append(p.args[i], args...)
	p.rows[i]++
}

// kvRow is a key's kv row that a batch queues.
type kvRow struct {
	kv *record.KeyValue // sealed; nil: delete the row
	// had: the key had a row before the batch's first change of it (its
	// old value), so the row is updated, not inserted.
	had bool
	// cols are the row's key, value, content_type, create_rev and
	// mod_rev as driver values, boxed once for the change's row and this
	// one (a box is an allocation).
	cols [5]any
}

// putKV queues key's kv row r.
func (p *pending) putKV(key string, r kvRow) {
	if old, ok := p.kv[key]; !ok {
		p.kvOrd = append(p.kvOrd, key)
	} else {
		r.had = old.had
	}
	p.kv[key] = r
}

func (p *pending) putLayer(k layerKey, v *record.LayerValue) {
	if _, ok := p.lkv[k]; !ok {
		p.lkOrd = append(p.lkOrd, k)
	}
	p.lkv[k] = v
}
