// Package layer is the order of a store's layers and what it decides: the
// effective value of a key is the one of the highest layer that defines
// it, and a tombstone there means the key does not exist. The store layer
// (record.StoreLayer) is the one that Commit and Rollback write; the
// others are sources.
package layer

import (
	"fmt"

	"github.com/configd/configd/audit/record"
)

// Order is the layers, lowest precedence first.
type Order struct {
	names []string
	rank  map[string]int
}

// New returns the order of names, lowest precedence first; it must name
// record.StoreLayer once, and no layer twice or without a name.
func New(names []string) (*Order, error) {
	rank := make(map[string]int, len(names))
	for i, l := range names {
		if l == "" {
			return nil, fmt.Errorf("audit: layer %d has no name", i)
		}
		if _, dup := rank[l]; dup {
			return nil, fmt.Errorf("audit: layer %q appears twice", l)
		}
		rank[l] = i
	}
	if _, ok := rank[record.StoreLayer]; !ok {
		return nil, fmt.Errorf("audit: the layers %v do not include the %q layer", names, record.StoreLayer)
	}
	return &Order{names: append([]string(nil), names...), rank: rank}, nil
}

// Names returns the layers, lowest precedence first.
func (o *Order) Names() []string { return append([]string(nil), o.names...) }

// IsSource reports whether l is a configured layer other than the store
// layer: one that a source feeds.
func (o *Order) IsSource(l string) bool {
	_, ok := o.rank[l]
	return ok && l != record.StoreLayer
}

// Resolve returns the layer the effective value of a key comes from and
// the value, given the key's rows by layer, or "" and nil when no layer
// defines the key; a tombstone hides it (the layer and nil).
func (o *Order) Resolve(rows map[string]*record.LayerValue) (string, *record.LayerValue) {
	for i := len(o.names) - 1; i >= 0; i-- {
		l := o.names[i]
		if v := rows[l]; v != nil {
			if v.Tombstone {
				return l, nil
			}
			return l, v
		}
	}
	return "", nil
}

// OwnerAbove returns the highest layer above the store layer that defines
// the key whose rows are rows, or "".
func (o *Order) OwnerAbove(rows map[string]*record.LayerValue) string {
	for i := len(o.names) - 1; i > o.rank[record.StoreLayer]; i-- {
		if rows[o.names[i]] != nil {
			return o.names[i]
		}
	}
	return ""
}

// DefinedBelow reports whether a layer below the store layer defines the
// key whose rows are rows.
func (o *Order) DefinedBelow(rows map[string]*record.LayerValue) bool {
	for i := 0; i < o.rank[record.StoreLayer]; i++ {
		if v := rows[o.names[i]]; v != nil && !v.Tombstone {
			return true
		}
	}
	return false
}

// Stack returns the entries of the layers that define the key whose rows
// are rows, highest precedence first, and marks the one its effective
// value comes from.
func (o *Order) Stack(rows map[string]*record.LayerValue) []record.LayerEntry {
	top, _ := o.Resolve(rows)
	var out []record.LayerEntry
	for i := len(o.names) - 1; i >= 0; i-- {
		l := o.names[i]
		if v := rows[l]; v != nil {
			out = append(out, record.LayerEntry{Layer: l, Value: *v, Effective: l == top})
		}
	}
	return out
}
