package plugin

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/internal/yamlnode"
)

// DecodeError is a YAML value that does not fit the config it is decoded into.
type DecodeError struct {
	// Line is the line of the offending key or value, from 1.
	Line int
	// Field is the field's path from the mapping decoded ("endpoints", "tls.ca_file"), or ""
	// when the mapping itself is wrong.
	Field string
	// Problem says what is wrong and what was expected.
	Problem string
}

func (e *DecodeError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Detail()) }

// Detail is the error without its line: "field: problem", or the problem
// alone when the mapping itself is wrong. Callers that put the line
// elsewhere in their message use it.
func (e *DecodeError) Detail() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// DecodeYAML decodes the YAML mapping n into the structs that dst point to, each key into the
// field of that name (its yaml tag, or its name in lower case; `yaml:"-"` fields are not
// decoded, `yaml:",inline"` structs lend their fields). It is strict, so that a typo or a
// misplaced setting cannot go unnoticed: a key that no struct has, a key given twice, and a
// value of the wrong kind (a list where a string goes, `tls: yes` where a mapping goes) are
// errors (*DecodeError) that give the line, the field and what was expected. Structs nested
// in dst, directly or through a pointer, are decoded as strictly; other values by yaml.v3.
// Anchors, aliases and merge keys (<<) work as in yaml.v3: keys given explicitly win over
// merged ones. A null (or empty) n decodes nothing.
func DecodeYAML(n *yaml.Node, dst ...any) error {
	fields := fieldSet{}
	for _, d := range dst {
		v := reflect.ValueOf(d)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return fmt.Errorf("plugin: DecodeYAML into %T, not a pointer to a struct", d)
		}
		if err := fields.add(v.Elem()); err != nil {
			return err
		}
	}
	return decodeMapping(n, fields, "")
}

// Peek decodes the value of key in the mapping n into dst, a pointer, with
// the checks and messages of DecodeYAML, and reports whether n has key
// (written or merged); it looks at no other key. It lets a caller read the
// field that says how to decode the rest, such as a source's type, before
// decoding the rest. A key given twice is DecodeYAML's to report; Peek
// takes the first.
func Peek(n *yaml.Node, key string, dst any) (bool, error) {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false, fmt.Errorf("plugin: Peek into %T, not a pointer", dst)
	}
	n = resolve(n)
	if isNull(n) {
		return false, nil
	}
	if n.Kind != yaml.MappingNode {
		return false, &DecodeError{Line: n.Line, Problem: "want a mapping, got " + describeNode(n)}
	}
	explicit, merged, err := pairs(n, "")
	if err != nil {
		return false, err
	}
	for _, p := range append(explicit, merged...) {
		if p.key.Kind == yaml.ScalarNode && p.key.Value == key {
			return true, decodeValue(p.value, v.Elem(), key)
		}
	}
	return false, nil
}

// fieldSet is the fields a mapping may set, by key, in declaration order.
type fieldSet struct {
	byKey map[string]reflect.Value
	keys  []string
}

// add adds the fields of the struct v.
func (fs *fieldSet) add(v reflect.Value) error {
	if fs.byKey == nil {
		fs.byKey = map[string]reflect.Value{}
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		key, opts, _ := strings.Cut(tag, ",")
		if key == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			fv := v.Field(i)
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					fv.Set(reflect.New(fv.Type().Elem()))
				}
				fv = fv.Elem()
			}
			if fv.Kind() != reflect.Struct {
				return fmt.Errorf("plugin: %s.%s: only a struct can be inline", t, f.Name)
			}
			if err := fs.add(fv); err != nil {
				return err
			}
			continue
		}
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		if _, dup := fs.byKey[key]; dup {
			return fmt.Errorf("plugin: field %q is declared twice (%s.%s)", key, t, f.Name)
		}
		fs.byKey[key] = v.Field(i)
		fs.keys = append(fs.keys, key)
	}
	return nil
}

