package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
)

// The export format, written by export and read by apply. A YAML document:
//
//	rev: 12          # the revision exported (informational)
//	prefix: app/     # the prefix exported; every key must lie under it
//	keys:
//	  app/db/timeout: 5s              # a string: a text/plain value
//	  app/db/hosts: |                 # multi-line text
//	    db1
//	    db2
//	  app/features:                   # any other type: value and type
//	    type: application/json
//	    value: '{"beta": true}'
//	  app/logo:                       # bytes that are not UTF-8: base64
//	    type: image/png
//	    encoding: base64
//	    value: iVBORw0KGgo=
//
// Keys are full keys. A value is always a string, kept to the byte (export
// picks a YAML style that reads back exactly, and quotes what YAML would
// otherwise read as a number or a boolean; apply takes the scalar's text as
// written, so "port: 8080" is the text "8080"). For people writing files by
// hand, apply also takes a type's short name (text, json, yaml, binary) and,
// for json and yaml, a value written as a YAML structure, which it encodes.

// exportDoc is a parsed export file.
type exportDoc struct {
	Rev     int64
	Prefix  string
	Entries []exportEntry
}

// exportEntry is one key of an export file.
type exportEntry struct {
	Key         string
	Value       []byte
	ContentType string
}

// encodeExport writes doc in the export format.
func encodeExport(doc exportDoc) ([]byte, error) {
	keys := &yaml.Node{Kind: yaml.MappingNode}
	for _, e := range doc.Entries {
		keys.Content = append(keys.Content, strNode(e.Key), entryNode(e))
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		strNode("rev"), {Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(doc.Rev, 10)},
		strNode("prefix"), strNode(doc.Prefix),
		strNode("keys"), keys,
	}}
	root.HeadComment = fmt.Sprintf("configd export of %s at rev %d; load it with: configctl apply -f FILE",
		describePrefix(doc.Prefix), doc.Rev)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func describePrefix(p string) string {
	if p == "" {
		return "every key"
	}
	return p
}

// entryNode is the YAML of one key's value.
func entryNode(e exportEntry) *yaml.Node {
	ct := e.ContentType
	if ct == "" {
		ct = api.TypeText
	}
	text := utf8.Valid(e.Value)
	if ct == api.TypeText && text {
		return valueNode(string(e.Value))
	}
	m := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{strNode("type"), strNode(ct)}}
	if !text {
		m.Content = append(m.Content, strNode("encoding"), strNode(api.EncodingBase64),
			strNode("value"), strNode(base64.StdEncoding.EncodeToString(e.Value)))
		return m
	}
	m.Content = append(m.Content, strNode("value"), valueNode(string(e.Value)))
	return m
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// valueNode is a string in the most readable style that reads back to the
// same bytes: a literal block for multi-line text, else what the encoder
// picks; double quotes (which escape everything) when that would not read
// back exactly.
func valueNode(s string) *yaml.Node {
	n := strNode(s)
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	if !readsBack(n) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// readsBack reports whether n, encoded as a mapping value and decoded
// again, has the same text.
func readsBack(n *yaml.Node) bool {
	out, err := yaml.Marshal(&yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{strNode("v"), n}})
	if err != nil {
		return false
	}
	var back yaml.Node
	if err := yaml.Unmarshal(out, &back); err != nil || len(back.Content) != 1 {
		return false
	}
	m := back.Content[0]
	return m.Kind == yaml.MappingNode && len(m.Content) == 2 &&
		m.Content[1].Kind == yaml.ScalarNode && m.Content[1].Value == n.Value
}

