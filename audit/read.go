package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/keyspace"
)

// readTx runs fn in a read transaction, which sees one consistent snapshot,
// and passes it the revision of that snapshot.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx, rev int64) error) error {
	return s.readTxH(ctx, func(tx *sql.Tx, rev, _ int64) error { return fn(tx, rev) })
}

// readTxH is readTx that also passes the history horizon of the snapshot
// (see Horizon).
func (s *Store) readTxH(ctx context.Context, fn func(tx *sql.Tx, rev, horizon int64) error) error {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
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
		return 0, fmt.Errorf("%w: revision %d (revisions start at 1)", ErrRevisionGone, rev)
	case rev > current:
		return 0, fmt.Errorf("%w: revision %d (current revision is %d)", ErrFutureRevision, rev, current)
	case rev < horizon:
		return 0, goneBelow(rev, horizon)
	}
	return rev, nil
}

// Get returns key's current value, or its value as of AtRev(rev). The
// current value comes from memory; callers must not modify its Value.
// A missing key is ErrNotFound; an invalid key wraps keyspace.ErrInvalidKey.
func (s *Store) Get(ctx context.Context, key string, opts ...ReadOption) (KeyValue, error) {
	if err := keyspace.Validate(key); err != nil {
		return KeyValue{}, err
	}
	var ro readOptions
	for _, o := range opts {
		o(&ro)
	}
	if ro.rev == 0 {
		s.currentMu.RLock()
		kv := s.current[key]
		s.currentMu.RUnlock()
		if kv == nil {
			return KeyValue{}, fmt.Errorf("%w: %q", ErrNotFound, key)
		}
		return *kv, nil
	}
	var out KeyValue
	err := s.readTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		rev, err := checkRev(ro.rev, current, horizon)
		if err != nil {
			return err
		}
		kv, err := stateAt(ctx, tx, key, rev)
		if err != nil {
			return err
		}
		if kv == nil {
			return fmt.Errorf("%w: %q at revision %d", ErrNotFound, key, rev)
		}
		if err := s.keys.RevealKV(kv); err != nil {
			return err
		}
		out = *kv
		return nil
	})
	return out, err
}

// stateAt returns key as of rev, or nil if it did not exist then, as
// stored (a secret's value sealed). rev must not be below the horizon.
func stateAt(ctx context.Context, q sqlitedb.Querier, key string, rev int64) (*KeyValue, error) {
	var op int
	kv := &KeyValue{Key: key}
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
	if OpType(op) == OpDelete {
		return nil, nil
	}
	if val == nil {
		val = []byte{}
	}
	kv.Value, kv.ContentType, kv.CreateRev, kv.Version = val, ct.String, createRev.Int64, version.Int64
	return kv, nil
}

// rangeCond returns the SQL condition and arguments that select the keys of
// a canonical prefix from column col.
func rangeCond(col, prefix string) (string, []any) {
	if prefix == "" {
		return "1", nil
	}
	return col + " >= ? AND " + col + " < ?", []any{prefix, keyspace.PrefixEnd(prefix)}
}

// scopeCond returns the SQL condition selecting a scope's keys from col.
func scopeCond(col string, sc Scope) (string, []any, error) {
	switch {
	case sc.Key != "" && sc.Prefix != "":
		return "", nil, fmt.Errorf("%w: give a key or a prefix, not both", ErrBadRequest)
	case sc.Key != "":
		if err := keyspace.Validate(sc.Key); err != nil {
			return "", nil, err
		}
		return col + " = ?", []any{sc.Key}, nil
	}
	p, err := keyspace.Prefix(sc.Prefix)
	if err != nil {
		return "", nil, err
	}
	c, args := rangeCond(col, p)
	return c, args, nil
}

// List returns the keys under prefix (see keyspace.Prefix; "" is every
// key), sorted, and the revision they were read at.
func (s *Store) List(ctx context.Context, prefix string, opts ...ReadOption) ([]KeyValue, int64, error) {
	p, err := keyspace.Prefix(prefix)
	if err != nil {
		return nil, 0, err
	}
	var ro readOptions
	for _, o := range opts {
		o(&ro)
	}
	var kvs []KeyValue
	var at int64
	err = s.readTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		rev, err := checkRev(ro.rev, current, horizon)
		if err != nil {
			return err
		}
		at = rev
		if ro.rev == 0 {
			kvs, err = listCurrent(ctx, tx, Scope{Prefix: p})
		} else {
			kvs, err = listAt(ctx, tx, Scope{Prefix: p}, rev, horizon > 0)
		}
		if err != nil {
			return err
		}
		return s.keys.RevealKVs(kvs)
	})
	if err != nil {
		return nil, 0, err
	}
	return kvs, at, nil
}

