// Package setting declares a program's settings once and reads them from the command line,
// the environment and a YAML config file. It is the one settings mechanism of configd: the
// daemon's settings (server.Config: --data-dir, CONFIGD_DATA_DIR, data_dir, ...) and the RPC
// core's (sdk/go/micro: --registry, MICRO_REGISTRY, ...) are declared with it. Like package
// plugin it sits below both the daemon and the SDK and imports neither, so that an SDK user's
// binary links nothing of the daemon to read micro's flags.
//
// A Setting is declared by a typed constructor that binds it to the variable it sets, as
// package flag's StringVar does, with its flag name, its usage and the checks of its value:
//
//	t := setting.Table{
//		setting.String(&c.HTTPAddr, "http-addr", "host:port the HTTP API listens on", checkAddr).Expect("host:port"),
//		setting.Duration(&c.Timeout, "shutdown-timeout", "how long a shutdown waits", setting.MoreThan(time.Duration(0))),
//		setting.File(&c.TLSCert, "tls-cert", "PEM file of the certificate").WithKey("tls.cert"),
//	}.Env("CONFIGD_").Keys()
//
// The variable's value when the setting is declared is its default. From the flag name come its
// environment variable (Table.Env: CONFIGD_HTTP_ADDR) and its config-file key (Table.Keys:
// http_addr; a dotted key such as tls.cert sits in a section, tls:). Table.Load then lays the
// sources over the defaults, weakest first: the config file, the environment, the command line
// (Table.AddFlags). Each value is parsed by its type's one parser, whatever its source, and a
// bad one is an error that names its source (the flag, the variable, or the file, line and
// key) and what was expected. The config file is decoded strictly: an unknown key, a key given
// twice and a value of the wrong kind are errors too.
package setting

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Setting is one setting: a variable of the program, with the flag, the environment variable
// and the config-file key that set it. Build it with a typed constructor (String, File, Int,
// Float, Duration, Bool, List, Map, YAML) and adjust it with the With and No methods, which
// return the setting so that they chain.
type Setting struct {
	name   string // flag name, and the setting's name in messages
	env    string // environment variable; "" none
	key    string // config-file key; "" none
	usage  string
	expect string // what a value looks like, for messages

	noFlag, noEnv, noFile bool
	optional              bool // the zero value means "not set"
	raw                   bool // YAML: the file's node is handed to the decoder, errors and all

	v    value
	also []func() error
}

// value is the typed variable behind a setting.
type value interface {
	// parse parses text and checks the result, without storing it.
	parse(text string) (any, error)
	// node decodes a YAML value other than a scalar (a list, a mapping), without storing it;
	// ok is false when the type takes scalars only.
	node(n *yaml.Node) (v any, ok bool, err error)
	// checkValue checks a value from node (parse checks its own).
	checkValue(v any) error
	store(v any)
	// check checks the variable as it is.
	check() error
	format() string
	zero() bool
	isBool() bool
}

// typed is a value of type V at p.
type typed[V any] struct {
	p      *V
	parseF func(string) (V, error)
	nodeF  func(*yaml.Node) (V, error) // nil: scalars only
	fmtF   func(V) string
	checks []func(V) error
	boolF  bool
}

func (t *typed[V]) parse(text string) (any, error) {
	v, err := t.parseF(text)
	if err != nil {
		return nil, errNotParsed
	}
	return v, t.checkValue(v)
}

func (t *typed[V]) node(n *yaml.Node) (any, bool, error) {
	if t.nodeF == nil {
		return nil, false, nil
	}
	v, err := t.nodeF(n)
	return v, true, err
}

func (t *typed[V]) checkValue(v any) error {
	for _, c := range t.checks {
		if err := c(v.(V)); err != nil {
			return err
		}
	}
	return nil
}

func (t *typed[V]) store(v any)    { *t.p = v.(V) }
func (t *typed[V]) check() error   { return t.checkValue(*t.p) }
func (t *typed[V]) format() string { return t.fmtF(*t.p) }
func (t *typed[V]) zero() bool     { return reflect.ValueOf(t.p).Elem().IsZero() }
func (t *typed[V]) isBool() bool   { return t.boolF }

