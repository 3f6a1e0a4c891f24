package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/source"
)

// FuzzFlattenRoundTrip checks that flattening loses nothing that keys can
// hold: whatever snapshot Flatten makes of a document, unflattening it
// into a nested document (JSON, and YAML with every scalar quoted) and
// flattening that again gives the same keys with the same values and
// types, without warnings. That also makes the JSON of list values a fixed
// point: re-reading and re-writing it gives the same bytes. FuzzFlatten
// checks the snapshot itself.
func FuzzFlattenRoundTrip(f *testing.F) {
	for _, s := range []struct {
		doc    string
		isJSON bool
	}{
		{`{"db": {"host": "x", "port": 5432}, "db/user": "u"}`, true},
		{`{"db": "x", "db/host": "y", "db/host/a": [1, "2", {"k": null}]}`, true},
		{`{"a": {"b": {}}, "e": [], "n": null, "t": true, "f": 1.50e+3}`, true},
		{`{"s": "\u2028\u0000\"\\<>&", "u": "ключ", "l": ["\b\f\n", -0, 1E400]}`, true},
		{`{"a//b": 1, "./x": 2, "ok": 3}`, true},
		{"db:\n  host: x\n  port: 5432\ndb/user: u\n", false},
		{"base: &b {x: 1, y: [a, b]}\nderived:\n  <<: *b\n  y: 2\n", false},
		{"list: [1, 0x1F, 1_000, .inf, .nan, ~, yes, 2001-12-14, !!binary aGk=]\n", false},
		{"? [a, b]\n: c\nk: |\n  multi\n  line\n", false},
		{"'a/b': 1\na: {b: 2}\n", false},
		{"x: \"\\t\\u0085\\U0001F600\"\n", false},
	} {
		f.Add([]byte(s.doc), s.isJSON)
	}
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		format := FormatYAML
		if isJSON {
			format = FormatJSON
		}
		snap, _, err := Flatten(data, format)
		if err != nil {
			if !errors.Is(err, ErrDocument) {
				t.Fatalf("error does not wrap ErrDocument: %v", err)
			}
			return
		}
		tree := unflatten(snap)

		doc := tree.json(t)
		got, warnings, err := Flatten(doc, FormatJSON)
		if err != nil || len(warnings) != 0 {
			t.Fatalf("unflattened JSON %s: Flatten: %v, warnings %v", doc, err, warnings)
		}
		sameSnapshot(t, "JSON", doc, snap, got)

		ydoc, err := yaml.Marshal(tree.yaml(t))
		if err != nil {
			t.Fatalf("marshal YAML: %v", err)
		}
		got, warnings, err = Flatten(ydoc, FormatYAML)
		if err != nil || len(warnings) != 0 {
			t.Fatalf("unflattened YAML %s: Flatten: %v, warnings %v", ydoc, err, warnings)
		}
		sameSnapshot(t, "YAML", ydoc, snap, got)
	})
}

func sameSnapshot(t *testing.T, via string, doc []byte, want, got map[string]source.Value) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("via %s %q: key %q is lost", via, doc, k)
		}
		if !g.Equal(w) {
			t.Fatalf("via %s %q: key %q is %s %q, was %s %q", via, doc, k, g.ContentType, g.Data, w.ContentType, w.Data)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("via %s %q: key %q appears", via, doc, k)
		}
	}
}

// trie is a snapshot unflattened by key segments.
type trie struct {
	value    *source.Value
	children map[string]*trie
}

func unflatten(snap map[string]source.Value) *trie {
	root := &trie{}
	for k, v := range snap {
		n := root
		for _, seg := range strings.Split(k, "/") {
			if n.children == nil {
				n.children = map[string]*trie{}
			}
			c := n.children[seg]
			if c == nil {
				c = &trie{}
				n.children[seg] = c
			}
			n = c
		}
		n.value = &v
	}
	return root
}

// member is one member of an unflattened map: a value, or a nested map.
type member struct {
	name  string
	value *source.Value
	sub   []member
}

