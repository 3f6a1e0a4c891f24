package config

import (
	"encoding"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// decodeInto decodes src, a tree of map[string]any, []any, string,
// json.Number, bool and nil (as mirror.tree builds), into what ptr points
// to. It never modifies src.
func decodeInto(src any, ptr any) error {
	rv := reflect.ValueOf(ptr)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config: Scan needs a non-nil pointer, got %T", ptr)
	}
	return decode(src, rv.Elem(), "")
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// scanError names the member whose value could not be decoded.
func scanError(path string, src any, dst reflect.Value, err error) error {
	where := "the value"
	if path != "" {
		where = strconv.Quote(path)
	}
	msg := fmt.Sprintf("config: Scan: cannot decode %s (%s) into %s", where, describe(src), dst.Type())
	if err != nil {
		return fmt.Errorf("%s: %w", msg, err)
	}
	return fmt.Errorf("%s", msg)
}

func describe(src any) string {
	switch s := src.(type) {
	case nil:
		return "null"
	case string:
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return strconv.Quote(s)
	case json.Number:
		return "number " + s.String()
	case bool:
		return "bool " + strconv.FormatBool(s)
	case map[string]any:
		return "object"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", src)
}

func decode(src any, dst reflect.Value, path string) error {
	if dst.Kind() == reflect.Pointer {
		if src == nil {
			dst.SetZero()
			return nil
		}
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return decode(src, dst.Elem(), path)
	}
	if dst.CanAddr() {
		pt := dst.Addr().Type()
		if s, ok := src.(string); ok && pt.Implements(textUnmarshalerType) {
			if err := dst.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
				return scanError(path, src, dst, err)
			}
			return nil
		}
		if pt.Implements(jsonUnmarshalerType) {
			b, err := json.Marshal(src)
			if err == nil {
				err = dst.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b)
			}
			if err != nil {
				return scanError(path, src, dst, err)
			}
			return nil
		}
	}
	if dst.Type() == durationType {
		return decodeDuration(src, dst, path)
	}

	switch dst.Kind() {
	case reflect.Interface:
		if src == nil {
			dst.SetZero()
			return nil
		}
		c := reflect.ValueOf(plain(src))
		if !c.Type().AssignableTo(dst.Type()) {
			return scanError(path, src, dst, nil)
		}
		dst.Set(c)
	case reflect.String:
		if src == nil {
			dst.SetZero()
			return nil
		}
		dst.SetString(textOf(src))
	case reflect.Bool:
		s, ok := scalar(src)
		b, okb := parseBool(strings.TrimSpace(s))
		if !ok || !okb {
			if src == nil {
				dst.SetZero()
				return nil
			}
			return scanError(path, src, dst, nil)
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if src == nil {
			dst.SetZero()
			return nil
		}
		n, err := toInt(src)
		if err == nil && dst.OverflowInt(n) {
			err = fmt.Errorf("%d overflows %s", n, dst.Type())
		}
		if err != nil {
			return scanError(path, src, dst, err)
		}
		dst.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if src == nil {
			dst.SetZero()
			return nil
		}
		n, err := toUint(src)
		if err == nil && dst.OverflowUint(n) {
			err = fmt.Errorf("%d overflows %s", n, dst.Type())
		}
		if err != nil {
			return scanError(path, src, dst, err)
		}
		dst.SetUint(n)
	case reflect.Float32, reflect.Float64:
		if src == nil {
			dst.SetZero()
			return nil
		}
		s, ok := scalar(src)
		f, err := strconv.ParseFloat(strings.TrimSpace(s), dst.Type().Bits())
		if !ok || err != nil {
			return scanError(path, src, dst, nil)
		}
		dst.SetFloat(f)
	case reflect.Slice:
		return decodeSlice(src, dst, path)
	case reflect.Array:
		items, ok := itemsOf(src)
		if !ok {
			return scanError(path, src, dst, nil)
		}
		for i := 0; i < dst.Len(); i++ {
			if i >= len(items) {
				dst.Index(i).SetZero()
				continue
			}
			if err := decode(items[i], dst.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		return decodeMap(src, dst, path)
	case reflect.Struct:
		return decodeStruct(src, dst, path)
	default:
		return scanError(path, src, dst, nil)
	}
	return nil
}

func decodeDuration(src any, dst reflect.Value, path string) error {
	switch s := src.(type) {
	case nil:
		dst.SetZero()
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return scanError(path, src, dst, err)
		}
		dst.SetInt(int64(d))
	default:
		n, err := toInt(src)
		if err != nil {
			return scanError(path, src, dst, err)
		}
		dst.SetInt(n)
	}
	return nil
}

func decodeSlice(src any, dst reflect.Value, path string) error {
	if src == nil {
		dst.SetZero()
		return nil
	}
	if s, ok := src.(string); ok && dst.Type().Elem().Kind() == reflect.Uint8 {
		dst.SetBytes([]byte(s))
		return nil
	}
	items, ok := itemsOf(src)
	if !ok {
		return scanError(path, src, dst, nil)
	}
	out := reflect.MakeSlice(dst.Type(), len(items), len(items))
	for i, item := range items {
		if err := decode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	dst.Set(out)
	return nil
}

// itemsOf is src as a list: a list, the comma-separated items of text, or
// one scalar.
func itemsOf(src any) ([]any, bool) {
	switch s := src.(type) {
	case []any:
		return s, true
	case map[string]any:
		return nil, false
	case string:
		if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") {
			var v []any
			if json.Unmarshal([]byte(t), &v) == nil {
				return v, true
			}
		}
		list, _ := listOf(s, s)
		out := make([]any, len(list))
		for i, x := range list {
			out[i] = x
		}
		return out, true
	}
	return []any{src}, true
}

// objectOf is src as an object: an object, or text that parses as a JSON
// object.
func objectOf(src any) (map[string]any, bool) {
	switch s := src.(type) {
	case map[string]any:
		return s, true
	case string:
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) == nil {
			return m, true
		}
	}
	return nil, false
}

func decodeMap(src any, dst reflect.Value, path string) error {
	if src == nil {
		dst.SetZero()
		return nil
	}
	m, ok := objectOf(src)
	if !ok {
		return scanError(path, src, dst, nil)
	}
	t := dst.Type()
	if dst.IsNil() {
		dst.Set(reflect.MakeMapWithSize(t, len(m)))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := reflect.New(t.Key()).Elem()
		if err := decode(k, key, joinKey(path, k)); err != nil {
			return err
		}
		elem := reflect.New(t.Elem()).Elem()
		if err := decode(m[k], elem, joinKey(path, k)); err != nil {
			return err
		}
		dst.SetMapIndex(key, elem)
	}
	return nil
}

func decodeStruct(src any, dst reflect.Value, path string) error {
	if src == nil {
		return nil
	}
	m, ok := objectOf(src)
	if !ok {
		return scanError(path, src, dst, nil)
	}
	fields := fieldsOf(dst.Type())
	for _, k := range slices.Sorted(maps.Keys(m)) {
		f, ok := fields.byName[k]
		if !ok {
			f, ok = fields.byFold[strings.ToLower(k)]
		}
		if !ok {
			continue
		}
		fv, ok := fieldByIndex(dst, f.index)
		if !ok {
			continue
		}
		if err := decode(m[k], fv, joinKey(path, k)); err != nil {
			return err
		}
	}
	return nil
}

// fieldByIndex is dst.FieldByIndex, allocating nil embedded pointers on
// the way; ok is false for an unexported embedded pointer it can't set.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, false
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

type field struct {
	name  string
	index []int
}

type structFields struct {
	byName map[string]field
	byFold map[string]field
}

var fieldCache sync.Map // reflect.Type → *structFields

// fieldsOf lists the settable fields of struct type t by the names Scan
// matches: the json tag's name, else the field name. Fields of embedded
// structs are promoted unless a shallower field has the name, as in
// encoding/json.
func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	sf := &structFields{byName: map[string]field{}, byFold: map[string]field{}}
	depth := map[string]int{}
	var collect func(t reflect.Type, index []int, visited map[reflect.Type]bool)
	collect = func(t reflect.Type, index []int, visited map[reflect.Type]bool) {
		if visited[t] {
			return
		}
		visited[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			idx := append(slices.Clip(index), i)
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
				collect(ft, idx, visited)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if d, seen := depth[name]; seen && d <= len(idx) {
				continue
			}
			depth[name] = len(idx)
			sf.byName[name] = field{name: name, index: idx}
			fold := strings.ToLower(name)
			if old, seen := sf.byFold[fold]; !seen || len(old.index) > len(idx) {
				sf.byFold[fold] = field{name: name, index: idx}
			}
		}
	}
	collect(t, nil, map[reflect.Type]bool{})
	f, _ := fieldCache.LoadOrStore(t, sf)
	return f.(*structFields)
}

// scalar is src as text when it is a string, a number or a bool.
func scalar(src any) (string, bool) {
	switch s := src.(type) {
	case string:
		return s, true
	case json.Number:
		return s.String(), true
	case bool:
		return strconv.FormatBool(s), true
	}
	return "", false
}

func toInt(src any) (int64, error) {
	s, ok := scalar(src)
	if !ok {
		return 0, fmt.Errorf("not a number")
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, fmt.Errorf("not an integer")
	}
	return int64(f), nil
}

func toUint(src any) (uint64, error) {
	s, ok := scalar(src)
	if !ok {
		return 0, fmt.Errorf("not a number")
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f >= math.MaxUint64 {
		return 0, fmt.Errorf("not an unsigned integer")
	}
	return uint64(f), nil
}

// plain is a deep copy of src for an interface target, with numbers as
// float64 as encoding/json would give them.
func plain(src any) any {
	switch s := src.(type) {
	case map[string]any:
		m := make(map[string]any, len(s))
		for k, v := range s {
			m[k] = plain(v)
		}
		return m
	case []any:
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = plain(v)
		}
		return out
	case json.Number:
		if f, err := s.Float64(); err == nil {
			return f
		}
		return s.String()
	}
	return src
}
