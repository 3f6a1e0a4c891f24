package registry

import (
	"fmt"
	"slices"
	"sync"
)

// Factory builds a Registry from options.
type Factory func(opts ...Option) Registry

// Catalog maps implementation names ("memory", "consul", ...) to factories. It replaces go-micro's
// mutable cmd.DefaultRegistries map: a binary builds one Catalog and passes it where it is needed.
// A Catalog is safe for concurrent use.
type Catalog struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewCatalog returns an empty Catalog.
func NewCatalog() *Catalog { return &Catalog{factories: map[string]Factory{}} }

// Add registers f under name. Adding a name twice is an error, so two packages cannot silently
// replace each other's implementation.
func (c *Catalog) Add(name string, f Factory) error {
	if name == "" || f == nil {
		return fmt.Errorf("registry: catalog: empty name or nil factory")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.factories[name]; ok {
		return fmt.Errorf("registry: catalog: %q added twice", name)
	}
	c.factories[name] = f
	return nil
}

// New builds the implementation registered under name.
func (c *Catalog) New(name string, opts ...Option) (Registry, error) {
	c.mu.RLock()
	f, ok := c.factories[name]
	c.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("registry: unknown registry %q (known: %v)", name, c.Names())
	}
	return f(opts...), nil
}

// Names returns the registered names, sorted.
func (c *Catalog) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.factories))
	for n := range c.factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
