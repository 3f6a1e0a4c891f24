package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
)

// TreeValueKey is the member that holds a key's own value in the tree
// format when the key is also the parent of other keys: with keys "db" and
// "db/host", the tree is {"db": {"_value": ..., "host": ...}}.
const TreeValueKey = "_value"

type treeNode struct {
	children map[string]*treeNode
	value    any
	hasValue bool
}

// buildTree nests kvs, all under the canonical prefix, by their '/'
// segments below the prefix. A key named "_value" wins over its parent's
// own value, which then shows only in the list format.
func buildTree(prefix string, kvs []audit.KeyValue) map[string]any {
	root := &treeNode{}
	for _, kv := range kvs {
		node := root
		for _, seg := range strings.Split(strings.TrimPrefix(kv.Key, prefix), "/") {
			if node.children == nil {
				node.children = map[string]*treeNode{}
			}
			child := node.children[seg]
			if child == nil {
				child = &treeNode{}
				node.children[seg] = child
			}
			node = child
		}
		node.value, node.hasValue = treeValue(kv), true
	}
	out := map[string]any{}
	for name, child := range root.children {
		out[name] = child.render()
	}
	return out
}

func (n *treeNode) render() any {
	if len(n.children) == 0 {
		return n.value
	}
	m := make(map[string]any, len(n.children)+1)
	if n.hasValue {
		m[TreeValueKey] = n.value
	}
	for name, child := range n.children {
		m[name] = child.render()
	}
	return m
}

// treeValue is a value as it appears in the tree: JSON as JSON, YAML
// converted to JSON, anything else a string (base64 when it is not UTF-8).
// A withheld secret is {"secret": true, "hash": ..., "length": N}.
func treeValue(kv audit.KeyValue) any {
	if kv.Withheld() {
		return map[string]any{"secret": true, "hash": kv.Hash, "length": kv.Length}
	}
	switch normalType(kv.ContentType) {
	case api.TypeJSON:
		dec := json.NewDecoder(bytes.NewReader(kv.Value))
		dec.UseNumber() // keep 64-bit integers exact
		var v any
		if err := dec.Decode(&v); err == nil {
			return v
		}
	case api.TypeYAML:
		var v any
		if err := yaml.Unmarshal(kv.Value, &v); err == nil {
			return api.JSONCompatible(v)
		}
	}
	s, _ := api.EncodeValue(kv.Value)
	return s
}
