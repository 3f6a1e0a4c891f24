package source

import "slices"

// Change is one difference between two snapshots: a key put (Value set) or
// deleted (Deleted true).
type Change struct {
	Key     string
	Value   Value
	Deleted bool
}

// Diff returns the changes that turn snapshot old into snapshot new, in key
// order: a put for every key that is new or whose value or content type
// differs, a delete for every key of old that new lacks. A nil old is
// empty, so the first snapshot diffs as all puts.
func Diff(old, new map[string]Value) []Change {
	var out []Change
	for k, v := range new {
		if ov, ok := old[k]; !ok || !ov.Equal(v) {
			out = append(out, Change{Key: k, Value: v})
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			out = append(out, Change{Key: k, Deleted: true})
		}
	}
	slices.SortFunc(out, func(a, b Change) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out
}
