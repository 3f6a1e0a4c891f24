// Package yamlnode holds the helpers of the strict YAML decoders (plugin.DecodeYAML for plugin
// configs, package setting for config files) that look at yaml.v3 nodes, so that both follow
// aliases and describe a value in their messages the same way.
package yamlnode

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// Resolve follows aliases and steps into a document.
func Resolve(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch {
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		default:
			return n
		}
	}
	return nil
}

// IsNull reports whether n holds nothing: no node, an empty document, or null (key:, key: ~).
func IsNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.DocumentNode && len(n.Content) == 0 ||
		n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Describe says what n is, for "got ...": a scalar as written (a string quoted, cut after 40
// bytes), else its kind.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		s := n.Value
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		if n.Tag == "!!str" {
			return strconv.Quote(s)
		}
		return s
	}
	return "nothing"
}
