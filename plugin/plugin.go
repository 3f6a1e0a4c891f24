// Package plugin is the one way configd's pluggable parts are registered: the source types of
// the daemon (source.file, source.consul, ...) and the parts of the SDK's RPC core (registries
// such as micro.registry.etcd, transports such as micro.transport.tcp, selectors and their
// strategies). It sits below both the daemon and the SDK and imports neither, so each can use it.
//
// The model is caddy v2's modules, without its global map. A module is a config struct of its
// own that names itself with PluginInfo: a namespaced ID and a constructor of a new, empty
// config. The methods that build the implementation are on that struct too, declared by the
// namespace's interface (source.TypeConfig, registry.Module, ...). A module may check its own
// fields with Validate. A Catalog holds the modules of one namespace by name; a binary builds
// the catalogs it uses and passes them where they are needed, and nothing registers itself
// from init:
//
//	types := plugin.Must(source.NewCatalog(file.Config{}, env.Config{}))
//	cfg, err := types.Decode("file", node) // a new file.Config, decoded strictly, validated
//
// Adding a module to a namespace needs no edit of the namespace's package: write the config
// struct and its methods, and add it to the catalogs that should offer it.
package plugin

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// ID names a module: lower-case labels separated by dots, the last one the module's name and
// the ones before it its namespace. "source.consul" is the module consul of namespace source;
// "micro.registry.etcd" the module etcd of namespace micro.registry.
type ID string

// Namespace returns the labels before the last dot: "micro.registry" for
// "micro.registry.etcd".
func (id ID) Namespace() string {
	i := strings.LastIndexByte(string(id), '.')
	if i < 0 {
		return ""
	}
	return string(id[:i])
}

// Name returns the last label: "etcd" for "micro.registry.etcd". It is what a config file or
// a flag names the module by within its namespace.
func (id ID) Name() string { return string(id[strings.LastIndexByte(string(id), '.')+1:]) }

var labelRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// checkNamespace says what is wrong with a namespace (or an ID: a namespace plus a name).
func checkNamespace(ns string) error {
	for l := range strings.SplitSeq(ns, ".") {
		if !labelRE.MatchString(l) {
			return fmt.Errorf("%q: labels are lower-case letters, digits, '_' and '-', separated by '.'", ns)
		}
	}
	return nil
}

// Info is what a module says about itself.
type Info struct {
	// ID is the module's namespaced ID.
	ID ID
	// New returns a pointer to a new, zero config of the module, for a Catalog to decode into.
	// Defaults are the module's business when it builds, not New's: a zero field means "not
	// set".
	New func() Module
}

// Module is the config of one module: a struct of the module's own fields, whose methods
// build the implementation (the namespace's interface says which).
type Module interface {
	// PluginInfo says which module this is. It must not depend on the receiver's fields.
	PluginInfo() Info
}

// Validator is a Module that checks its fields. Validate says exactly which field is wrong and
// what it wants; it reads no files and contacts no server (that is the builder's business).
type Validator interface {
	Validate() error
}

// Validate calls m's Validate when m is a Validator, and returns nil otherwise.
func Validate(m Module) error {
	if v, ok := m.(Validator); ok {
		return v.Validate()
	}
	return nil
}

// ErrUnknown is wrapped by the error of a lookup of a name that no module of a catalog has.
var ErrUnknown = errors.New("unknown module")

// Catalog holds the modules of one namespace by name, each a config of Go type T: the
// namespace's interface (source.TypeConfig, registry.Module, ...). It is safe for concurrent
// use; the zero Catalog is not usable, build one with NewCatalog.
type Catalog[T Module] struct {
	namespace string

	mu   sync.RWMutex
	mods map[string]Info // by ID.Name()
}

// NewCatalog returns a catalog of namespace holding mods. See Add for what a module must be.
func NewCatalog[T Module](namespace string, mods ...T) (*Catalog[T], error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("plugin: namespace %w", err)
	}
	c := &Catalog[T]{namespace: namespace, mods: map[string]Info{}}
	if err := c.Add(mods...); err != nil {
		return nil, err
	}
	return c, nil
}

