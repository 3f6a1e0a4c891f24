package config

import (
	"maps"
	"slices"
	"time"
)

// Value is what a path holds at one revision: a key's value, the keys
// under a prefix, both, or nothing. It is a small immutable handle into
// the client's copy, returned by value and safe to keep and share; it
// keeps reading the revision it came from.
//
// The typed getters read the key's own value and return def when the path
// is not a key or its value does not convert. They do not allocate, except
// StringSlice, StringMap and Bytes, which return copies. A JSON or YAML
// document that holds one string reads as that string; other documents
// read as their text (String), or as lists and maps (StringSlice,
// StringMap).
type Value struct {
	n   *node
	rev int64
}

func (v Value) entry() *entry {
	if v.n == nil {
		return nil
	}
	return v.n.e
}

// Get returns the value at path under v's path, at v's revision: with v a prefix's value from
// a Watcher, v.Get("db", "host") reads that key as the update left it, even when the client's
// copy has moved on. Segments are as for Client.Get.
func (v Value) Get(path ...string) Value {
	return Value{n: lookup(v.n, path), rev: v.rev}
}

// Exists reports whether the path is a key, or a prefix with at least one
// key under it.
func (v Value) Exists() bool {
	return v.n != nil && (v.n.e != nil || len(v.n.children) > 0)
}

// Rev returns the revision of configd's store at which the value was read.
func (v Value) Rev() int64 { return v.rev }

// ContentType returns the key's content type (text/plain,
// application/json, application/yaml or application/octet-stream), or ""
// when the path is not a key.
func (v Value) ContentType() string {
	if e := v.entry(); e != nil {
		return e.contentType
	}
	return ""
}

// String returns the value as text, or def when the path is not a key. A
// JSON or YAML document that holds one string ("\"blue\"") returns that
// string (blue); any other value returns its text as stored.
func (v Value) String(def string) string {
	if e := v.entry(); e != nil {
		return e.text
	}
	return def
}

// Int returns the value as a base-10 integer ("42", also "42.0" and the
// JSON number 42), or def.
func (v Value) Int(def int) int {
	if e := v.entry(); e != nil && e.intOK {
		return e.i
	}
	return def
}

// Bool returns the value as a boolean (what strconv.ParseBool accepts,
// and yes/no, on/off in any case), or def.
func (v Value) Bool(def bool) bool {
	if e := v.entry(); e != nil && e.boolOK {
		return e.b
	}
	return def
}

// Float64 returns the value as a floating-point number, or def.
func (v Value) Float64(def float64) float64 {
	if e := v.entry(); e != nil && e.floatOK {
		return e.f
	}
	return def
}

// Duration returns the value as a duration in time.ParseDuration's syntax
// ("250ms", "1m30s"), or def. A bare number other than 0 has no unit and
// returns def.
func (v Value) Duration(def time.Duration) time.Duration {
	if e := v.entry(); e != nil && e.durOK {
		return e.d
	}
	return def
}

// StringSlice returns a new slice of the value's items: the elements of a
// JSON or YAML list (non-string elements as JSON text), or the
// comma-separated items of any other value, trimmed, empty ones dropped.
// It returns def when the path is not a key or holds a JSON or YAML object.
func (v Value) StringSlice(def []string) []string {
	if e := v.entry(); e != nil && e.listOK {
		return slices.Clone(e.list)
	}
	return def
}

// StringMap returns a new map of the value's members: a JSON or YAML
// object (non-string members as JSON text), or text of the form
// "k1=v1, k2=v2". When the path is a prefix rather than such a key, the
// map holds its direct children that are keys, by name. Otherwise it
// returns def.
func (v Value) StringMap(def map[string]string) map[string]string {
	e := v.entry()
	if e != nil && e.mapOK {
		return maps.Clone(e.smap)
	}
	if v.n == nil {
		return def
	}
	var out map[string]string
	for name, child := range v.n.children {
		if child.e != nil {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = child.e.text
		}
	}
	if out == nil {
		return def
	}
	return out
}

// Bytes returns a copy of the value as stored, or nil when the path is not
// a key.
func (v Value) Bytes() []byte {
	if e := v.entry(); e != nil {
		return append([]byte{}, e.raw...)
	}
	return nil
}

// Scan decodes the value into the struct, map, slice or scalar that ptr
// points to, as encoding/json would decode the value's JSON form, but
// leniently.
//
// A key decodes from its value: JSON as JSON, YAML converted to JSON, any
// other value as a JSON string. A prefix decodes as an object nested by
// '/' segments: with keys app/db/host and app/db/timeout,
// Get("app").Scan(&cfg) fills cfg.DB.Host and cfg.DB.Timeout. A key that
// also has keys under it puts its own value in the member "_value".
//
// Fields are matched by their json tag or their name, case-insensitively;
// members without a field are ignored. Text converts to what the field
// needs: "5" to an int or a float, "true" to a bool, "5s" to a
// time.Duration, "a, b" to a []string, and any text to a type that
// implements encoding.TextUnmarshaler; numbers convert to strings. A JSON
// number decodes into a time.Duration as nanoseconds, as encoding/json
// does.
//
// When the path holds nothing, Scan returns ErrNotFound and leaves ptr as
// it is. A value that can't be converted is an error naming the member;
// members decoded before it keep their new values.
func (v Value) Scan(ptr any) error {
	if !v.Exists() {
		return ErrNotFound
	}
	return decodeInto(v.n.tree(), ptr)
}