func newSetting[V any](p *V, name, usage, expect string, parse func(string) (V, error), format func(V) string, checks []func(V) error) *Setting {
	return &Setting{name: name, usage: usage, expect: expect,
		v: &typed[V]{p: p, parseF: parse, fmtF: format, checks: checks}}
}

// String is a setting of a string, taken as given.
func String(p *string, name, usage string, checks ...func(string) error) *Setting {
	return newSetting(p, name, usage, "a string", func(s string) (string, error) { return s, nil }, ident, checks)
}

// File is a setting naming a file (or nothing: ""); surrounding spaces are trimmed.
func File(p *string, name, usage string, checks ...func(string) error) *Setting {
	return newSetting(p, name, usage, "a file name", func(s string) (string, error) { return strings.TrimSpace(s), nil }, ident, checks)
}

// Int is a setting of a whole number.
func Int(p *int, name, usage string, checks ...func(int) error) *Setting {
	return newSetting(p, name, usage, "a whole number", func(s string) (int, error) { return strconv.Atoi(strings.TrimSpace(s)) }, strconv.Itoa, checks)
}

// Float is a setting of a number.
func Float(p *float64, name, usage string, checks ...func(float64) error) *Setting {
	return newSetting(p, name, usage, "a number", func(s string) (float64, error) { return strconv.ParseFloat(strings.TrimSpace(s), 64) },
		func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }, checks)
}

// Duration is a setting of a Go duration: 500ms, 10s, 1m.
func Duration(p *time.Duration, name, usage string, checks ...func(time.Duration) error) *Setting {
	return newSetting(p, name, usage, "a duration (such as 10s)", func(s string) (time.Duration, error) { return time.ParseDuration(strings.TrimSpace(s)) },
		time.Duration.String, checks)
}

// Bool is a setting of true or false; its flag takes no value (--auth), or one (--auth=false).
func Bool(p *bool, name, usage string) *Setting {
	s := newSetting(p, name, usage, "true or false", func(s string) (bool, error) { return strconv.ParseBool(strings.TrimSpace(s)) }, strconv.FormatBool, nil)
	s.v.(*typed[bool]).boolF = true
	return s
}

// List is a setting of a list of strings: items separated by commas in a flag or a variable
// (spaces around them trimmed, empty ones dropped), and in the config file that or a YAML list.
func List(p *[]string, name, usage string, checks ...func([]string) error) *Setting {
	s := newSetting(p, name, usage, "a list, or items separated by commas", func(s string) ([]string, error) { return splitList(s), nil },
		func(l []string) string { return strings.Join(l, ",") }, checks)
	s.v.(*typed[[]string]).nodeF = func(n *yaml.Node) ([]string, error) {
		if n.Kind != yaml.SequenceNode {
			return nil, errKind
		}
		var out []string
		for _, item := range n.Content {
			if item = resolve(item); item.Kind != yaml.ScalarNode {
				return nil, &lineError{item.Line, "an item is " + describe(item) + ", want a single value"}
			}
			if v := strings.TrimSpace(item.Value); v != "" {
				out = append(out, v)
			}
		}
		return out, nil
	}
	return s
}

// Map is a setting of string pairs: k=v pairs separated by commas in a flag or a variable, a
// mapping in the config file.
func Map(p *map[string]string, name, usage string, checks ...func(map[string]string) error) *Setting {
	s := newSetting(p, name, usage, "a mapping, or k=v pairs separated by commas", parsePairs, formatPairs, checks)
	s.v.(*typed[map[string]string]).nodeF = func(n *yaml.Node) (map[string]string, error) {
		if n.Kind != yaml.MappingNode {
			return nil, errKind
		}
		out := map[string]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
				return nil, &lineError{k.Line, "want a mapping of names to single values"}
			}
			out[k.Value] = scalarText(v)
		}
		return out, nil
	}
	return s
}

// YAML is a setting that only the config file sets, whose YAML value decode turns into the
// variable's: a list of sources, say. decode's errors are the file's, prefixed by its name
// only: they should give their line.
func YAML[V any](p *V, key, usage string, decode func(*yaml.Node) (V, error)) *Setting {
	noText := func(string) (V, error) { var zero V; return zero, errors.New("only the config file sets " + key) }
	s := newSetting(p, key, usage, "", noText, func(v V) string { return fmt.Sprint(v) }, nil)
	s.v.(*typed[V]).nodeF = decode
	s.key, s.noFlag, s.noEnv, s.raw = key, true, true, true
	return s
}