// decodeExport parses an export file. name is used in messages.
func decodeExport(name string, data []byte) (exportDoc, error) {
	var doc exportDoc
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return doc, fmt.Errorf("%s: %v", name, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return doc, fmt.Errorf("%s: the file is empty", name)
	}
	top := resolve(root.Content[0])
	if top.Kind != yaml.MappingNode {
		return doc, fmt.Errorf("%s:%d: want a mapping with rev, prefix and keys", name, top.Line)
	}
	var keysNode *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], resolve(top.Content[i+1])
		switch k.Value {
		case "rev":
			if v.Tag == "!!null" {
				continue
			}
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil || v.Kind != yaml.ScalarNode || n < 0 {
				return doc, fmt.Errorf("%s:%d: rev: want a revision number", name, v.Line)
			}
			doc.Rev = n
		case "prefix":
			if v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.ScalarNode {
				return doc, fmt.Errorf("%s:%d: prefix: want a string", name, v.Line)
			}
			p, err := keyspace.Prefix(v.Value)
			if err != nil {
				return doc, fmt.Errorf("%s:%d: %v", name, v.Line, err)
			}
			doc.Prefix = p
		case "keys":
			keysNode = v
		default:
			return doc, fmt.Errorf("%s:%d: unknown field %q (want rev, prefix, keys)", name, k.Line, k.Value)
		}
	}
	if keysNode == nil {
		return doc, fmt.Errorf("%s: no keys field", name)
	}
	if keysNode.Tag == "!!null" {
		return doc, nil
	}
	if keysNode.Kind != yaml.MappingNode {
		return doc, fmt.Errorf("%s:%d: keys: want a mapping of key to value", name, keysNode.Line)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(keysNode.Content); i += 2 {
		k, v := keysNode.Content[i], resolve(keysNode.Content[i+1])
		key := k.Value
		if err := keyspace.Validate(key); err != nil {
			return doc, fmt.Errorf("%s:%d: %v", name, k.Line, err)
		}
		if !keyspace.InPrefix(key, doc.Prefix) {
			return doc, fmt.Errorf("%s:%d: key %q is not under the file's prefix %q", name, k.Line, key, doc.Prefix)
		}
		if line, dup := seen[key]; dup {
			return doc, fmt.Errorf("%s:%d: key %q is already set on line %d", name, k.Line, key, line)
		}
		seen[key] = k.Line
		e, err := decodeEntry(key, v)
		if err != nil {
			return doc, fmt.Errorf("%s:%d: key %q: %v", name, v.Line, key, err)
		}
		doc.Entries = append(doc.Entries, e)
	}
	return doc, nil
}

// resolve follows an alias to its anchor.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// decodeEntry reads one key's value: a scalar (text) or a mapping of type,
// encoding and value.
func decodeEntry(key string, v *yaml.Node) (exportEntry, error) {
	e := exportEntry{Key: key, ContentType: api.TypeText}
	switch v.Kind {
	case yaml.ScalarNode:
		switch v.Tag {
		case "!!null":
			return e, errors.New(`no value (write "" for an empty value; delete keys with configctl del)`)
		case "!!binary":
			b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v.Value), ""))
			if err != nil {
				return e, fmt.Errorf("bad !!binary value: %v", err)
			}
			e.Value, e.ContentType = b, api.TypeBinary
			return e, nil
		}
		e.Value = []byte(v.Value)
		return e, nil
	case yaml.MappingNode:
	default:
		return e, errors.New("want a string, or a mapping with type and value")
	}
	var valueNode *yaml.Node
	encoding := ""
	for i := 0; i+1 < len(v.Content); i += 2 {
		f, fv := v.Content[i], resolve(v.Content[i+1])
		switch f.Value {
		case "type":
			ct, err := parseType(fv.Value)
			if err != nil || fv.Kind != yaml.ScalarNode {
				return e, fmt.Errorf("type: %v", err)
			}
			e.ContentType = ct
		case "encoding":
			if fv.Value != api.EncodingBase64 || fv.Kind != yaml.ScalarNode {
				return e, fmt.Errorf("encoding %q: the only encoding is base64", fv.Value)
			}
			encoding = api.EncodingBase64
		case "value":
			valueNode = fv
		default:
			return e, fmt.Errorf("unknown field %q (want type, encoding, value)", f.Value)
		}
	}
	if valueNode == nil {
		return e, errors.New("no value field")
	}
	switch {
	case valueNode.Kind == yaml.ScalarNode && valueNode.Tag != "!!null":
		if encoding == api.EncodingBase64 {
			b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(valueNode.Value), ""))
			if err != nil {
				return e, fmt.Errorf("bad base64 value: %v", err)
			}
			e.Value = b
		} else {
			e.Value = []byte(valueNode.Value)
		}
	case valueNode.Kind == yaml.ScalarNode:
		return e, errors.New(`value is null (write "" for an empty value)`)
	case encoding != "":
		return e, errors.New("a base64 value must be a string")
	case e.ContentType == api.TypeJSON:
		var x any
		if err := valueNode.Decode(&x); err != nil {
			return e, fmt.Errorf("value: %v", err)
		}
		b, err := json.Marshal(x)
		if err != nil {
			return e, fmt.Errorf("value as JSON: %v", err)
		}
		e.Value = b
	case e.ContentType == api.TypeYAML:
		b, err := yaml.Marshal(valueNode)
		if err != nil {
			return e, fmt.Errorf("value as YAML: %v", err)
		}
		e.Value = b
	default:
		return e, errors.New("a structured value needs type json or yaml; other types take a string")
	}
	return e, nil
}
