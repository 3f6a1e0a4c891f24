// Package catalog lists the built-in implementations of the core's parts by name, the way
// go-micro's cmd.DefaultRegistries and cmd.DefaultTransports did, but as values a binary builds
// and passes around rather than package maps anyone can mutate. A binary that wants a plugin
// adds it to the catalog it built.
package catalog

import (
	"fmt"
	"maps"
	"slices"

	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/consul"
	"github.com/configd/configd/sdk/go/micro/registry/etcd"
	"github.com/configd/configd/sdk/go/micro/registry/mdns"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/registry/remote"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/transport"
	tgrpc "github.com/configd/configd/sdk/go/micro/transport/grpc"
	tmem "github.com/configd/configd/sdk/go/micro/transport/memory"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

// Catalog is every kind of part by name: what a binary's flags can choose from.
type Catalog struct {
	Registries *registry.Catalog
	Transports *transport.Catalog
	Selectors  *Selectors
}

// Default returns a new Catalog of the built-in parts.
func Default() *Catalog {
	return &Catalog{Registries: Registries(), Transports: Transports(), Selectors: NewSelectors()}
}

// Registries returns a new catalog of the built-in registries: "memory", "mdns" (multicast DNS
// on the local link; registry.Timeout bounds a query), "remote" (a registry served by another
// process; registry.Addrs names it), "consul" (registry.Addrs: the agent's HTTP address) and
// "etcd" (registry.Addrs: the endpoints). A registry that holds resources (etcd: its lease and
// client; mdns: its responders) is an io.Closer, for a binary to close on shutdown.
func Registries() *registry.Catalog {
	c := registry.NewCatalog()
	must(c.Add("consul", consul.NewRegistry))
	must(c.Add("etcd", etcd.NewRegistry))
	must(c.Add("mdns", mdns.NewRegistry))
	must(c.Add("memory", memory.NewRegistry))
	must(c.Add("remote", remote.NewRegistry))
	return c
}

// Transports returns a new catalog of the built-in transports: "memory", "tcp" and "grpc" (a
// stream of go-micro's generic gRPC transport service per socket; the transport is an
// io.Closer holding one gRPC connection per address).
func Transports() *transport.Catalog {
	c := transport.NewCatalog()
	must(c.Add("grpc", tgrpc.NewTransport))
	must(c.Add("memory", tmem.NewTransport))
	must(c.Add("tcp", tcp.NewTransport))
	return c
}

// SelectorFactory builds a Selector; opts carry at least selector.Registry.
type SelectorFactory func(opts ...selector.Option) (selector.Selector, error)

// Selectors names selectors and strategies. The built-in selector is "cache" (selector.Cache:
// a watch-fed cache of the registry); the built-in strategies are "roundrobin" (the default),
// "random" and "p2c" (power of two choices by outstanding calls).
type Selectors struct {
	selectors  map[string]SelectorFactory
	strategies map[string]func() selector.Strategy
}

// DefaultSelector and DefaultStrategy are the names used when none is chosen.
const (
	DefaultSelector = "cache"
	DefaultStrategy = "roundrobin"
)

// NewSelectors returns the built-in selectors and strategies.
func NewSelectors() *Selectors {
	return &Selectors{
		selectors: map[string]SelectorFactory{
			"cache": func(opts ...selector.Option) (selector.Selector, error) { return selector.New(opts...) },
		},
		strategies: map[string]func() selector.Strategy{
			"roundrobin": selector.RoundRobin,
			"random":     func() selector.Strategy { return selector.Random },
			"p2c":        func() selector.Strategy { return selector.PowerOfTwo },
		},
	}
}

// AddSelector adds a selector by name; adding a name twice is an error.
func (s *Selectors) AddSelector(name string, f SelectorFactory) error {
	if _, dup := s.selectors[name]; dup || name == "" || f == nil {
		return fmt.Errorf("catalog: selector %q: empty, nil or added twice", name)
	}
	s.selectors[name] = f
	return nil
}

// AddStrategy adds a strategy by name; adding a name twice is an error.
func (s *Selectors) AddStrategy(name string, f func() selector.Strategy) error {
	if _, dup := s.strategies[name]; dup || name == "" || f == nil {
		return fmt.Errorf("catalog: strategy %q: empty, nil or added twice", name)
	}
	s.strategies[name] = f
	return nil
}

// New builds the selector called name over reg, with the strategy called strategy ("" for
// DefaultStrategy), plus opts.
func (s *Selectors) New(name, strategy string, reg registry.Registry, opts ...selector.Option) (selector.Selector, error) {
	f, ok := s.selectors[name]
	if !ok {
		return nil, fmt.Errorf("catalog: unknown selector %q (known: %v)", name, slices.Sorted(maps.Keys(s.selectors)))
	}
	if strategy == "" {
		strategy = DefaultStrategy
	}
	st, ok := s.strategies[strategy]
	if !ok {
		return nil, fmt.Errorf("catalog: unknown selector strategy %q (known: %v)", strategy, slices.Sorted(maps.Keys(s.strategies)))
	}
	return f(append([]selector.Option{selector.Registry(reg), selector.DefaultStrategy(st())}, opts...)...)
}

// Names returns the selector names and the strategy names, sorted.
func (s *Selectors) Names() (selectors, strategies []string) {
	return slices.Sorted(maps.Keys(s.selectors)), slices.Sorted(maps.Keys(s.strategies))
}

func must(err error) {
	if err != nil {
		panic(err) // a built-in name added twice: a bug in this file
	}
}
