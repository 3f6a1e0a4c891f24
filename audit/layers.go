package audit

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/keyspace"
)

// WithLayers sets the layers, lowest precedence first; it must name
// StoreLayer once. The default is just the store layer. The effective value
// of a key is the one of the highest layer that defines it; a tombstone
// there means the key does not exist.
func WithLayers(order ...string) Option {
	return func(o *options) { o.layers = append([]string(nil), order...) }
}

func checkLayers(order []string) (map[string]int, error) {
	rank := make(map[string]int, len(order))
	for i, l := range order {
		if l == "" {
			return nil, fmt.Errorf("audit: layer %d has no name", i)
		}
		if _, dup := rank[l]; dup {
			return nil, fmt.Errorf("audit: layer %q appears twice", l)
		}
		rank[l] = i
	}
	if _, ok := rank[StoreLayer]; !ok {
		return nil, fmt.Errorf("audit: the layers %v do not include the %q layer", order, StoreLayer)
	}
	return rank, nil
}

// Layers returns the layers, lowest precedence first.
func (s *Store) Layers() []string { return append([]string(nil), s.opts.layers...) }

// SQL of the layer tables, prepared once by the writer.
const qDelLayerKV = `DELETE FROM layer_kv WHERE layer = ? AND key = ?`

// layerRows returns every configured layer's raw value of key, decrypted.
func (s *Store) layerRows(ctx context.Context, q sqlitedb.Querier, key string) (map[string]*LayerValue, error) {
	rows, err := q.QueryContext(ctx, s.qLayerRows, sqlitedb.LayerRowsArgs(s.opts.layers, key)...)
	if err != nil {
		return nil, fmt.Errorf("audit: read layers of %q: %w", key, err)
	}
	return s.scanLayerRows(key, rows)
}

// layerRows is Store.layerRows inside the writer's transaction, with the
// prepared statement.
func (w *writer) layerRows(ctx context.Context, tx *sql.Tx, key string) (map[string]*LayerValue, error) {
	rows, err := w.tx(ctx, tx, w.s.qLayerRows).QueryContext(ctx, sqlitedb.LayerRowsArgs(w.s.opts.layers, key)...)
	if err != nil {
		return nil, fmt.Errorf("audit: read layers of %q: %w", key, err)
	}
	return w.s.scanLayerRows(key, rows)
}

