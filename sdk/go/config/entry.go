package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
)

// entry is one key's value with every typed form the getters can return,
// computed once when the value is applied so that reads only load fields.
// It is immutable.
type entry struct {
	raw         []byte
	contentType string
	createRev   int64
	modRev      int64
	version     int64

	// text is the scalar form: the value itself, except that a JSON or
	// YAML document holding one string is that string.
	text string
	// tree is the value as Scan sees it: JSON and YAML decoded (numbers as
	// json.Number, maps as map[string]any), anything else the text.
	tree any

	list    []string
	listOK  bool
	smap    map[string]string
	mapOK   bool
	i       int
	intOK   bool
	f       float64
	floatOK bool
	b       bool
	boolOK  bool
	d       time.Duration
	durOK   bool
}

func newEntry(raw []byte, contentType string, createRev, modRev, version int64) *entry {
	if contentType == "" {
		contentType = api.TypeText
	}
	e := &entry{raw: raw, contentType: contentType, createRev: createRev, modRev: modRev, version: version}
	e.tree, e.text = string(raw), string(raw)
	switch contentType {
	case api.TypeJSON:
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // keep 64-bit integers exact
		var v any
		if err := dec.Decode(&v); err == nil {
			e.tree = v
			if s, ok := v.(string); ok {
				e.text = s
			} else {
				e.text = string(bytes.TrimSpace(raw))
			}
		}
	case api.TypeYAML:
		var v any
		if err := yaml.Unmarshal(raw, &v); err == nil {
			v = api.JSONCompatible(v)
			e.tree = v
			switch v.(type) {
			case map[string]any, []any:
				e.text = string(bytes.TrimSpace(raw))
			default:
				e.text = textOf(v)
			}
		}
	}

	s := strings.TrimSpace(e.text)
	if n, err := strconv.ParseInt(s, 10, strconv.IntSize); err == nil {
		e.i, e.intOK = int(n), true
	} else if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && f >= math.MinInt && f < math.MaxInt {
		e.i, e.intOK = int(f), true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		e.f, e.floatOK = f, true
	}
	e.b, e.boolOK = parseBool(s)
	if d, err := time.ParseDuration(s); err == nil {
		e.d, e.durOK = d, true
	}
	e.list, e.listOK = listOf(e.tree, e.text)
	e.smap, e.mapOK = mapOf(e.tree, e.text)
	return e
}

// same reports whether a and b hold the same value.
func (a *entry) same(b *entry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.contentType == b.contentType && bytes.Equal(a.raw, b.raw)
}

// parseBool accepts what strconv.ParseBool does, and yes/no, on/off in any
// case.
func parseBool(s string) (bool, bool) {
	if b, err := strconv.ParseBool(s); err == nil {
		return b, true
	}
	switch strings.ToLower(s) {
	case "yes", "y", "on":
		return true, true
	case "no", "n", "off":
		return false, true
	}
	return false, false
}

// listOf is the value as a list: the items of a JSON or YAML list, or the
// comma-separated items of text (trimmed, empty ones dropped).
func listOf(tree any, text string) ([]string, bool) {
	switch t := tree.(type) {
	case []any:
		out := make([]string, len(t))
		for i, x := range t {
			out[i] = textOf(x)
		}
		return out, true
	case map[string]any:
		return nil, false
	}
	out := []string{}
	for item := range strings.SplitSeq(text, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out, true
}

// mapOf is the value as a map of strings: a JSON or YAML object, or text
// of the form "k1=v1, k2=v2".
func mapOf(tree any, text string) (map[string]string, bool) {
	switch t := tree.(type) {
	case map[string]any:
		out := make(map[string]string, len(t))
		for k, x := range t {
			out[k] = textOf(x)
		}
		return out, true
	case []any:
		return nil, false
	}
	if strings.TrimSpace(text) == "" {
		return nil, false
	}
	out := map[string]string{}
	for item := range strings.SplitSeq(text, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, false
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, true
}

// textOf is a decoded value as text: strings as they are, numbers and
// booleans as they would be written, lists and objects as JSON.
func textOf(x any) string {
	switch x := x.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprint(x)
	}
	return string(b)
}
