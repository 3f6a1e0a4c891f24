// Package keys lists the configd keys a Value of the SDK holds, for the
// adapters that hand a framework one entry per key.
package keys

import (
	"fmt"
	"path"
	"sort"

	"github.com/configd/configd/sdk/go/config"
)

// Each calls fn for each key at or under v, in key order, with the key's
// path relative to v's and its Value.
func Each(v config.Value, fn func(key string, v config.Value)) error {
	if !v.Exists() {
		return nil
	}
	var tree any
	if err := v.Scan(&tree); err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	type kv struct {
		key string
		v   config.Value
	}
	var all []kv
	walk(v, "", tree, func(key string, v config.Value) { all = append(all, kv{key, v}) })
	sort.Slice(all, func(i, j int) bool { return all[i].key < all[j].key })
	for _, e := range all {
		fn(e.key, e.v)
	}
	return nil
}

// walk visits v, whose decoded tree (as Scan gives it) is tree. A member of
// the tree is a key, or a prefix of keys, only when the SDK says something
// exists there, so the members of a JSON object value are not taken for
// keys.
func walk(v config.Value, at string, tree any, fn func(key string, v config.Value)) {
	if v.ContentType() != "" {
		fn(at, v)
	}
	m, ok := tree.(map[string]any)
	if !ok {
		return
	}
	for name, sub := range m {
		if child := v.Get(name); child.Exists() {
			walk(child, path.Join(at, name), sub, fn)
		}
	}
}