// Must returns c, and panics when err is not nil: for catalogs of built-in modules, where an
// error is a bug in the list.
func Must[T Module](c *Catalog[T], err error) *Catalog[T] {
	if err != nil {
		panic(err)
	}
	return c
}

// Namespace returns the catalog's namespace, such as "source".
func (c *Catalog[T]) Namespace() string { return c.namespace }

// Add adds modules, all or none. A module's ID must be in the catalog's namespace and its name
// not yet taken (two packages cannot silently replace each other's module); its Info.New must
// return a non-nil pointer to a struct, of type T, whose PluginInfo gives the same ID. The values
// given only name their modules, as in caddy's RegisterModule: their fields are not kept, New and
// Decode start from Info.New's zero config.
func (c *Catalog[T]) Add(mods ...T) error {
	infos := make([]Info, 0, len(mods))
	for _, m := range mods {
		if v := reflect.ValueOf(m); !v.IsValid() || v.Kind() == reflect.Pointer && v.IsNil() {
			return fmt.Errorf("plugin: %s: a nil module", c.namespace)
		}
		info := m.PluginInfo()
		if err := c.check(info); err != nil {
			return fmt.Errorf("plugin: module %q: %w", info.ID, err)
		}
		infos = append(infos, info)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, info := range infos {
		name := info.ID.Name()
		if _, dup := c.mods[name]; dup || seen[name] {
			return fmt.Errorf("plugin: module %q added twice", info.ID)
		}
		seen[name] = true
	}
	for _, info := range infos {
		c.mods[info.ID.Name()] = info
	}
	return nil
}

func (c *Catalog[T]) check(info Info) error {
	if err := checkNamespace(string(info.ID)); err != nil {
		return fmt.Errorf("ID %w", err)
	}
	if info.ID.Namespace() != c.namespace {
		return fmt.Errorf("not in namespace %s", c.namespace)
	}
	if info.New == nil {
		return errors.New("Info.New is nil")
	}
	fresh := info.New()
	v := reflect.ValueOf(fresh)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("Info.New returns %T, not a pointer to a struct", fresh)
	}
	if _, ok := fresh.(T); !ok {
		return fmt.Errorf("Info.New returns %T, which is not a %s", fresh, reflect.TypeFor[T]())
	}
	if got := fresh.PluginInfo().ID; got != info.ID {
		return fmt.Errorf("Info.New returns a config of module %q", got)
	}
	return nil
}

// Names returns the names of the catalog's modules, sorted.
func (c *Catalog[T]) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.mods))
	for n := range c.mods {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Has reports whether the catalog has a module called name.
func (c *Catalog[T]) Has(name string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.mods[name]
	return ok
}

// New returns a new, zero config of the module called name. An unknown name is an error
// wrapping ErrUnknown that lists the known ones.
func (c *Catalog[T]) New(name string) (T, error) {
	c.mu.RLock()
	info, ok := c.mods[name]
	c.mu.RUnlock()
	if !ok {
		var zero T
		return zero, fmt.Errorf("%w %q in %s (known: %s)", ErrUnknown, name, c.namespace, strings.Join(c.Names(), ", "))
	}
	return info.New().(T), nil // checked by Add
}

// Decode returns a new config of the module called name, decoded from the YAML mapping n as
// DecodeYAML describes and then validated (Validate). The fields of n that belong to the
// caller rather than to the module (a source entry's name, type and mount) are decoded into
// also, which are pointers to structs; they are not validated. The config is returned as a
// struct value (consul.Config, as code would write it) when that type is a T, that is when its
// methods have value receivers, and as the pointer Info.New gave otherwise.
func (c *Catalog[T]) Decode(name string, n *yaml.Node, also ...any) (T, error) {
	m, err := c.New(name)
	if err != nil {
		return m, err
	}
	if err := DecodeYAML(n, append(also, m)...); err != nil {
		var zero T
		return zero, err
	}
	if v, ok := reflect.ValueOf(m).Elem().Interface().(T); ok {
		m = v
	}
	if err := Validate(m); err != nil {
		var zero T
		return zero, err
	}
	return m, nil
}
