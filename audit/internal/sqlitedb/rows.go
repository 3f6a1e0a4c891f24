package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/configd/configd/audit/record"
)

// How rows of the tables read into records, and records into columns. A
// value column holds a secret's value sealed (see package secrets) when
// the row's secret column is 1; these functions move it as it is.

// ScanKV reads a kv row (value, content_type, create_rev, mod_rev,
// version, secret) of key, as stored; a missing row is record.ErrNotFound.
func ScanKV(key string, row *sql.Row) (*record.KeyValue, error) {
	kv := &record.KeyValue{Key: key}
	err := row.Scan(&kv.Value, &kv.ContentType, &kv.CreateRev, &kv.ModRev, &kv.Version, &kv.Secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, record.NotFound(key)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read key %q: %w", key, err)
	}
	if kv.Value == nil {
		kv.Value = []byte{}
	}
	return kv, nil
}

// LayerRowsQuery is the query of a key's rows in the layers of order: one
// lookup per layer in layer_kv's primary key (layer, key), which is why
// layer_kv needs no index by key (migration 0008), an index that cost every
// write a page. LayerRowsArgs are its arguments.
func LayerRowsQuery(order []string) string {
	return `SELECT layer, value, content_type, secret FROM layer_kv WHERE layer IN (?` +
		strings.Repeat(`,?`, len(order)-1) + `) AND key = ?`
}

// LayerRowsArgs are the arguments of LayerRowsQuery(order) for key.
func LayerRowsArgs(order []string, key string) []any {
	args := make([]any, 0, len(order)+1)
	for _, l := range order {
		args = append(args, l)
	}
	return append(args, key)
}

// ScanLayerRows reads rows of (name, value, content_type, secret) of
// layer_kv, as stored, by name (the layer, or the key), and closes them.
// LayerRowsQuery's rows are of a key's layers.
func ScanLayerRows(rows *sql.Rows) (map[string]*record.LayerValue, error) {
	defer rows.Close()
	out := map[string]*record.LayerValue{}
	for rows.Next() {
		var name, ct string
		var v []byte
		var secret bool
		if err := rows.Scan(&name, &v, &ct, &secret); err != nil {
			return nil, err
		}
		if v == nil {
			v = []byte{}
		}
		out[name] = &record.LayerValue{Value: v, ContentType: ct, Tombstone: ct == "", Secret: secret}
	}
	return out, rows.Err()
}

// LayerCols are the value and type columns of a layer value: NULL and
// NULL for none, NULL and "" for a tombstone.
func LayerCols(v *record.LayerValue) (any, any) {
	switch {
	case v == nil:
		return nil, nil
	case v.Tombstone:
		return nil, ""
	}
	return v.Value, v.ContentType
}

// LayerValueOf is the layer value of the value and type columns v and t
// (see LayerCols) of a row whose secret column is secret.
func LayerValueOf(v []byte, t sql.NullString, secret bool) *record.LayerValue {
	if !t.Valid {
		return nil
	}
	if t.String == "" {
		return &record.LayerValue{Tombstone: true, Secret: secret}
	}
	if v == nil {
		v = []byte{}
	}
	return &record.LayerValue{Value: v, ContentType: t.String, Secret: secret}
}

// SecretCol is a secret column's value, a driver.Value (int64): the
// commit log hands its rows' arguments to the driver as they are.
func SecretCol(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Layered reports whether the database holds rows that make the layer
// rows of a key more than its kv row: rows of one of layers other than the
// store layer, a tombstone, or a store layer that does not match kv.
// Without them, a key's store layer row is its kv row, and a writer needs
// no SELECT of the layer rows. A database that leaves the store layer rows
// implied (Implied) is not layered for lacking them.
func Layered(ctx context.Context, db Querier, layers []string) (bool, error) {
	var n int
	for _, l := range layers {
		if l == record.StoreLayer {
			continue
		}
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM layer_kv WHERE layer = ? LIMIT 1)`, l).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("audit: read layers: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
	// A tombstone, a store row that is not its kv row's mirror, or a kv
	// row without its store row (unless implied: a non-secret one).
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM layer_kv WHERE layer = 'store' AND content_type = '') +
		(SELECT count(*) FROM layer_kv l WHERE l.layer = 'store' AND NOT EXISTS (SELECT 1 FROM kv WHERE kv.key = l.key
			AND kv.content_type = l.content_type AND kv.secret = l.secret
			AND (kv.secret = 1 OR coalesce(l.value, x'') = coalesce(kv.value, x'')))) +
		(SELECT count(*) FROM kv WHERE (kv.secret = 1 OR NOT `+impliedDB+`)
			AND NOT EXISTS (SELECT 1 FROM layer_kv l WHERE l.layer = 'store' AND l.key = kv.key))`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("audit: read layers: %w", err)
	}
	return n > 0, nil
}

// impliedDB is true of a database that leaves the store layer's non-secret
// rows implied by kv (Implied).
const impliedDB = `NOT EXISTS (SELECT 1 FROM layer_kv WHERE NOT (layer = 'store' AND secret = 1 AND content_type <> ''))`

// Implied reports whether the database leaves the store layer's non-secret
// rows out of layer_kv, implied by kv: it holds no row there but a
// secret's store layer row (whose ciphertext is sealed for layer_kv, and
// so is never left out). Such a database has no source's row and no
// tombstone; each of its non-secret kv rows stands for its key's store
// layer row, with the same value and type (ImpliedStoreRows). A new
// database is one; the first row of another layer, or a tombstone, makes
// the commit log write the store layer's rows out in its batch
// (sqlitelog), and a database with them written out keeps them.
func Implied(ctx context.Context, db Querier) (bool, error) {
	var implied bool
	if err := db.QueryRowContext(ctx, `SELECT `+impliedDB).Scan(&implied); err != nil {
		return false, fmt.Errorf("audit: read layers: %w", err)
	}
	return implied, nil
}

// ImpliedStoreRows is the query of the store layer rows that a database
// leaves implied by kv (Implied): key, value, content_type; none unless it
// is such a database.
const ImpliedStoreRows = `SELECT key, value, content_type FROM kv WHERE secret = 0 AND ` + impliedDB

// ImpliedStoreRow is the store layer row that the kv row kv stands for in
// a database that leaves them implied (Implied): its value and type; nil
// for none, or for a secret's (whose row is always written).
func ImpliedStoreRow(kv *record.KeyValue) *record.LayerValue {
	if kv == nil || kv.Secret {
		return nil
	}
	return &record.LayerValue{Value: kv.Value, ContentType: kv.ContentType}
}

// LeftOut reports whether v is a store layer row that a database leaving
// them implied does not hold: a value, not a secret's.
func LeftOut(v *record.LayerValue) bool {
	return v != nil && !v.Tombstone && !v.Secret
}

// StackQuery is LayerRowsQuery(order) with key's store layer row when the
// database leaves it implied by kv (Implied); StackArgs are its arguments.
func StackQuery(order []string) string {
	return LayerRowsQuery(order) + ` UNION ALL SELECT 'store', value, content_type, 0 FROM kv
		WHERE key = ? AND secret = 0 AND ` + impliedDB
}

// StackArgs are the arguments of StackQuery(order) for key.
func StackArgs(order []string, key string) []any {
	return append(LayerRowsArgs(order, key), key)
}
