package setting

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/internal/yamlnode"
)

// Table is a program's settings. A program builds it fresh, bound to the variables it fills
// (its config struct's fields), each time it loads or checks them.
type Table []*Setting

// Env gives each setting that has no environment variable of its own (WithEnv) and not NoEnv
// one derived from its name: prefix, then the name upper-cased with dashes as underscores
// (CONFIGD_ and data-dir make CONFIGD_DATA_DIR). It returns t.
func (t Table) Env(prefix string) Table {
	for _, s := range t {
		if s.env == "" && !s.noEnv {
			s.env = prefix + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
		}
	}
	return t
}

// Keys gives each setting that has no config-file key of its own (WithKey) and not NoFile
// one derived from its name: dashes as underscores (data-dir makes data_dir). It returns t.
func (t Table) Keys() Table {
	for _, s := range t {
		if s.key == "" && !s.noFile {
			s.key = strings.ReplaceAll(s.name, "-", "_")
		}
	}
	return t
}

// NoFile takes away every setting's config-file key, for a command that reads no file. It
// returns t.
func (t Table) NoFile() Table {
	for _, s := range t {
		s.NoFile()
	}
	return t
}

// Lookup returns the setting called name, or nil.
func (t Table) Lookup(name string) *Setting {
	for _, s := range t {
		if s.name == name {
			return s
		}
	}
	return nil
}

// Only returns the settings called names, in that order. A name t does not have is a bug of
// the caller: Only panics.
func (t Table) Only(names ...string) Table {
	out := make(Table, len(names))
	for i, n := range names {
		if out[i] = t.Lookup(n); out[i] == nil {
			panic("setting: no setting " + n)
		}
	}
	return out
}

// FlagMode says when a flag's text is parsed.
type FlagMode int

const (
	// ParseOnLoad: fs.Parse records the text and Load parses it, so that a bad one is an
	// error of Load that names the flag ("flag --log-level: ..."), like the other sources'.
	ParseOnLoad FlagMode = iota
	// ParseNow: fs.Parse parses the text too and fails on a bad one, as package flag's own
	// flags do; Load applies it.
	ParseNow
)

// Flags holds the texts that the flags AddFlags added were given on the command line.
type Flags struct {
	given map[string]string // by setting name; the last given wins
}

// AddFlags adds to fs a flag for each setting that has one, its usage followed by its
// environment variable and config-file key, and its default the variable's value now. After
// fs.Parse, pass the result to Load. The flags work with pflag's AddGoFlagSet and
// PFlagFromGoFlag too.
func (t Table) AddFlags(fs *flag.FlagSet, mode FlagMode) *Flags {
	f := &Flags{given: map[string]string{}}
	for _, s := range t {
		if s.noFlag {
			continue
		}
		fs.Var(&flagValue{s: s, flags: f, def: s.Default(), now: mode == ParseNow}, s.name, s.flagUsage())
	}
	return f
}

// flagUsage is the usage of s's flag: its usage, then where else it is set.
func (s *Setting) flagUsage() string {
	var where []string
	if s.env != "" {
		where = append(where, "env "+s.env)
	}
	if s.key != "" {
		where = append(where, "config key "+s.key)
	}
	if len(where) == 0 {
		return s.usage
	}
	return s.usage + " (" + strings.Join(where, ", ") + ")"
}

// flagValue is a setting's flag. It records the text given; the setting's variable is set by
// Load, in the order of the sources.
type flagValue struct {
	s     *Setting
	flags *Flags
	def   string
	now   bool
}

func (f *flagValue) String() string {
	if f == nil || f.s == nil {
		return ""
	}
	return f.def
}

func (f *flagValue) Set(text string) error {
	if f.now {
		if _, err := f.s.v.parse(text); err != nil {
			return f.s.parseError(text, err)
		}
	}
	f.flags.given[f.s.name] = text
	return nil
}

func (f *flagValue) IsBoolFlag() bool { return f.s != nil && f.s.v.isBool() }

// Sources are where Load reads settings, each optional.
type Sources struct {
	// File is the path of the YAML config file.
	File string
	// Env looks up an environment variable, such as os.LookupEnv. A variable that is set but
	// empty counts as unset.
	Env func(string) (string, bool)
	// Flags are the flags given on the command line (AddFlags).
	Flags *Flags
}

