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
//	  app/db/password:                # a secret key: its value left out
//	    secret: true
//	  app/api/key:                    # a secret key with its value
//	    secret: true                  # (export --with-secrets)
//	    value: s3kr1t
//
// A secret entry is a mapping with "secret: true"; apply stores its value
// as a secret (encrypted, never in clear in the history) and leaves the
// key as it is when the entry has no value. -o json writes the same
// document as JSON ({"rev": 12, "prefix": "app/", "keys": {...}}), which
// apply reads too.
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
	// Secret marks a secret key ("secret: true").
	Secret bool
	// LeftOut: the entry of a secret key has no value; apply leaves the
	// key as it is.
	LeftOut bool
}

// secrets counts the entries of secret keys, and those whose value is
// left out.
func (doc exportDoc) secrets() (secret, leftOut int) {
	for _, e := range doc.Entries {
		if e.Secret {
			secret++
		}
		if e.LeftOut {
			leftOut++
		}
	}
	return secret, leftOut
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
	switch secret, leftOut := doc.secrets(); {
	case leftOut > 0:
		root.HeadComment += fmt.Sprintf("\n%d secret key(s) without their values: apply leaves them as they are; "+
			"configctl export --with-secrets includes them", leftOut)
	case secret > 0:
		root.HeadComment += "\nholds secret values in clear text: keep it as you keep passwords"
	}
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

// entryForm is how an entry is written, in YAML or in JSON: a bare string
// (Plain), or a mapping of the fields that are set, in this order.
type entryForm struct {
	Plain    bool    `json:"-"`
	Secret   bool    `json:"secret,omitempty"`
	Type     string  `json:"type,omitempty"`
	Encoding string  `json:"encoding,omitempty"`
	Value    *string `json:"value,omitempty"` // nil: left out
}

// formOf is e's form: a text value is a bare string; other types name
// theirs; bytes that are not UTF-8 are base64.
func formOf(e exportEntry) entryForm {
	f := entryForm{Secret: e.Secret, Type: e.ContentType}
	if f.Type == "" || f.Type == api.TypeText {
		f.Type = ""
	}
	if e.LeftOut {
		return f
	}
	v := string(e.Value)
	if !utf8.Valid(e.Value) {
		v, f.Encoding = base64.StdEncoding.EncodeToString(e.Value), api.EncodingBase64
		if f.Type == "" {
			f.Type = api.TypeText
		}
	}
	f.Value = &v
	f.Plain = !f.Secret && f.Type == "" && f.Encoding == ""
	return f
}

// entryNode is the YAML of one key's value.
func entryNode(e exportEntry) *yaml.Node {
	f := formOf(e)
	if f.Plain {
		return valueNode(*f.Value)
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	if f.Secret {
		secret := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}
		if f.Value == nil {
			secret.LineComment = "value left out"
		}
		m.Content = append(m.Content, strNode("secret"), secret)
	}
	if f.Type != "" {
		m.Content = append(m.Content, strNode("type"), strNode(f.Type))
	}
	switch {
	case f.Value == nil:
	case f.Encoding != "":
		m.Content = append(m.Content, strNode("encoding"), strNode(f.Encoding), strNode("value"), strNode(*f.Value))
	default:
		m.Content = append(m.Content, strNode("value"), valueNode(*f.Value))
	}
	return m
}

// encodeExportJSON writes doc in the export format as JSON, keys in doc's
// order.
func encodeExportJSON(doc exportDoc) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	put := func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		return nil
	}
	fmt.Fprintf(&buf, "{\n  \"rev\": %d,\n  \"prefix\": ", doc.Rev)
	if err := put(doc.Prefix); err != nil {
		return nil, err
	}
	buf.WriteString(",\n  \"keys\": {")
	for i, e := range doc.Entries {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n    ")
		if err := put(e.Key); err != nil {
			return nil, err
		}
		buf.WriteString(": ")
		var v any = formOf(e)
		if f := v.(entryForm); f.Plain {
			v = *f.Value
		}
		if err := put(v); err != nil {
			return nil, err
		}
	}
	if len(doc.Entries) > 0 {
		buf.WriteString("\n  ")
	}
	buf.WriteString("}\n}\n")
	return buf.Bytes(), nil
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

// decodeExport parses an export file, YAML or JSON. name is used in
// messages.
func decodeExport(name string, data []byte) (exportDoc, error) {
	var doc exportDoc
	var root yaml.Node
	if isJSONObject(data) {
		// JSON is YAML, but YAML reads some of JSON's strings otherwise
		// (\u escapes of surrogate pairs; characters YAML does not print).
		n, err := jsonNode(data)
		if err != nil {
			return doc, fmt.Errorf("%s: %v", name, err)
		}
		root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{n}}
	} else if err := yaml.Unmarshal(data, &root); err != nil {
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
		case "secret":
			if fv.Kind != yaml.ScalarNode || fv.Tag != "!!bool" {
				return e, fmt.Errorf("secret: want true or false, got %q", fv.Value)
			}
			e.Secret = fv.Value == "true"
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
			return e, fmt.Errorf("unknown field %q (want type, encoding, value, secret)", f.Value)
		}
	}
	if valueNode == nil {
		if e.Secret {
			e.LeftOut = true
			return e, nil
		}
		return e, errors.New("no value field (only a secret's entry may leave it out)")
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

// isJSONObject reports whether data is one JSON object (an export written
// with -o json).
func isJSONObject(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(data)
}

// jsonNode reads a JSON document into the YAML node tree that YAML's
// parser would give for it, strings kept exactly as JSON decodes them.
func jsonNode(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	line := func() int { return 1 + bytes.Count(data[:dec.InputOffset()], []byte("\n")) }
	var value func() (*yaml.Node, error)
	value = func() (*yaml.Node, error) {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		n := &yaml.Node{Kind: yaml.ScalarNode, Line: line()}
		switch t := tok.(type) {
		case json.Delim:
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
			if t == '[' {
				n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
			}
			for dec.More() {
				if n.Kind == yaml.MappingNode {
					k, err := dec.Token()
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.(string), Line: line()})
				}
				c, err := value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, c)
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return nil, err
			}
		case string:
			n.Tag, n.Value = "!!str", t
		case json.Number:
			n.Tag, n.Value = "!!float", t.String()
			if _, err := t.Int64(); err == nil {
				n.Tag = "!!int"
			}
		case bool:
			n.Tag, n.Value = "!!bool", strconv.FormatBool(t)
		case nil:
			n.Tag, n.Value = "!!null", "null"
		}
		return n, nil
	}
	return value()
}
