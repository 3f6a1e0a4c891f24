// Package read is the read path of the audited store: the current value
// of a key from memory (Current, which the commit path advances once a
// revision is durable), and, from the database in one consistent snapshot
// each, values as of a revision, lists, revisions, history, diffs, the
// revisions after one (what a watcher applies next), a key's layer stack,
// and the plan of a rollback. It never writes.
package read

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/keyspace"
)

// ReadTx runs fn in a read transaction, which sees one consistent snapshot,
// and passes it the revision of that snapshot.
func (r *Reader) ReadTx(ctx context.Context, fn func(tx *sql.Tx, rev int64) error) error {
	return r.ReadTxH(ctx, func(tx *sql.Tx, rev, _ int64) error { return fn(tx, rev) })
}

// ReadTxH is ReadTx that also passes the history horizon of the snapshot
// (see package retention).
func (r *Reader) ReadTxH(ctx context.Context, fn func(tx *sql.Tx, rev, horizon int64) error) error {
	if err := r.AwaitDB(ctx); err != nil {
		return err
	}
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("audit: begin read: %w", err)
	}
	defer tx.Rollback()
	var rev, horizon sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT max(rev) FROM revisions),
		(SELECT horizon FROM compactions ORDER BY id DESC LIMIT 1)`).Scan(&rev, &horizon); err != nil {
		return fmt.Errorf("audit: read revision: %w", err)
	}
	return fn(tx, rev.Int64, horizon.Int64)
}

// checkRev validates a revision to read at: 0 is the current one.
func checkRev(rev, current, horizon int64) (int64, error) {
	switch {
	case rev == 0:
		return current, nil
	case rev < 0:
		return 0, fmt.Errorf("%w: revision %d (revisions start at 1)", record.ErrRevisionGone, rev)
	case rev > current:
		return 0, fmt.Errorf("%w: revision %d (current revision is %d)", record.ErrFutureRevision, rev, current)
	case rev < horizon:
		return 0, GoneBelow(rev, horizon)
	}
	return rev, nil
}

// Get returns key's current value (at 0), or its value as of revision at.
// The current value comes from memory; callers must not modify its Value.
// A missing key is record.ErrNotFound; an invalid key wraps keyspace.ErrInvalidKey.
func (r *Reader) Get(ctx context.Context, key string, at int64) (record.KeyValue, error) {
	if err := keyspace.Validate(key); err != nil {
		return record.KeyValue{}, err
	}
	if at == 0 {
		kv := r.cur.Get(key)
		if kv == nil {
			return record.KeyValue{}, record.NotFound(key)
		}
		return *kv, nil
	}
	var out record.KeyValue
	err := r.ReadTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		rev, err := checkRev(at, current, horizon)
		if err != nil {
			return err
		}
		kv, err := StateAt(ctx, tx, key, rev)
		if err != nil {
			return err
		}
		if kv == nil {
			return fmt.Errorf("%w: %q at revision %d", record.ErrNotFound, key, rev)
		}
		if err := r.keys.RevealKV(kv); err != nil {
			return err
		}
		out = *kv
		return nil
	})
	return out, err
}

// StateAt returns key as of rev, or nil if it did not exist then, as
// stored (a secret's value sealed). rev must not be below the horizon.
func StateAt(ctx context.Context, q sqlitedb.Querier, key string, rev int64) (*record.KeyValue, error) {
	var op int
	kv := &record.KeyValue{Key: key}
	var val []byte
	var ct sql.NullString
	var createRev, version sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT op, new_value, new_type, new_create_rev, rev, new_version, secret
		FROM changes WHERE key = ? AND rev <= ? ORDER BY rev DESC LIMIT 1`, key, rev).
		Scan(&op, &val, &ct, &createRev, &kv.ModRev, &version, &kv.Secret)
	if errors.Is(err, sql.ErrNoRows) {
		// No retained change: the key's value before the horizon, if any.
		err = q.QueryRowContext(ctx, `SELECT 1, value, content_type, create_rev, mod_rev, version, secret
			FROM history_base WHERE key = ? AND mod_rev <= ?`, key, rev).
			Scan(&op, &val, &ct, &createRev, &kv.ModRev, &version, &kv.Secret)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read %q at revision %d: %w", key, rev, err)
	}
	if record.OpType(op) == record.OpDelete {
		return nil, nil
	}
	if val == nil {
		val = []byte{}
	}
	kv.Value, kv.ContentType, kv.CreateRev, kv.Version = val, ct.String, createRev.Int64, version.Int64
	return kv, nil
}