func listCurrent(ctx context.Context, q sqlitedb.Querier, sc Scope) ([]KeyValue, error) {
	cond, args, err := scopeCond("key", sc)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT key, value, content_type, create_rev, mod_rev, version, secret FROM kv WHERE `+cond+` ORDER BY key`, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	var kvs []KeyValue
	for rows.Next() {
		var kv KeyValue
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
func listAt(ctx context.Context, q sqlitedb.Querier, sc Scope, rev int64, withBase bool) ([]KeyValue, error) {
	cond, args, err := scopeCond("key", sc)
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
	var kvs []KeyValue
	for rows.Next() {
		var kv KeyValue
		var op int
		var ct sql.NullString
		var createRev, version sql.NullInt64
		if err := rows.Scan(&kv.Key, &op, &kv.Value, &ct, &createRev, &kv.ModRev, &version, &kv.Secret); err != nil {
			return nil, fmt.Errorf("audit: list at %d: %w", rev, err)
		}
		if OpType(op) == OpDelete {
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
func (s *Store) Revision(ctx context.Context, rev int64) (Revision, error) {
	var out Revision
	err := s.readTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		if rev < 1 {
			return fmt.Errorf("%w: revision %d (revisions start at 1)", ErrRevisionGone, rev)
		}
		if rev > current {
			return fmt.Errorf("%w: revision %d (current revision is %d)", ErrFutureRevision, rev, current)
		}
		if rev < horizon {
			return goneBelow(rev, horizon)
		}
		revs, err := loadRevisions(ctx, tx, s.keys, []int64{rev}, "1", nil)
		if err != nil {
			return err
		}
		if len(revs) == 0 {
			return fmt.Errorf("%w: revision %d is no longer retained", ErrRevisionGone, rev)
		}
		if err := loadLayerChanges(ctx, tx, s.keys, revs); err != nil {
			return err
		}
		out, err = s.keys.WithholdRevision(revs[0])
		return err
	})
	return out, err
}

// loadRevisions loads the given revisions (newest first, as given) with
// their changes that match the condition cond on column c.key, secrets
// decrypted with k.
func loadRevisions(ctx context.Context, q sqlitedb.Querier, k *keyring.Keyring, revs []int64, cond string, args []any) ([]Revision, error) {
	if len(revs) == 0 {
		return nil, nil
	}
	in := "?" + strings.Repeat(",?", len(revs)-1)
	revArgs := make([]any, len(revs))
	for i, r := range revs {
		revArgs[i] = r
	}
	byRev := make(map[int64]*Revision, len(revs))
	out := make([]Revision, 0, len(revs))
	rows, err := q.QueryContext(ctx, `SELECT rev, ts, actor, reason, origin, rollback_to, num_changes
		FROM revisions WHERE rev IN (`+in+`) ORDER BY rev DESC`, revArgs...)
	if err != nil {
		return nil, fmt.Errorf("audit: load revisions: %w", err)
	}
	for rows.Next() {
		var r Revision
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
		var c Change
		var op int
		var oldVal, newVal []byte
		var oldType, newType sql.NullString
		var oldCreate, oldMod, oldVer, newCreate, newVer sql.NullInt64
		var secret bool
		if err := rows.Scan(&rev, &c.Key, &op, &oldVal, &oldType, &oldCreate, &oldMod, &oldVer,
			&newVal, &newType, &newCreate, &newVer, &secret); err != nil {
			return nil, fmt.Errorf("audit: load changes: %w", err)
		}
		c.Type = OpType(op)
		if oldType.Valid {
			if oldVal == nil {
				oldVal = []byte{}
			}
			c.Old = &KeyValue{Key: c.Key, Value: oldVal, ContentType: oldType.String,
				CreateRev: oldCreate.Int64, ModRev: oldMod.Int64, Version: oldVer.Int64, Secret: secret}
			if err := k.RevealKV(c.Old); err != nil {
				return nil, err
			}
		}
		if newType.Valid {
			if newVal == nil {
				newVal = []byte{}
			}
			c.New = &KeyValue{Key: c.Key, Value: newVal, ContentType: newType.String,
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
// horizon (HistoryPage.Horizon says so), and a cursor at or below the
// horizon is ErrRevisionGone.
func (s *Store) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	limit := q.Limit
	switch {
	case limit < 0:
		return HistoryPage{}, fmt.Errorf("%w: limit must not be negative", ErrBadRequest)
	case limit == 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	if q.Before < 0 {
		return HistoryPage{}, fmt.Errorf("%w: cursor must not be negative", ErrBadRequest)
	}
	cond, args, err := scopeCond("key", q.Scope)
	if err != nil {
		return HistoryPage{}, err
	}
	var page HistoryPage
	err = s.readTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		page.Horizon = horizon
		if q.Before != 0 && q.Before <= horizon {
			return goneBelow(q.Before-1, horizon)
		}
		before := q.Before
		if before == 0 || before > current+1 {
			before = current + 1
		}
		var query string
		var qargs []any
		switch {
		case q.Key == "" && q.Prefix == "" || cond == "1":
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
			var r int64
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return fmt.Errorf("audit: history: %w", err)
			}
			revs = append(revs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("audit: history: %w", err)
		}
		if len(revs) > limit {
			revs = revs[:limit]
			page.Next = revs[limit-1]
		}
		page.Revisions, err = loadRevisions(ctx, tx, s.keys, revs, cond, args)
		if err != nil {
			return err
		}
		for i := range page.Revisions {
			if page.Revisions[i], err = s.keys.WithholdRevision(page.Revisions[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return page, err
}

// Diff returns how the scope changed from revision from to revision to (0:
// the current revision), one Change per key that differs, sorted by key.
// from may be 0, the empty state before the first revision. from > to is
// ErrBadRange. A revision below the history horizon (from 0 included, once
// a compaction removed anything) is ErrRevisionGone.
func (s *Store) Diff(ctx context.Context, scope Scope, from, to int64) ([]Change, error) {
	cond, args, err := scopeCond("key", scope)
	if err != nil {
		return nil, err
	}
	var out []Change
	err = s.readTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		if to == 0 {
			to = current
		}
		if from < 0 || to < 0 {
			return fmt.Errorf("%w: revisions start at 1", ErrRevisionGone)
		}
		if from > to {
			return fmt.Errorf("%w: from revision %d is after to revision %d", ErrBadRange, from, to)
		}
		if to > current {
			return fmt.Errorf("%w: revision %d (current revision is %d)", ErrFutureRevision, to, current)
		}
		if from < horizon {
			return goneBelow(from, horizon)
		}
		out, err = diffRange(ctx, tx, s.keys, cond, args, from, to)
		if err != nil {
			return err
		}
		out, err = s.keys.WithholdChanges(out)
		return err
	})
	return out, err
}

// diffRange returns the changes from revision from to revision to of the
// keys that match cond, with their values decrypted.
func diffRange(ctx context.Context, q sqlitedb.Querier, k *keyring.Keyring, cond string, args []any, from, to int64) ([]Change, error) {
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
	var out []Change
	for _, key := range keys {
		a, err := stateAt(ctx, q, key, from)
		if err != nil {
			return nil, err
		}
		b, err := stateAt(ctx, q, key, to)
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
func changeBetween(key string, a, b *KeyValue) (Change, bool) {
	switch {
	case a == nil && b == nil:
		return Change{}, false
	case b == nil:
		return Change{Key: key, Type: OpDelete, Old: a}, true
	case a != nil && a.ContentType == b.ContentType && string(a.Value) == string(b.Value) && a.Secret == b.Secret:
		return Change{}, false
	}
	return Change{Key: key, Type: OpPut, Old: a, New: b}, true
}

// RevisionsAfter returns up to limit revisions newer than since, oldest
// first, with all their changes: what a watcher that has applied since must
// apply next. since below the history horizon is ErrRevisionGone: the
// watcher must start again from a snapshot.
func (s *Store) RevisionsAfter(ctx context.Context, since int64, limit int) ([]Revision, error) {
	if since < 0 {
		return nil, fmt.Errorf("%w: revision %d (revisions start at 1)", ErrRevisionGone, since)
	}
	if limit <= 0 {
		limit = 1000
	}
	var out []Revision
	err := s.readTxH(ctx, func(tx *sql.Tx, current, horizon int64) error {
		if since > current {
			return fmt.Errorf("%w: revision %d (current revision is %d)", ErrFutureRevision, since, current)
		}
		if since < horizon {
			return goneBelow(since, horizon)
		}
		rows, err := tx.QueryContext(ctx, `SELECT rev FROM revisions WHERE rev > ? ORDER BY rev LIMIT ?`, since, limit)
		if err != nil {
			return fmt.Errorf("audit: revisions after %d: %w", since, err)
		}
		var revs []int64
		for rows.Next() {
			var r int64
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return fmt.Errorf("audit: revisions after %d: %w", since, err)
			}
			revs = append(revs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("audit: revisions after %d: %w", since, err)
		}
		out, err = loadRevisions(ctx, tx, s.keys, revs, "1", nil)
		// loadRevisions answers newest first.
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
		return err
	})
	return out, err
}