// members lays out the children of n. A child that has a value and
// children of its own cannot be both a scalar and a map: it gives its
// value under its name and its children under "name/child" (which Flatten
// reads as the same path), recursively.
func (n *trie) members() []member {
	var out []member
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, n.children[name].membersAs(name)...)
	}
	return out
}

func (n *trie) membersAs(name string) []member {
	switch {
	case len(n.children) == 0:
		return []member{{name: name, value: n.value}}
	case n.value == nil:
		return []member{{name: name, sub: n.members()}}
	}
	out := []member{{name: name, value: n.value}}
	names := make([]string, 0, len(n.children))
	for c := range n.children {
		names = append(names, c)
	}
	slices.Sort(names)
	for _, c := range names {
		out = append(out, n.children[c].membersAs(name+"/"+c)...)
	}
	return out
}

func (n *trie) json(t *testing.T) []byte {
	var buf bytes.Buffer
	writeMembers(t, &buf, n.members())
	return buf.Bytes()
}

func writeMembers(t *testing.T, buf *bytes.Buffer, ms []member) {
	buf.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(m.name)
		buf.Write(name)
		buf.WriteByte(':')
		switch {
		case m.value == nil:
			writeMembers(t, buf, m.sub)
		case m.value.ContentType == source.TypeJSON:
			buf.Write(m.value.Data) // a list, as JSON
		case m.value.ContentType == source.TypeText:
			s, _ := json.Marshal(string(m.value.Data))
			buf.Write(s)
		default:
			t.Fatalf("key %q: content type %q", m.name, m.value.ContentType)
		}
	}
	buf.WriteByte('}')
}

func (n *trie) yaml(t *testing.T) *yaml.Node {
	return yamlMembers(t, n.members())
}

func yamlMembers(t *testing.T, ms []member) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, m := range ms {
		k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: m.name, Style: yaml.DoubleQuotedStyle}
		var v *yaml.Node
		switch {
		case m.value == nil:
			v = yamlMembers(t, m.sub)
		case m.value.ContentType == source.TypeJSON:
			// A list: JSON is YAML, so the list's JSON text, parsed as
			// YAML, is the same list, once the characters that JSON
			// strings may hold raw and YAML may not are escaped.
			var doc yaml.Node
			if err := yaml.Unmarshal(yamlPrintable(m.value.Data), &doc); err != nil || len(doc.Content) != 1 {
				t.Fatalf("key %q: list %s does not parse as YAML: %v", m.name, m.value.Data, err)
			}
			v = doc.Content[0]
			pinNumbers(v)
		case m.value.ContentType == source.TypeText:
			v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(m.value.Data), Style: yaml.DoubleQuotedStyle}
		default:
			t.Fatalf("key %q: content type %q", m.name, m.value.ContentType)
		}
		out.Content = append(out.Content, k, v)
	}
	return out
}

// yamlPrintable escapes (\uXXXX) the characters of JSON text that YAML
// does not allow in a document (its c-printable set): JSON strings may hold
// them raw, such as DEL or C1 controls; outside strings valid JSON has only
// spaces, tabs and line breaks, which YAML allows.
func yamlPrintable(data []byte) []byte {
	printable := func(r rune) bool {
		return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7e || r == 0x85 ||
			r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff
	}
	var b bytes.Buffer
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 || printable(r) {
			b.Write(data[i : i+n]) // a byte that is not UTF-8 stays as it is
		} else {
			fmt.Fprintf(&b, "\\u%04x", r)
		}
		i += n
	}
	return b.Bytes()
}

// pinNumbers tags the numbers of a list parsed from its JSON text as
// numbers. In JSON text every string is quoted, so a plain scalar that YAML
// resolved to a string is a number YAML cannot hold (1E400 overflows a
// float64, and gopkg.in/yaml.v3 then calls it a string).
func pinNumbers(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Style == 0 && n.ShortTag() == "!!str" {
		n.Tag = "!!float"
	}
	for _, c := range n.Content {
		pinNumbers(c)
	}
}