// rangeCond returns the SQL condition and arguments that select the keys of
// a canonical prefix from column col: the whole keyspace ("") holds every
// key but configd's own (keyspace.Own).
func rangeCond(col, prefix string) (string, []any) {
	if prefix == "" {
		return "substr(" + col + ", 1, 1) <> '/' AND substr(" + col + ", 1, ?) <> ?", []any{len(keyspace.RequestsNS), keyspace.RequestsNS}
	}
	return col + " >= ? AND " + col + " < ?", []any{prefix, keyspace.PrefixEnd(prefix)}
}

// ScopeCond returns the SQL condition selecting a scope's keys from col.
func ScopeCond(col string, sc record.Scope) (string, []any, error) {
	sc, err := sc.Canonical()
	if err != nil {
		return "", nil, err
	}
	if sc.Key != "" {
		return col + " = ?", []any{sc.Key}, nil
	}
	c, args := rangeCond(col, sc.Prefix)
	return c, args, nil
}

// List returns the keys under prefix (see keyspace.Prefix; "" is every
// key) as of revision at (0: the current one), sorted, and the revision
// they were read at.
func (r *Reader) List(ctx context.Context, prefix string, at int64) ([]record.KeyValue, int64, error) {
	p, err := keyspace.Prefix(prefix)
	if err != nil {
		return nil, 0, err
	}
	var kvs []record.KeyValue
	var readAt int64
	err = r.ReadTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		rev, err := checkRev(at, current, horizon)
		if err != nil {
			return err
		}
		readAt = rev
		if at == 0 {
			kvs, err = listCurrent(ctx, tx, record.Scope{Prefix: p})
		} else {
			kvs, err = listAt(ctx, tx, record.Scope{Prefix: p}, rev, horizon > 0)
		}
		if err != nil {
			return err
		}
		return r.keys.RevealKVs(kvs)
	})
	if err != nil {
		return nil, 0, err
	}
	return kvs, readAt, nil
}

