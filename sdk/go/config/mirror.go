package config

import (
	"maps"
	"slices"
	"strings"
)

// The client's copy of the configuration is a trie of key segments: the
// node of "app/db" has the child "timeout" for the key app/db/timeout. A
// published trie is never modified. A change copies the nodes on the path
// from the root to the key it touches and shares everything else, so a
// revision costs O(depth × fan-out), every earlier root stays a complete,
// consistent view (a Value keeps reading the revision it came from), and a
// read is a walk of a few map lookups with no lock.

// node is one segment of the trie. Nodes without a value and without
// children are removed, so a node exists exactly when its path is a key or
// a prefix of keys.
type node struct {
	children map[string]*node
	e        *entry
	// gen is the revision build that made this copy; only that build may
	// modify it (see builder).
	gen uint64
}

// state is one published view: the trie and the revision it is at.
type state struct {
	rev  int64
	root *node
	// next is closed when a newer state replaces this one.
	next chan struct{}
}

func newState(rev int64, root *node) *state {
	return &state{rev: rev, root: root, next: make(chan struct{})}
}

// lookup walks path, whose elements may themselves hold several segments
// separated by '/'; empty segments are skipped, so "app/", "/app" and
// "app" name the same node. It does not allocate.
func lookup(n *node, path []string) *node {
	for _, p := range path {
		for p != "" && n != nil {
			var seg string
			if i := strings.IndexByte(p, '/'); i >= 0 {
				seg, p = p[:i], p[i+1:]
			} else {
				seg, p = p, ""
			}
			if seg != "" {
				n = n.children[seg]
			}
		}
	}
	return n
}

// lookupKey is lookup of one key.
func lookupKey(n *node, key string) *node {
	return lookup(n, []string{key})
}

// builder changes a trie by copying the nodes it modifies. Nodes whose gen
// is the builder's were made by it and are modified in place; give each
// revision a new gen to keep the root after it immutable.
type builder struct {
	root *node
	gen  uint64
}

// own returns n if this build made it, else a copy the build may modify.
func (b *builder) own(n *node) *node {
	if n == nil {
		return &node{gen: b.gen}
	}
	if n.gen == b.gen {
		return n
	}
	c := &node{e: n.e, gen: b.gen}
	if len(n.children) > 0 {
		c.children = maps.Clone(n.children)
	}
	return c
}

// put sets key (relative, valid) to e.
func (b *builder) put(key string, e *entry) {
	b.root = b.own(b.root)
	n := b.root
	for seg := range strings.SplitSeq(key, "/") {
		child := b.own(n.children[seg])
		if n.children == nil {
			n.children = map[string]*node{}
		}
		n.children[seg] = child
		n = child
	}
	n.e = e
}

// del removes key's value, and the nodes left empty by that. It reports
// whether the key existed.
func (b *builder) del(key string) bool {
	if n := lookupKey(b.root, key); n == nil || n.e == nil {
		return false
	}
	segs := strings.Split(key, "/")
	path := make([]*node, 0, len(segs)+1)
	b.root = b.own(b.root)
	n := b.root
	path = append(path, n)
	for _, seg := range segs {
		child := b.own(n.children[seg])
		n.children[seg] = child
		n = child
		path = append(path, n)
	}
	n.e = nil
	for i := len(segs); i > 0; i-- {
		if nd := path[i]; nd.e != nil || len(nd.children) > 0 {
			break
		}
		delete(path[i-1].children, segs[i-1])
	}
	return true
}

// keyChange is one key that a revision or a snapshot changed.
type keyChange struct {
	key     string
	deleted bool
}

// diff lists the keys whose values differ between the tries a and b, in
// key order. Shared subtrees are skipped without a look.
func diff(a, b *node) []keyChange {
	var out []keyChange
	diffAt("", a, b, &out)
	slices.SortFunc(out, func(x, y keyChange) int { return strings.Compare(x.key, y.key) })
	return out
}

func diffAt(path string, a, b *node, out *[]keyChange) {
	if a == b {
		return
	}
	var ae, be *entry
	var ac, bc map[string]*node
	if a != nil {
		ae, ac = a.e, a.children
	}
	if b != nil {
		be, bc = b.e, b.children
	}
	if path != "" && !ae.same(be) {
		*out = append(*out, keyChange{key: path, deleted: be == nil})
	}
	for name, child := range ac {
		diffAt(joinKey(path, name), child, bc[name], out)
	}
	for name, child := range bc {
		if _, seen := ac[name]; !seen {
			diffAt(joinKey(path, name), nil, child, out)
		}
	}
}

func joinKey(path, name string) string {
	if path == "" {
		return name
	}
	return path + "/" + name
}

// walk calls fn for every key of the trie under n, in key order.
func walk(n *node, path string, fn func(key string, e *entry)) {
	if n == nil {
		return
	}
	if n.e != nil && path != "" {
		fn(path, n.e)
	}
	names := slices.Sorted(maps.Keys(n.children))
	for _, name := range names {
		walk(n.children[name], joinKey(path, name), fn)
	}
}

// treeValueKey holds a key's own value in the tree of a prefix when the key
// also has keys under it, as in configd's tree format: with keys "db" and
// "db/host", Get("db").Scan sees {"_value": ..., "host": ...}.
const treeValueKey = "_value"

// tree is the subtrie under n as Scan decodes it: nested maps by segment,
// with each key's decoded value at its leaf. The maps are new; the leaves
// are shared and must not be modified.
func (n *node) tree() any {
	if len(n.children) == 0 {
		if n.e == nil {
			return map[string]any{}
		}
		return n.e.tree
	}
	m := make(map[string]any, len(n.children)+1)
	if n.e != nil {
		m[treeValueKey] = n.e.tree
	}
	for name, child := range n.children {
		m[name] = child.tree()
	}
	return m
}