func (s *Store) scanLayerRows(key string, rows *sql.Rows) (map[string]*LayerValue, error) {
	out, err := sqlitedb.ScanLayerRows(key, rows)
	if err != nil {
		return nil, err
	}
	for _, lv := range out {
		if err := s.keys.RevealLayer(key, lv); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolve returns the layer the effective value comes from and the value,
// or "" and nil when no layer defines the key (or a tombstone hides it).
func (s *Store) resolve(rows map[string]*LayerValue) (string, *LayerValue) {
	for i := len(s.opts.layers) - 1; i >= 0; i-- {
		l := s.opts.layers[i]
		if v := rows[l]; v != nil {
			if v.Tombstone {
				return l, nil
			}
			return l, v
		}
	}
	return "", nil
}

// ownerAbove returns the highest layer above the store layer that defines
// the key, or "".
func (s *Store) ownerAbove(rows map[string]*LayerValue) string {
	for i := len(s.opts.layers) - 1; i > s.rank[StoreLayer]; i-- {
		if rows[s.opts.layers[i]] != nil {
			return s.opts.layers[i]
		}
	}
	return ""
}

// definedBelow reports whether a layer below the store layer defines key.
func (s *Store) definedBelow(rows map[string]*LayerValue) bool {
	for i := 0; i < s.rank[StoreLayer]; i++ {
		if v := rows[s.opts.layers[i]]; v != nil && !v.Tombstone {
			return true
		}
	}
	return false
}

// Stack returns the layers that define key, highest precedence first, and
// marks the one its effective value comes from. A secret's value is
// withheld (LayerValue.Hash and Length stand for it).
func (s *Store) Stack(ctx context.Context, key string) ([]LayerEntry, error) {
	if err := keyspace.Validate(key); err != nil {
		return nil, err
	}
	rows, err := s.layerRows(ctx, s.rdb, key)
	if err != nil {
		return nil, err
	}
	top, _ := s.resolve(rows)
	var out []LayerEntry
	for i := len(s.opts.layers) - 1; i >= 0; i-- {
		l := s.opts.layers[i]
		if v := rows[l]; v != nil {
			w, err := s.keys.WithheldLayer(key, v)
			if err != nil {
				return nil, err
			}
			out = append(out, LayerEntry{Layer: l, Value: *w, Effective: l == top})
		}
	}
	return out, nil
}

// sourceRequest is a source's new snapshot, for the writer.
type sourceRequest struct {
	layer string
	snap  map[string]LayerValue
}

// ApplySource replaces the raw values of a source's layer with snapshot
// (full keys, mount included) in one revision, with actor and origin
// "source:<layer>". Keys whose effective value changes become the
// revision's Changes (and reach watchers); changes hidden by a higher layer
// are recorded only as LayerChanges. A snapshot equal to what the layer
// holds records nothing and returns the current revision. Invalid keys or
// values refuse the whole snapshot, changing nothing.
func (s *Store) ApplySource(ctx context.Context, layer string, snapshot map[string]LayerValue) (Revision, error) {
	if _, ok := s.rank[layer]; !ok || layer == StoreLayer {
		return Revision{}, fmt.Errorf("%w: %q is not a configured source layer", ErrBadRequest, layer)
	}
	snap := make(map[string]LayerValue, len(snapshot))
	for k, v := range snapshot {
		if err := keyspace.Validate(k); err != nil {
			return Revision{}, fmt.Errorf("source %s: %w", layer, err)
		}
		if v.Tombstone {
			return Revision{}, fmt.Errorf("%w: source %s: key %q: only the store layer holds tombstones", ErrBadRequest, layer, k)
		}
		ct, err := NormalizeContentType(v.ContentType)
		if err != nil {
			return Revision{}, fmt.Errorf("source %s: key %q: %w", layer, k, err)
		}
		if len(v.Value) > s.opts.maxValueSize {
			return Revision{}, fmt.Errorf("%w: source %s: key %q: value is %d bytes, the limit is %d", ErrTooLarge, layer, k, len(v.Value), s.opts.maxValueSize)
		}
		if err := record.CheckValue(k, v.Value, ct); err != nil {
			return Revision{}, fmt.Errorf("source %s: %w", layer, err)
		}
		if v.Value == nil {
			v.Value = []byte{}
		}
		snap[k] = LayerValue{Value: v.Value, ContentType: ct}
	}
	return s.submit(ctx, &request{source: &sourceRequest{layer: layer, snap: snap}})
}

// planSource computes, inside the writer's transaction, the layer changes
// and effective changes that a source's snapshot makes.
func (w *writer) planSource(ctx context.Context, tx *sql.Tx, sr *sourceRequest) ([]LayerChange, map[string]*LayerValue, error) {
	rows, err := tx.QueryContext(ctx, `SELECT key, value, content_type, secret FROM layer_kv WHERE layer = ?`, sr.layer)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: read layer %s: %w", sr.layer, err)
	}
	old := map[string]*LayerValue{}
	for rows.Next() {
		var k, ct string
		var v []byte
		var secret bool
		if err := rows.Scan(&k, &v, &ct, &secret); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("audit: read layer %s: %w", sr.layer, err)
		}
		if v == nil {
			v = []byte{}
		}
		old[k] = &LayerValue{Value: v, ContentType: ct, Tombstone: ct == "", Secret: secret}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("audit: read layer %s: %w", sr.layer, err)
	}
	for k, v := range old {
		if err := w.s.keys.RevealLayer(k, v); err != nil {
			return nil, nil, err
		}
	}
	var lcs []LayerChange
	for k, v := range sr.snap {
		nv := v
		if !old[k].Equal(&nv) {
			lcs = append(lcs, LayerChange{Layer: sr.layer, Key: k, Old: old[k], New: &nv})
		}
	}
	for k, v := range old {
		if _, still := sr.snap[k]; !still {
			lcs = append(lcs, LayerChange{Layer: sr.layer, Key: k, Old: v})
		}
	}
	sort.Slice(lcs, func(i, j int) bool { return lcs[i].Key < lcs[j].Key })
	// The effective value of each changed key, after the change.
	eff := make(map[string]*LayerValue, len(lcs))
	for _, lc := range lcs {
		stack, err := w.layerRows(ctx, tx, lc.Key)
		if err != nil {
			return nil, nil, err
		}
		stack[sr.layer] = lc.New
		if lc.New == nil {
			delete(stack, sr.layer)
		}
		_, v := w.s.resolve(stack)
		eff[lc.Key] = v
	}
	return lcs, eff, nil
}

// loadLayerChanges adds the layer changes of the given revisions, secrets
// decrypted with k.
func loadLayerChanges(ctx context.Context, q sqlitedb.Querier, k *keyring.Keyring, revs []Revision) error {
	for i := range revs {
		rows, err := q.QueryContext(ctx, `SELECT layer, key, old_value, old_type, new_value, new_type, secret
			FROM layer_changes WHERE rev = ? ORDER BY key, layer`, revs[i].Rev)
		if err != nil {
			return fmt.Errorf("audit: load layer changes: %w", err)
		}
		for rows.Next() {
			var lc LayerChange
			var oldV, newV []byte
			var oldT, newT sql.NullString
			var secret bool
			if err := rows.Scan(&lc.Layer, &lc.Key, &oldV, &oldT, &newV, &newT, &secret); err != nil {
				rows.Close()
				return fmt.Errorf("audit: load layer changes: %w", err)
			}
			lc.Old, lc.New = sqlitedb.LayerValueOf(oldV, oldT, secret), sqlitedb.LayerValueOf(newV, newT, secret)
			for _, v := range []*LayerValue{lc.Old, lc.New} {
				if err := k.RevealLayer(lc.Key, v); err != nil {
					rows.Close()
					return err
				}
			}
			revs[i].LayerChanges = append(revs[i].LayerChanges, lc)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("audit: load layer changes: %w", err)
		}
	}
	return nil
}

// sourceActor is the actor and origin of a source's revisions.
func sourceActor(layer string) string { return "source:" + layer }