// Load sets the settings from src, weakest first: the config file, the environment, the
// command line; a setting no source names keeps its value (its default). It stops at the first
// bad value, with an error that names its source: "config file F: line N: key: ...",
// "environment NAME: ...", "flag --name: ...". Load does not run Check.
func (t Table) Load(src Sources) error {
	if src.File != "" {
		if err := t.loadFile(src.File); err != nil {
			return err
		}
	}
	if src.Env != nil {
		for _, s := range t {
			if s.env == "" {
				continue
			}
			if v, ok := src.Env(s.env); ok && v != "" {
				if err := s.set(v); err != nil {
					return fmt.Errorf("environment %s: %w", s.env, err)
				}
			}
		}
	}
	if src.Flags != nil {
		for _, s := range t {
			if text, ok := src.Flags.given[s.name]; ok && !s.noFlag {
				if err := s.set(text); err != nil {
					return fmt.Errorf("flag --%s: %w", s.name, err)
				}
			}
		}
	}
	return nil
}

// Check checks every setting's value as it is, and the checks that relate settings (Also),
// and says what is wrong, all in one line: "invalid configuration: key: problem; ...".
func (t Table) Check() error {
	var errs []string
	for _, s := range t {
		if err := s.check(); err != nil {
			errs = append(errs, s.label()+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New("invalid configuration: " + strings.Join(errs, "; "))
	}
	return nil
}

// loadFile sets the settings the YAML file at path sets.
func (t Table) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %v", path, err)
	}
	root := resolve(&doc)
	if isNull(root) {
		return nil // empty, only comments, or null
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: want a mapping of settings (key: value), got %s", path, root.Line, describe(root))
	}
	if err := t.decodeMapping(root, "", map[string]int{}); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// decodeMapping sets the settings of the mapping n, whose keys are under section ("" at the
// top, "tls." in tls:); seen holds the line of every key already set.
func (t Table) decodeMapping(n *yaml.Node, section string, seen map[string]int) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		key := section + k.Value
		if line, dup := seen[key]; dup {
			return fmt.Errorf("line %d: %s is already set on line %d", k.Line, key, line)
		}
		seen[key] = k.Line
		if s := t.byKey(key); s != nil {
			if err := s.decode(v); err != nil {
				var le *lineError
				switch {
				case s.raw:
					return err
				case errors.As(err, &le):
					return fmt.Errorf("line %d: %s: %s", le.line, key, le.problem)
				}
				return fmt.Errorf("line %d: %s: %w", v.Line, key, err)
			}
			continue
		}
		if keys := t.keysUnder(key + "."); len(keys) > 0 {
			switch {
			case isNull(v):
			case v.Kind != yaml.MappingNode:
				return fmt.Errorf("line %d: %s: want a mapping (%s), got %s", v.Line, key, strings.Join(keys, ", "), describe(v))
			default:
				if err := t.decodeMapping(v, key+".", seen); err != nil {
					return err
				}
			}
			continue
		}
		return fmt.Errorf("line %d: unknown key %q (known: %s)", k.Line, key, strings.Join(t.keysUnder(section), ", "))
	}
	return nil
}

func (t Table) byKey(key string) *Setting {
	for _, s := range t {
		if s.key != "" && s.key == key {
			return s
		}
	}
	return nil
}

// keysUnder returns the config-file keys that start with prefix, sorted.
func (t Table) keysUnder(prefix string) []string {
	var keys []string
	for _, s := range t {
		if s.key != "" && strings.HasPrefix(s.key, prefix) {
			keys = append(keys, s.key)
		}
	}
	slices.Sort(keys)
	return keys
}

// decode sets s from its YAML value n: a scalar is parsed as a flag's text would be; a list or
// a mapping only by the types that take one.
func (s *Setting) decode(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && !s.raw {
		return s.set(scalarText(n))
	}
	v, ok, err := s.v.node(n)
	switch {
	case s.raw && err != nil:
		return err
	case !ok:
		return fmt.Errorf("want a single value (%s), got %s", s.expect, describe(n))
	case errors.Is(err, errKind):
		return fmt.Errorf("want %s, got %s", s.expect, describe(n))
	case err != nil:
		return err
	}
	if err := s.v.checkValue(v); err != nil {
		return err
	}
	s.v.store(v)
	return nil
}

// errKind is the error of a YAML value of a kind the type does not take.
var errKind = errors.New("wrong kind")

// lineError is a problem inside a YAML value, on a line of its own.
type lineError struct {
	line    int
	problem string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.problem) }

// The node helpers, shared with plugin.DecodeYAML.
var (
	resolve  = yamlnode.Resolve
	isNull   = yamlnode.IsNull
	describe = yamlnode.Describe
)

// scalarText is a scalar's text: "" for null (key:, key: ~).
func scalarText(n *yaml.Node) string {
	if isNull(n) {
		return ""
	}
	return n.Value
}
