package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/source"
)

// Format is the syntax of a structured document.
type Format string

// The formats Flatten reads.
const (
	FormatYAML Format = "yaml"
	FormatJSON Format = "json"
)

// FormatOf returns the format of a file by its extension (.yaml, .yml,
// .json, in any case), and false for any other file.
func FormatOf(filename string) (Format, bool) {
	switch strings.ToLower(filepath.Ext(filename)) {
	case ".yaml", ".yml":
		return FormatYAML, true
	case ".json":
		return FormatJSON, true
	}
	return "", false
}

// ErrDocument is wrapped by every error about a document that cannot be
// read at all: not UTF-8, a syntax error, duplicate keys, a top-level value
// that is not a map where a map is needed.
var ErrDocument = errors.New("invalid document")

const (
	maxDepth = 1000 // nesting; far beyond what a valid key allows
)

// Flatten reads one YAML or JSON document and returns its keys.
//
// The mapping from a document to keys:
//
//   - A map becomes key paths: {db: {host: x}} gives db/host. A map key that
//     contains '/' names a deeper path: {"db/host": x} also gives db/host.
//   - A scalar becomes a text/plain value holding its text as written:
//     port: 5432 gives "5432", ratio: 1.50 gives "1.50", on: yes gives
//     "yes". A null (key: or key: null) gives the empty value.
//   - A list becomes one application/json value, compact, in document
//     order: hosts: [a, b] gives ["a","b"]. Maps inside lists stay JSON
//     objects.
//   - An empty map gives no key.
//   - YAML anchors, aliases and merge keys (<<) are resolved; explicit keys
//     win over merged ones.
//
// A key and keys under it can coexist ({"db": x, "db/host": y} gives both
// db and db/host, as configd's keyspace allows), so a scalar and a map at
// one path is not an error. When two entries give the same key (say
// {"db/host": x, "db": {"host": y}}), the first in document order wins and
// the other is reported as a Warning. A key that keyspace.Validate refuses
// (an empty or "." segment, a control character) is left out with a
// Warning. The document as a whole is refused, with an error wrapping
// ErrDocument, when it is not valid UTF-8, does not parse, holds more than
// one YAML document, repeats a key within one map, or is not a map at the
// top (nothing would name its value). An empty document gives no keys.
func Flatten(data []byte, f Format) (map[string]source.Value, []source.Warning, error) {
	b := source.NewBuilder("", 0)
	if err := addDocument(b, "document", "", data, f); err != nil {
		return nil, nil, err
	}
	snap, w := b.Result()
	return snap, w, nil
}

// addDocument flattens a document as Flatten describes and adds its keys
// under base ("" for the root, or a key such as a file's name). where names
// the document in warnings and errors. When base is not empty the top level
// may be a scalar or a list: it becomes the value of base itself. On error
// nothing is added.
func addDocument(b *source.Builder, where, base string, data []byte, f Format) error {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if !utf8.Valid(data) {
		off := invalidUTF8At(data)
		return fmt.Errorf("%w: %s: not valid UTF-8 (first bad byte at offset %d); configd reads UTF-8 only", ErrDocument, where, off)
	}
	var entries []flatEntry
	var err error
	switch f {
	case FormatYAML:
		entries, err = flattenYAML(where, data)
	case FormatJSON:
		entries, err = flattenJSON(where, data)
	default:
		return fmt.Errorf("%w: %s: unknown format %q", ErrDocument, where, f)
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.warn != "" {
			b.Warn(e.where, e.warn)
			continue
		}
		if base == "" && len(e.path) == 0 {
			return fmt.Errorf("%w: %s: the document is a single value, not a map, so no key names it", ErrDocument, where)
		}
		key := joinPath(base, e.path)
		b.Add(e.where, key, e.value)
	}
	return nil
}

func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

func joinPath(base string, path []string) string {
	parts := make([]string, 0, len(path)+1)
	if base != "" {
		parts = append(parts, base)
	}
	parts = append(parts, path...)
	return strings.Join(parts, "/")
}

// flatEntry is one key of a document, or one warning, in document order.
type flatEntry struct {
	path  []string
	value source.Value
	where string
	warn  string
}

// ---- YAML ----

type yamlWalker struct {
	where   string
	entries []flatEntry
	budget  int // nodes left to visit: bounds alias expansion
}

func flattenYAML(where string, data []byte) ([]flatEntry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrDocument, where, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrDocument, where, err)
		}
		return nil, fmt.Errorf("%w: %s: holds more than one YAML document (line %d starts another); use one document per file", ErrDocument, where, extra.Line)
	}
	w := &yamlWalker{where: where, budget: 64*len(data) + 1024}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if err := w.walk(root, nil, 0); err != nil {
		return nil, err
	}
	return w.entries, nil
}