// The node helpers, shared with package setting's config-file decoder.
var (
	resolve      = yamlnode.Resolve
	isNull       = yamlnode.IsNull
	describeNode = yamlnode.Describe
)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeMapping sets fields from the mapping n, whose path (for messages) is path.
func decodeMapping(n *yaml.Node, fields fieldSet, path string) error {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &DecodeError{Line: n.Line, Field: path,
			Problem: fmt.Sprintf("want a mapping of %s, got %s", strings.Join(fields.keys, ", "), describeNode(n))}
	}
	explicit, merged, err := pairs(n, path)
	if err != nil {
		return err
	}
	set := map[string]int{} // key → line it was set on
	for _, p := range explicit {
		if p.key.Kind != yaml.ScalarNode {
			return &DecodeError{Line: p.key.Line, Field: path, Problem: fmt.Sprintf("a key is %s, want a field name", describeNode(p.key))}
		}
		k := p.key.Value
		if line, dup := set[k]; dup {
			return &DecodeError{Line: p.key.Line, Field: join(path, k), Problem: fmt.Sprintf("already set on line %d", line)}
		}
		set[k] = p.key.Line
		if err := decodeField(p, fields, path); err != nil {
			return err
		}
	}
	for _, p := range merged { // the first merged mapping that has a key wins, explicit keys over all
		if p.key.Kind != yaml.ScalarNode {
			return &DecodeError{Line: p.key.Line, Field: path, Problem: fmt.Sprintf("a key is %s, want a field name", describeNode(p.key))}
		}
		if _, done := set[p.key.Value]; done {
			continue
		}
		set[p.key.Value] = p.key.Line
		if err := decodeField(p, fields, path); err != nil {
			return err
		}
	}
	return nil
}

type pair struct{ key, value *yaml.Node }

// pairs returns the key-value pairs of the mapping n: those written in it, and those it merges
// (<<: *anchor, or a list of them) in the order that decides which wins.
func pairs(n *yaml.Node, path string) (explicit, merged []pair, err error) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!merge" {
			explicit = append(explicit, pair{k, v})
			continue
		}
		v = resolve(v)
		var from []*yaml.Node
		switch v.Kind {
		case yaml.MappingNode:
			from = []*yaml.Node{v}
		case yaml.SequenceNode:
			from = v.Content
		}
		for _, m := range from {
			if m = resolve(m); m.Kind != yaml.MappingNode {
				return nil, nil, &DecodeError{Line: k.Line, Field: path, Problem: "<< merges mappings only"}
			}
			e, mm, err := pairs(m, path)
			if err != nil {
				return nil, nil, err
			}
			merged = append(append(merged, e...), mm...)
		}
		if len(from) == 0 {
			return nil, nil, &DecodeError{Line: k.Line, Field: path, Problem: "<< merges mappings only"}
		}
	}
	return explicit, merged, nil
}

func decodeField(p pair, fields fieldSet, path string) error {
	k := p.key.Value
	f, ok := fields.byKey[k]
	if !ok {
		return &DecodeError{Line: p.key.Line, Field: join(path, k),
			Problem: fmt.Sprintf("unknown field (known: %s)", strings.Join(fields.keys, ", "))}
	}
	return decodeValue(p.value, f, join(path, k))
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// leafType reports whether values of t are decoded whole by yaml.v3 rather than field by
// field: anything but a plain struct.
func leafType(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return true
	}
	p := reflect.PointerTo(t)
	return p.Implements(yamlUnmarshalerType) || p.Implements(textUnmarshalerType) || t == reflect.TypeFor[time.Time]()
}

// decodeValue decodes n into the settable v, whose path is path.
func decodeValue(n *yaml.Node, v reflect.Value, path string) error {
	n = resolve(n)
	if isNull(n) {
		v.SetZero()
		return nil
	}
	t := v.Type()
	if t.Kind() == reflect.Pointer && !leafType(t.Elem()) {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		v, t = v.Elem(), t.Elem()
	}
	if !leafType(t) {
		var fields fieldSet
		if err := fields.add(v); err != nil {
			return err
		}
		return decodeMapping(n, fields, path)
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return &DecodeError{Line: n.Line, Field: path, Problem: err.Error()}
		}
		return &DecodeError{Line: n.Line, Field: path, Problem: fmt.Sprintf("want %s, got %s", describeType(t), describeNode(n))}
	}
	return nil
}

// describeType says what a value of t looks like in YAML: "a list of strings".
func describeType(t reflect.Type) string {
	one, _ := words(t)
	return one
}

// words names a value of t and several of them: "a string", "strings".
func words(t reflect.Type) (one, many string) {
	if t == durationType {
		return "a duration (such as 10s)", "durations"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return words(t.Elem())
	case reflect.String:
		return "a string", "strings"
	case reflect.Bool:
		return "true or false", "booleans"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer", "integers"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer >= 0", "integers >= 0"
	case reflect.Float32, reflect.Float64:
		return "a number", "numbers"
	case reflect.Slice, reflect.Array:
		_, elems := words(t.Elem())
		return "a list of " + elems, "lists"
	case reflect.Map:
		return "a mapping", "mappings"
	case reflect.Struct:
		var fs fieldSet
		if !leafType(t) && fs.add(reflect.New(t).Elem()) == nil {
			return "a mapping of " + strings.Join(fs.keys, ", "), "mappings"
		}
	}
	return "a " + t.String(), t.String() + " values"
}
