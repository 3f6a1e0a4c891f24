// Package catalog lists the built-in implementations of the core's parts by name, the way
// go-micro's cmd.DefaultRegistries and cmd.DefaultTransports did, but as values a binary builds
// and passes around rather than package maps anyone can mutate. Each part is a plugin module
// (package plugin) of its namespace: micro.registry.etcd, micro.transport.tcp,
// micro.selector.cache, micro.selector.strategy.roundrobin. A binary that wants a plugin of its
// own adds it to the catalog it built:
//
//	cat := catalog.Default()
//	err := cat.Registries.Add(zookeeper.Config{})
//	svc := micro.NewService(micro.Catalog(cat))
package catalog

import (
	"fmt"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/consul"
	"github.com/configd/configd/sdk/go/micro/registry/etcd"
	"github.com/configd/configd/sdk/go/micro/registry/kubernetes"
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
	Selectors  *selector.Catalog
	Strategies *selector.StrategyCatalog
}

// Default returns a new Catalog of the built-in parts.
func Default() *Catalog {
	return &Catalog{Registries: Registries(), Transports: Transports(), Selectors: Selectors(), Strategies: Strategies()}
}

// Registries returns a new catalog of the built-in registries: "memory", "mdns" (multicast DNS
// on the local link; registry.Timeout bounds a query), "remote" (a registry served by another
// process; registry.Addrs names it), "consul" (registry.Addrs: the agent's HTTP address), "etcd"
// (registry.Addrs: the endpoints) and "kubernetes" (pod labels and annotations through the API
// server: registry.Addrs, or the pod's service account when empty). A registry that holds
// resources (etcd: its lease and client; mdns: its responders; kubernetes: what it put on its
// pod) is an io.Closer, for a binary to close on shutdown.
func Registries() *registry.Catalog {
	return plugin.Must(registry.NewCatalog(consul.Config{}, etcd.Config{}, kubernetes.Config{}, mdns.Config{}, memory.Config{}, remote.Config{}))
}

// Transports returns a new catalog of the built-in transports: "memory", "tcp" and "grpc" (a
// stream of go-micro's generic gRPC transport service per socket; the transport is an
// io.Closer holding one gRPC connection per address).
func Transports() *transport.Catalog {
	return plugin.Must(transport.NewCatalog(tgrpc.Config{}, tmem.Config{}, tcp.Config{}))
}

// Selectors returns a new catalog of the built-in selectors: "cache" (selector.Cache: a
// watch-fed cache of the registry).
func Selectors() *selector.Catalog {
	return plugin.Must(selector.NewCatalog(selector.CacheConfig{}))
}

// Strategies returns a new catalog of the built-in strategies: "roundrobin" (the default),
// "random" and "p2c" (power of two choices by outstanding calls).
func Strategies() *selector.StrategyCatalog {
	return plugin.Must(selector.NewStrategyCatalog(selector.RoundRobinConfig{}, selector.RandomConfig{}, selector.PowerOfTwoConfig{}))
}

// DefaultSelector and DefaultStrategy are the names used when none is chosen.
const (
	DefaultSelector = "cache"
	DefaultStrategy = "roundrobin"
)

// NewRegistry builds the registry called name with opts.
func (c *Catalog) NewRegistry(name string, opts ...registry.Option) (registry.Registry, error) {
	m, err := c.Registries.New(name)
	if err != nil {
		return nil, err
	}
	return m.NewRegistry(opts...)
}

// NewTransport builds the transport called name with opts.
func (c *Catalog) NewTransport(name string, opts ...transport.Option) (transport.Transport, error) {
	m, err := c.Transports.New(name)
	if err != nil {
		return nil, err
	}
	return m.NewTransport(opts...)
}

// NewSelector builds the selector called name over reg, with the strategy called strategy (""
// for DefaultStrategy), plus opts.
func (c *Catalog) NewSelector(name, strategy string, reg registry.Registry, opts ...selector.Option) (selector.Selector, error) {
	m, err := c.Selectors.New(name)
	if err != nil {
		return nil, err
	}
	if strategy == "" {
		strategy = DefaultStrategy
	}
	st, err := c.Strategies.New(strategy)
	if err != nil {
		return nil, fmt.Errorf("selector strategy: %w", err)
	}
	return m.NewSelector(append([]selector.Option{selector.Registry(reg), selector.DefaultStrategy(st.NewStrategy())}, opts...)...)
}
