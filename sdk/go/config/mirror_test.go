package config

import (
	"slices"
	"testing"
)

// keys lists the trie's keys and values as "key=value".
func keys(root *node) []string {
	var out []string
	walk(root, "", func(k string, e *entry) { out = append(out, k+"="+e.text) })
	return out
}

func TestBuilderLeavesPublishedTriesUnchanged(t *testing.T) {
	r1 := trieOf("a/b", "1", "a/c", "2", "d", "3")
	before := keys(r1)
	b := builder{root: r1, gen: 2}
	b.put("a/b", newEntry([]byte("10"), "", 0, 0, 0))
	b.put("a/x/y", newEntry([]byte("20"), "", 0, 0, 0))
	b.del("d")
	if got := keys(r1); !slices.Equal(got, before) {
		t.Fatalf("the old root changed: %v, was %v", got, before)
	}
	if got, want := keys(b.root), []string{"a/b=10", "a/c=2", "a/x/y=20"}; !slices.Equal(got, want) {
		t.Fatalf("new root = %v, want %v", got, want)
	}
	// Untouched subtrees are shared, not copied.
	if lookupKey(b.root, "a/c") != lookupKey(r1, "a/c") {
		t.Fatal("an unchanged node was copied")
	}
}

func TestBuilderDeletePrunesEmptyNodes(t *testing.T) {
	b := builder{root: trieOf("a/b/c", "1", "a/d", "2"), gen: 2}
	if !b.del("a/b/c") {
		t.Fatal("del of an existing key reported false")
	}
	if lookupKey(b.root, "a/b") != nil {
		t.Fatal("a/b is left without keys but still exists")
	}
	if b.del("a/b/c") || b.del("a") || b.del("zzz") {
		t.Fatal("del of a missing key reported true")
	}
	b.put("a", newEntry([]byte("0"), "", 0, 0, 0))
	b.del("a/d")
	if n := lookupKey(b.root, "a"); n == nil || n.e == nil || len(n.children) != 0 {
		t.Fatal("a key lost its own value when its last child was deleted")
	}
}

func TestDiffListsChangedAddedAndDeletedKeys(t *testing.T) {
	a := trieOf("same", "1", "changed", "1", "gone/x", "1", "dir/k", "1")
	b := trieOf("same", "1", "changed", "2", "new", "1", "dir/k", "1", "dir/k/sub", "1")
	got := diff(a, b)
	want := []keyChange{{key: "changed"}, {key: "dir/k/sub"}, {key: "gone/x", deleted: true}, {key: "new"}}
	if !slices.Equal(got, want) {
		t.Fatalf("diff = %+v, want %+v", got, want)
	}
	if d := diff(a, a); len(d) != 0 {
		t.Fatalf("diff of a trie with itself = %v", d)
	}
}