func listCurrent(ctx context.Context, q sqlitedb.Querier, sc record.Scope) ([]record.KeyValue, error) {
	cond, args, err := ScopeCond("key", sc)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT key, value, content_type, create_rev, mod_rev, version, secret FROM kv WHERE `+cond+` ORDER BY key`, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	var kvs []record.KeyValue
	for rows.Next() {
		var kv record.KeyValue
		if err := rows.Scan(&kv.Key, &kv.Value, &kv.ContentType, &kv.CreateRev, &kv.ModRev, &kv.Version, &kv.Secret); err != nil {
			return nil, fmt.Errorf("audit: list: %w", err)
		}
		if kv.Value == nil {
			kv.Value = []byte{}
		}
		kvs = append(kvs, kv)
	}
	return kvs, rows.Err()
}

// listAt returns the live keys of a scope as of rev (not below the
// horizon); withBase adds the values of keys unchanged since before the
// horizon (after a compaction).
func listAt(ctx context.Context, q sqlitedb.Querier, sc record.Scope, rev int64, withBase bool) ([]record.KeyValue, error) {
	cond, args, err := ScopeCond("key", sc)
	if err != nil {
		return nil, err
	}
	// SQLite returns the bare columns of the row that holds max(rev).
	from := `changes WHERE ` + cond + ` AND rev <= ?`
	qargs := append(append([]any{}, args...), rev)
	if withBase {
		from = `(SELECT key, op, new_value, new_type, new_create_rev, rev, new_version, secret FROM ` + from + `
			UNION ALL SELECT key, 1, value, content_type, create_rev, mod_rev, version, secret FROM history_base
			WHERE ` + cond + ` AND mod_rev <= ?)`
		qargs = append(append(qargs, args...), rev)
	}
	rows, err := q.QueryContext(ctx, `SELECT key, op, new_value, new_type, new_create_rev, max(rev), new_version, secret
		FROM `+from+` GROUP BY key ORDER BY key`, qargs...)
	if err != nil {
		return nil, fmt.Errorf("audit: list at %d: %w", rev, err)
	}
	defer rows.Close()
	var kvs []record.KeyValue
	for rows.Next() {
		var kv record.KeyValue
		var op int
		var ct sql.NullString
		var createRev, version sql.NullInt64
		if err := rows.Scan(&kv.Key, &op, &kv.Value, &ct, &createRev, &kv.ModRev, &version, &kv.Secret); err != nil {
			return nil, fmt.Errorf("audit: list at %d: %w", rev, err)
		}
		if record.OpType(op) == record.OpDelete {
			continue
		}
		if kv.Value == nil {
			kv.Value = []byte{}
		}
		kv.ContentType, kv.CreateRev, kv.Version = ct.String, createRev.Int64, version.Int64
		kvs = append(kvs, kv)
	}
	return kvs, rows.Err()
}

// Revision returns one revision with all its changes.
func (r *Reader) Revision(ctx context.Context, rev int64) (record.Revision, error) {
	var out record.Revision
	err := r.ReadTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		if rev < 1 {
			return fmt.Errorf("%w: revision %d (revisions start at 1)", record.ErrRevisionGone, rev)
		}
		if rev > current {
			return fmt.Errorf("%w: revision %d (current revision is %d)", record.ErrFutureRevision, rev, current)
		}
		if rev < horizon {
			return GoneBelow(rev, horizon)
		}
		revs, err := LoadRevisions(ctx, tx, r.keys, []int64{rev}, "1", nil)
		if err != nil {
			return err
		}
		if len(revs) == 0 {
			return fmt.Errorf("%w: revision %d is no longer retained", record.ErrRevisionGone, rev)
		}
		if err := LoadLayerChanges(ctx, tx, r.keys, revs); err != nil {
			return err
		}
		out, err = r.keys.WithholdRevision(revs[0])
		return err
	})
	return out, err
}

// LoadRevisions loads the given revisions (newest first, as given) with
// their changes that match the condition cond on column c.key, secrets
// decrypted with k.
func LoadRevisions(ctx context.Context, q sqlitedb.Querier, k *keyring.Keyring, revs []int64, cond string, args []any) ([]record.Revision, error) {
	if len(revs) == 0 {
		return nil, nil
	}
	in := "?" + strings.Repeat(",?", len(revs)-1)
	revArgs := make([]any, len(revs))
	for i, r := range revs {
		revArgs[i] = r
	}
	byRev := make(map[int64]*record.Revision, len(revs))
	out := make([]record.Revision, 0, len(revs))
	rows, err := q.QueryContext(ctx, `SELECT rev, ts, actor, reason, origin, rollback_to, num_changes
		FROM revisions WHERE rev IN (`+in+`) ORDER BY rev DESC`, revArgs...)
	if err != nil {
		return nil, fmt.Errorf("audit: load revisions: %w", err)
	}
	for rows.Next() {
		var r record.Revision
		var ts int64
		if err := rows.Scan(&r.Rev, &ts, &r.Actor, &r.Reason, &r.Origin, &r.RollbackTo, &r.NumChanges); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: load revisions: %w", err)
		}
		r.Time = time.Unix(0, ts).UTC()
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: load revisions: %w", err)
	}
	for i := range out {
		byRev[out[i].Rev] = &out[i]
	}
	rows, err = q.QueryContext(ctx, `SELECT rev, key, op, old_value, old_type, old_create_rev, old_mod_rev, old_version,
		new_value, new_type, new_create_rev, new_version, secret
		FROM changes WHERE rev IN (`+in+`) AND `+strings.ReplaceAll(cond, "key", "changes.key")+` ORDER BY rev DESC, key`,
		append(revArgs, args...)...)
	if err != nil {
		return nil, fmt.Errorf("audit: load changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rev int64
		var c record.Change
		var op int
		var oldVal, newVal []byte
		var oldType, newType sql.NullString
		var oldCreate, oldMod, oldVer, newCreate, newVer sql.NullInt64
		var secret bool
		if err := rows.Scan(&rev, &c.Key, &op, &oldVal, &oldType, &oldCreate, &oldMod, &oldVer,
			&newVal, &newType, &newCreate, &newVer, &secret); err != nil {
			return nil, fmt.Errorf("audit: load changes: %w", err)
		}
		c.Type = record.OpType(op)
		if oldType.Valid {
			if oldVal == nil {
				oldVal = []byte{}
			}
			c.Old = &record.KeyValue{Key: c.Key, Value: oldVal, ContentType: oldType.String,
				CreateRev: oldCreate.Int64, ModRev: oldMod.Int64, Version: oldVer.Int64, Secret: secret}
			if err := k.RevealKV(c.Old); err != nil {
				return nil, err
			}
		}
		if newType.Valid {
			if newVal == nil {
				newVal = []byte{}
			}
			c.New = &record.KeyValue{Key: c.Key, Value: newVal, ContentType: newType.String,
				CreateRev: newCreate.Int64, ModRev: rev, Version: newVer.Int64, Secret: secret}
			if err := k.RevealKV(c.New); err != nil {
				return nil, err
			}
		}
		if r := byRev[rev]; r != nil {
			r.Changes = append(r.Changes, c)
		}
	}
	return out, rows.Err()
}

// History returns revisions that touched the query's scope (and were made
// by its actor, if set), newest first, one page at a time. Each revision's
// Changes is limited to the scope. After a compaction, history ends at the
// horizon (record.HistoryPage.Horizon says so), and a cursor at or below the
// horizon is record.ErrRevisionGone.
func (r *Reader) History(ctx context.Context, q record.HistoryQuery) (record.HistoryPage, error) {
	cond, args, err := ScopeCond("key", q.Scope)
	if err != nil {
		return record.HistoryPage{}, err
	}
	if sc, _ := q.Scope.Canonical(); sc == (record.Scope{}) {
		// The whole history: every revision with all its changes, the
		// schemas' (docs/schemas.md) included.
		cond, args = "1", nil
	}
	return r.history(ctx, q, cond, args)
}

// SchemaHistory is History of the record of prefix's schema
// (keyspace.SchemaKey), which no Scope can name.
func (r *Reader) SchemaHistory(ctx context.Context, prefix string, q record.HistoryQuery) (record.HistoryPage, error) {
	q.Scope = record.Scope{Key: keyspace.SchemaKey(prefix)}
	return r.history(ctx, q, "key = ?", []any{q.Key})
}

// history is History of the keys that cond selects ("1": every revision).
func (r *Reader) history(ctx context.Context, q record.HistoryQuery, cond string, args []any) (record.HistoryPage, error) {
	limit := q.Limit
	switch {
	case limit < 0:
		return record.HistoryPage{}, fmt.Errorf("%w: limit must not be negative", record.ErrBadRequest)
	case limit == 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	if q.Before < 0 {
		return record.HistoryPage{}, fmt.Errorf("%w: cursor must not be negative", record.ErrBadRequest)
	}
	var page record.HistoryPage
	err := r.ReadTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		page.Horizon = horizon
		if q.Before != 0 && q.Before <= horizon {
			return GoneBelow(q.Before-1, horizon)
		}
		before := q.Before
		if before == 0 || before > current+1 {
			before = current + 1
		}
		var query string
		var qargs []any
		switch {
		case cond == "1":
			query = `SELECT rev FROM revisions WHERE rev < ?`
			qargs = []any{before}
			if q.Actor != "" {
				query += ` AND actor = ?`
				qargs = append(qargs, q.Actor)
			}
			query += ` ORDER BY rev DESC LIMIT ?`
		case q.Actor != "":
			query = `SELECT DISTINCT c.rev FROM changes c JOIN revisions r ON r.rev = c.rev
				WHERE ` + strings.ReplaceAll(cond, "key", "c.key") + ` AND c.rev < ? AND r.actor = ? ORDER BY c.rev DESC LIMIT ?`
			qargs = append(append(qargs, args...), before, q.Actor)
		default:
			query = `SELECT DISTINCT rev FROM changes WHERE ` + cond + ` AND rev < ? ORDER BY rev DESC LIMIT ?`
			qargs = append(append(qargs, args...), before)
		}
		qargs = append(qargs, limit+1)
		rows, err := tx.QueryContext(ctx, query, qargs...)
		if err != nil {
			return fmt.Errorf("audit: history: %w", err)
		}
		var revs []int64
		for rows.Next() {
			var rev int64
			if err := rows.Scan(&rev); err != nil {
				rows.Close()
				return fmt.Errorf("audit: history: %w", err)
			}
			revs = append(revs, rev)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("audit: history: %w", err)
		}
		if len(revs) > limit {
			revs = revs[:limit]
			page.Next = revs[limit-1]
		}
		page.Revisions, err = LoadRevisions(ctx, tx, r.keys, revs, cond, args)
		if err != nil {
			return err
		}
		for i := range page.Revisions {
			if page.Revisions[i], err = r.keys.WithholdRevision(page.Revisions[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return page, err
}

// Diff returns how the scope changed from revision from to revision to (0:
// the current revision), one record.Change per key that differs, sorted by key.
// from may be 0, the empty state before the first revision. from > to is
// record.ErrBadRange. A revision below the history horizon (from 0 included, once
// a compaction removed anything) is record.ErrRevisionGone.
func (r *Reader) Diff(ctx context.Context, scope record.Scope, from, to int64) ([]record.Change, error) {
	cond, args, err := ScopeCond("key", scope)
	if err != nil {
		return nil, err
	}
	var out []record.Change
	err = r.ReadTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		if to == 0 {
			to = current
		}
		if from < 0 || to < 0 {
			return fmt.Errorf("%w: revisions start at 1", record.ErrRevisionGone)
		}
		if from > to {
			return fmt.Errorf("%w: from revision %d is after to revision %d", record.ErrBadRange, from, to)
		}
		if to > current {
			return fmt.Errorf("%w: revision %d (current revision is %d)", record.ErrFutureRevision, to, current)
		}
		if from < horizon {
			return GoneBelow(from, horizon)
		}
		out, err = DiffRange(ctx, tx, r.keys, cond, args, from, to)
		if err != nil {
			return err
		}
		out, err = r.keys.WithholdChanges(out)
		return err
	})
	return out, err
}

// DiffRange returns the changes from revision from to revision to of the
// keys that match cond, with their values decrypted.
func DiffRange(ctx context.Context, q sqlitedb.Querier, k *keyring.Keyring, cond string, args []any, from, to int64) ([]record.Change, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT key FROM changes WHERE `+cond+` AND rev > ? AND rev <= ? ORDER BY key`,
		append(args, from, to)...)
	if err != nil {
		return nil, fmt.Errorf("audit: diff: %w", err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: diff: %w", err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: diff: %w", err)
	}
	var out []record.Change
	for _, key := range keys {
		a, err := StateAt(ctx, q, key, from)
		if err != nil {
			return nil, err
		}
		b, err := StateAt(ctx, q, key, to)
		if err != nil {
			return nil, err
		}
		if err := k.RevealKV(a); err != nil {
			return nil, err
		}
		if err := k.RevealKV(b); err != nil {
			return nil, err
		}
		if c, ok := changeBetween(key, a, b); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// changeBetween returns the change that turns a into b, and false when they
// hold the same value.
func changeBetween(key string, a, b *record.KeyValue) (record.Change, bool) {
	switch {
	case a == nil && b == nil:
		return record.Change{}, false
	case b == nil:
		return record.Change{Key: key, Type: record.OpDelete, Old: a}, true
	case a != nil && a.ContentType == b.ContentType && string(a.Value) == string(b.Value) && a.Secret == b.Secret:
		return record.Change{}, false
	}
	return record.Change{Key: key, Type: record.OpPut, Old: a, New: b}, true
}

// RevisionsAfter returns up to limit revisions newer than since, oldest
// first, with all their changes: what a watcher that has applied since must
// apply next. since below the history horizon is record.ErrRevisionGone: the
// watcher must start again from a snapshot.
func (r *Reader) RevisionsAfter(ctx context.Context, since int64, limit int) ([]record.Revision, error) {
	if since < 0 {
		return nil, fmt.Errorf("%w: revision %d (revisions start at 1)", record.ErrRevisionGone, since)
	}
	if limit <= 0 {
		limit = 1000
	}
	var out []record.Revision
	err := r.ReadTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		if since > current {
			return fmt.Errorf("%w: revision %d (current revision is %d)", record.ErrFutureRevision, since, current)
		}
		if since < horizon {
			return GoneBelow(since, horizon)
		}
		rows, err := tx.QueryContext(ctx, `SELECT rev FROM revisions WHERE rev > ? ORDER BY rev LIMIT ?`, since, limit)
		if err != nil {
			return fmt.Errorf("audit: revisions after %d: %w", since, err)
		}
		var revs []int64
		for rows.Next() {
			var rev int64
			if err := rows.Scan(&rev); err != nil {
				rows.Close()
				return fmt.Errorf("audit: revisions after %d: %w", since, err)
			}
			revs = append(revs, rev)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("audit: revisions after %d: %w", since, err)
		}
		out, err = LoadRevisions(ctx, tx, r.keys, revs, "1", nil)
		// loadRevisions answers newest first.
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		return err
	})
	return out, err
}