func ident(s string) string { return s }

func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parsePairs(v string) (map[string]string, error) {
	var md map[string]string // nil when v has no pair, as a list of none is
	for _, kv := range splitList(v) {
		if md == nil {
			md = map[string]string{}
		}
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not k=v", kv)
		}
		md[k] = val
	}
	return md, nil
}

func formatPairs(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// AtLeast is a check that a value is min or more.
func AtLeast[V cmp.Ordered](min V) func(V) error {
	return func(v V) error {
		if v < min {
			return fmt.Errorf("%v: want >= %v", v, min)
		}
		return nil
	}
}

// MoreThan is a check that a value is above floor.
func MoreThan[V cmp.Ordered](floor V) func(V) error {
	return func(v V) error {
		if v <= floor {
			return fmt.Errorf("%v: want > %v", v, floor)
		}
		return nil
	}
}

// Name returns the setting's name, which is its flag's.
func (s *Setting) Name() string { return s.name }

// Flag reports whether the setting has a flag.
func (s *Setting) Flag() bool { return !s.noFlag }

// Env returns the setting's environment variable, or "".
func (s *Setting) Env() string { return s.env }

// Key returns the setting's config-file key, or "".
func (s *Setting) Key() string { return s.key }

// Usage returns the setting's usage, as declared (AddFlags adds its variable and key).
func (s *Setting) Usage() string { return s.usage }

// Default returns the variable's value as text, as a flag's help shows it: "" for the zero
// value of an Optional setting.
func (s *Setting) Default() string {
	if s.optional && s.v.zero() {
		return ""
	}
	return s.v.format()
}

// WithEnv sets the setting's environment variable, instead of the one Table.Env derives.
func (s *Setting) WithEnv(name string) *Setting { s.env, s.noEnv = name, name == ""; return s }

// WithKey sets the setting's config-file key, instead of the one Table.Keys derives; a dotted
// key (tls.cert) sits in a section of the file (tls:).
func (s *Setting) WithKey(key string) *Setting { s.key, s.noFile = key, key == ""; return s }

// WithUsage replaces the setting's usage, for a program that takes another's setting with a
// meaning of its own.
func (s *Setting) WithUsage(usage string) *Setting { s.usage = usage; return s }

// Expect says what a value looks like, for messages ("host:port"), instead of the type's.
func (s *Setting) Expect(what string) *Setting { s.expect = what; return s }

// NoFlag takes away the setting's flag: the environment or the file sets it (a secret, say).
func (s *Setting) NoFlag() *Setting { s.noFlag = true; return s }

// NoFile takes away the setting's config-file key.
func (s *Setting) NoFile() *Setting { s.key, s.noFile = "", true; return s }

// Optional makes the zero value mean "not set": Check does not check it and help shows no
// default. A source that sets it still sets a value its checks accept.
func (s *Setting) Optional() *Setting { s.optional = true; return s }

// Also adds a check of the setting against others (a certificate needs its key), run by
// Table.Check once every source is applied.
func (s *Setting) Also(check func() error) *Setting { s.also = append(s.also, check); return s }

// label names the setting in Check's messages: its key, else its flag, else its variable.
func (s *Setting) label() string {
	switch {
	case s.key != "":
		return s.key
	case !s.noFlag:
		return "--" + s.name
	}
	return s.env
}

// set parses text, checks it and stores it.
func (s *Setting) set(text string) error {
	v, err := s.v.parse(text)
	if err != nil {
		return s.parseError(text, err)
	}
	s.v.store(v)
	return nil
}

// errNotParsed is the error of a text its type's parser refused.
var errNotParsed = errors.New("not parsed")

// parseError is the error of a text that did not parse (say what was expected) or did not
// pass a check (the check's error says).
func (s *Setting) parseError(text string, err error) error {
	if err == errNotParsed {
		return fmt.Errorf("want %s, got %q", s.expect, text)
	}
	return err
}

// check checks the variable as it is, then against the others.
func (s *Setting) check() error {
	if !(s.optional && s.v.zero()) {
		if err := s.v.check(); err != nil {
			return err
		}
	}
	for _, c := range s.also {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}
