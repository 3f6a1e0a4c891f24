package source

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Factory builds a Source from a Config that has passed Config.Validate.
// It checks the type's own fields and returns an error wrapping ErrConfig
// when they are wrong. It does not contact any server: a backend that is
// down is Run's business, reported as a degraded source.
type Factory func(cfg Config, opts ...Option) (Source, error)

var registry = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{}}

// Register makes a source type available to New under name. Implementations
// call it from init. It panics when name is empty or already registered, as
// database/sql.Register does: both are programming errors.
func Register(name string, f Factory) {
	if name == "" || f == nil {
		panic("source: Register needs a type name and a factory")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[name]; dup {
		panic(fmt.Sprintf("source: type %q registered twice", name))
	}
	registry.m[name] = f
}

// Types returns the registered type names, sorted.
func Types() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New validates cfg and builds the source of its type. Errors wrap
// ErrConfig, or ErrUnknownType when no implementation of cfg.Type is
// registered (a missing blank import).
func New(cfg Config, opts ...Option) (Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	registry.RLock()
	f, ok := registry.m[cfg.Type]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %w: source %q: type %q (known: %s)",
			ErrConfig, ErrUnknownType, cfg.Name, cfg.Type, strings.Join(Types(), ", "))
	}
	return f(cfg, opts...)
}