func (w *yamlWalker) at(n *yaml.Node) string { return fmt.Sprintf("%s:%d", w.where, n.Line) }

// visit charges one node to the budget and follows aliases.
func (w *yamlWalker) visit(n *yaml.Node, depth int) (*yaml.Node, error) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, fmt.Errorf("%w: %s: unresolved alias", ErrDocument, w.at(n))
		}
		n = n.Alias
		if w.budget--; w.budget < 0 {
			break
		}
	}
	if w.budget--; w.budget < 0 {
		return nil, fmt.Errorf("%w: %s: aliases expand to too many values", ErrDocument, w.where)
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: %s: nested more than %d levels deep", ErrDocument, w.at(n), maxDepth)
	}
	return n, nil
}

func (w *yamlWalker) walk(n *yaml.Node, path []string, depth int) error {
	n, err := w.visit(n, depth)
	if err != nil {
		return err
	}
	switch n.Kind {
	case yaml.MappingNode:
		entries, err := w.mapEntries(n, depth)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := w.walk(e.val, append(path[:len(path):len(path)], e.key), depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		v, err := w.toJSON(n, depth)
		if err != nil {
			return err
		}
		data, err := encodeJSON(v)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrDocument, w.at(n), err)
		}
		w.entries = append(w.entries, flatEntry{path: path, value: source.Value{Data: data, ContentType: source.TypeJSON}, where: w.at(n)})
	case yaml.ScalarNode:
		text := n.Value
		if n.ShortTag() == "!!null" {
			text = ""
		}
		w.entries = append(w.entries, flatEntry{path: path, value: source.Value{Data: []byte(text), ContentType: source.TypeText}, where: w.at(n)})
	default:
		return fmt.Errorf("%w: %s: unexpected YAML node", ErrDocument, w.at(n))
	}
	return nil
}

type yamlEntry struct {
	key string
	val *yaml.Node
}

// mapEntries lists a mapping's entries in document order, explicit keys
// first, then those brought in by merge keys that no explicit key overrides.
func (w *yamlWalker) mapEntries(n *yaml.Node, depth int) ([]yamlEntry, error) {
	seen := map[string]int{}
	var out []yamlEntry
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := w.visit(n.Content[i], depth+1)
		if err != nil {
			return nil, err
		}
		v := n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.entries = append(w.entries, flatEntry{where: w.at(k), warn: "left out: a map or a list used as a map key"})
			continue
		}
		if line, dup := seen[k.Value]; dup {
			return nil, fmt.Errorf("%w: %s: key %q is repeated (first at line %d)", ErrDocument, w.at(k), k.Value, line)
		}
		seen[k.Value] = k.Line
		out = append(out, yamlEntry{key: k.Value, val: v})
	}
	for _, m := range merges {
		m, err := w.visit(m, depth+1)
		if err != nil {
			return nil, err
		}
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			s, err := w.visit(s, depth+1)
			if err != nil {
				return nil, err
			}
			if s.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("%w: %s: a merge key (<<) needs a map or a list of maps", ErrDocument, w.at(s))
			}
			inner, err := w.mapEntries(s, depth+1)
			if err != nil {
				return nil, err
			}
			for _, e := range inner {
				if _, ok := seen[e.key]; ok {
					continue
				}
				seen[e.key] = s.Line
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// toJSON converts a YAML node to the generic JSON tree of encodeJSON.
func (w *yamlWalker) toJSON(n *yaml.Node, depth int) (any, error) {
	n, err := w.visit(n, depth)
	if err != nil {
		return nil, err
	}
	switch n.Kind {
	case yaml.SequenceNode:
		arr := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := w.toJSON(c, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	case yaml.MappingNode:
		entries, err := w.mapEntries(n, depth)
		if err != nil {
			return nil, err
		}
		obj := &jsonObject{}
		for _, e := range entries {
			v, err := w.toJSON(e.val, depth+1)
			if err != nil {
				return nil, err
			}
			obj.keys = append(obj.keys, e.key)
			obj.vals = append(obj.vals, v)
		}
		return obj, nil
	case yaml.ScalarNode:
		return yamlScalarJSON(n), nil
	}
	return nil, fmt.Errorf("%w: %s: unexpected YAML node", ErrDocument, w.at(n))
}

func yamlScalarJSON(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		if b, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
			return b
		}
	case "!!int", "!!float":
		if isJSONNumber(n.Value) {
			return json.Number(n.Value)
		}
		var i int64
		if n.Decode(&i) == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return n.Value
}

func isJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil && string(n) == s
}

