package api

import (
	"bytes"
	"encoding/json"
	"strings"

	"gopkg.in/yaml.v3"
)

// The tree format: the keys under a prefix as one JSON document
// (GET /v1/kv?prefix=P&format=tree, and the document a prefix's JSON
// Schema is checked against, docs/schemas.md).

// TreeValueKey is the member that holds a key's own value in the tree
// format when the key is also the parent of other keys: with keys "db" and
// "db/host", the tree is {"db": {"_value": ..., "host": ...}}. A key named
// "_value" wins over its parent's own value.
const TreeValueKey = "_value"

// TreeLeaf is one key of a tree and the value the tree shows for it
// (TreeValue, or what stands for a value withheld).
type TreeLeaf struct {
	Key   string
	Value any
}

// Tree nests leaves, all under the canonical prefix, by their '/'
// segments below the prefix.
func Tree(prefix string, leaves []TreeLeaf) map[string]any {
	root := &treeNode{}
	for _, l := range leaves {
		node := root
		for _, seg := range strings.Split(strings.TrimPrefix(l.Key, prefix), "/") {
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
		node.value, node.hasValue = l.Value, true
	}
	out := map[string]any{}
	for name, child := range root.children {
		out[name] = child.render()
	}
	return out
}

type treeNode struct {
	children map[string]*treeNode
	value    any
	hasValue bool
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

// TreeValue is a value of content type ct (canonical: TypeJSON, TypeYAML,
// ...) as it appears in the tree: JSON as JSON (numbers as json.Number,
// so 64-bit integers stay exact), YAML converted to JSON (JSONCompatible),
// anything else a string (base64 when it is not UTF-8, as EncodeValue).
func TreeValue(value []byte, ct string) any {
	switch ct {
	case TypeJSON:
		dec := json.NewDecoder(bytes.NewReader(value))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil {
			return v
		}
	case TypeYAML:
		var v any
		if err := yaml.Unmarshal(value, &v); err == nil {
			return JSONCompatible(v)
		}
	}
	s, _ := EncodeValue(value)
	return s
}
