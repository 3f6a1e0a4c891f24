package httpapi

import (
	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
)

// TreeValueKey is the member that holds a key's own value in the tree
// format when the key is also the parent of other keys (api.TreeValueKey).
const TreeValueKey = api.TreeValueKey

// buildTree nests kvs, all under the canonical prefix, by their '/'
// segments below the prefix (api.Tree). A key named "_value" wins over its
// parent's own value, which then shows only in the list format.
func buildTree(prefix string, kvs []audit.KeyValue) map[string]any {
	leaves := make([]api.TreeLeaf, len(kvs))
	for i, kv := range kvs {
		leaves[i] = api.TreeLeaf{Key: kv.Key, Value: treeValue(kv)}
	}
	return api.Tree(prefix, leaves)
}

// treeValue is a value as it appears in the tree (api.TreeValue). A
// withheld secret is {"secret": true, "hash": ..., "length": N}.
func treeValue(kv audit.KeyValue) any {
	if kv.Withheld() {
		return map[string]any{"secret": true, "hash": kv.Hash, "length": kv.Length}
	}
	return api.TreeValue(kv.Value, normalType(kv.ContentType))
}