// ---- JSON ----

type jsonWalker struct {
	where   string
	dec     *json.Decoder
	data    []byte
	entries []flatEntry
}

func flattenJSON(where string, data []byte) ([]flatEntry, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := &jsonWalker{where: where, dec: dec, data: data}
	v, err := w.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, w.errorf("unexpected data after the top-level value")
	}
	w.flatten(v, nil)
	return w.entries, nil
}

func (w *jsonWalker) errorf(format string, args ...any) error {
	line := 1 + bytes.Count(w.data[:min(int(w.dec.InputOffset()), len(w.data))], []byte("\n"))
	return fmt.Errorf("%w: %s:%d: %s", ErrDocument, w.where, line, fmt.Sprintf(format, args...))
}

// value reads one JSON value into the generic tree, refusing repeated keys.
func (w *jsonWalker) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, w.errorf("nested more than %d levels deep", maxDepth)
	}
	tok, err := w.dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, w.errorf("%v", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := &jsonObject{}
			seen := map[string]bool{}
			for w.dec.More() {
				kt, err := w.dec.Token()
				if err != nil {
					return nil, w.errorf("%v", err)
				}
				line := 1 + bytes.Count(w.data[:w.dec.InputOffset()], []byte("\n"))
				k, ok := kt.(string)
				if !ok {
					return nil, w.errorf("object key is not a string")
				}
				if seen[k] {
					return nil, w.errorf("key %q is repeated", k)
				}
				seen[k] = true
				v, err := w.value(depth + 1)
				if err != nil {
					return nil, err
				}
				obj.keys = append(obj.keys, k)
				obj.vals = append(obj.vals, v)
				obj.lines = append(obj.lines, line)
			}
			if _, err := w.dec.Token(); err != nil {
				return nil, w.errorf("%v", err)
			}
			return obj, nil
		case '[':
			arr := []any{}
			for w.dec.More() {
				v, err := w.value(depth + 1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := w.dec.Token(); err != nil {
				return nil, w.errorf("%v", err)
			}
			return arr, nil
		}
		return nil, w.errorf("unexpected %v", t)
	default:
		return tok, nil // string, json.Number, bool, nil
	}
}

func (w *jsonWalker) flatten(v any, path []string) {
	obj, ok := v.(*jsonObject)
	if !ok {
		w.flattenAt(v, path, w.where)
		return
	}
	for i, k := range obj.keys {
		at := fmt.Sprintf("%s:%d", w.where, obj.lines[i])
		w.flattenAt(obj.vals[i], append(path[:len(path):len(path)], k), at)
	}
}

func (w *jsonWalker) flattenAt(v any, path []string, at string) {
	switch t := v.(type) {
	case *jsonObject:
		w.flatten(t, path)
	case []any:
		data, _ := encodeJSON(t) // a tree read from JSON always encodes
		w.entries = append(w.entries, flatEntry{path: path, value: source.Value{Data: data, ContentType: source.TypeJSON}, where: at})
	case nil:
		w.entries = append(w.entries, flatEntry{path: path, value: source.Value{Data: []byte{}, ContentType: source.TypeText}, where: at})
	case string:
		w.entries = append(w.entries, flatEntry{path: path, value: source.Value{Data: []byte(t), ContentType: source.TypeText}, where: at})
	case json.Number:
		w.entries = append(w.entries, flatEntry{path: path, value: source.Value{Data: []byte(t), ContentType: source.TypeText}, where: at})
	case bool:
		w.entries = append(w.entries, flatEntry{path: path, value: source.Value{Data: []byte(strconv.FormatBool(t)), ContentType: source.TypeText}, where: at})
	}
}

// ---- JSON output ----

// jsonObject is a JSON object that keeps its keys in document order.
type jsonObject struct {
	keys  []string
	vals  []any
	lines []int // JSON input only: the line of each key
}

// encodeJSON writes a generic tree (nil, bool, string, json.Number, []any,
// *jsonObject) as compact JSON.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeJSON(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(t))
	case json.Number:
		buf.WriteString(string(t))
	case string:
		writeJSONString(buf, t)
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case *jsonObject:
		buf.WriteByte('{')
		for i, k := range t.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(buf, k)
			buf.WriteByte(':')
			if err := writeJSON(buf, t.vals[i]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return fmt.Errorf("cannot encode %T as JSON", v)
	}
	return nil
}

func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode's newline
}
