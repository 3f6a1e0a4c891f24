package selector

import "github.com/configd/configd/plugin"

// Namespaces of selectors and of their strategies: the cache selector is the module
// micro.selector.cache, round robin micro.selector.strategy.roundrobin.
const (
	Namespace         = "micro.selector"
	StrategyNamespace = "micro.selector.strategy"
)

// Module is a selector's own config (CacheConfig): the plugin module that a Catalog holds. What
// every selector takes (the registry, the default strategy, TTLs) comes as Options.
type Module interface {
	plugin.Module
	// NewSelector builds the selector this config describes.
	NewSelector(opts ...Option) (Selector, error)
}

// StrategyModule is a strategy's own config (RoundRobinConfig, ...): the plugin module that a
// StrategyCatalog holds.
type StrategyModule interface {
	plugin.Module
	// NewStrategy returns the strategy, new for each selector (round robin keeps counters).
	NewStrategy() Strategy
}

// Catalog holds selectors by name ("cache"); StrategyCatalog holds strategies by name
// ("roundrobin", "random", "p2c"). A binary builds them (package catalog has the built-in
// ones). Both are safe for concurrent use.
type (
	Catalog         = plugin.Catalog[Module]
	StrategyCatalog = plugin.Catalog[StrategyModule]
)

// NewCatalog returns a catalog of the given selectors, such as NewCatalog(CacheConfig{}).
func NewCatalog(mods ...Module) (*Catalog, error) { return plugin.NewCatalog(Namespace, mods...) }

// NewStrategyCatalog returns a catalog of the given strategies.
func NewStrategyCatalog(mods ...StrategyModule) (*StrategyCatalog, error) {
	return plugin.NewCatalog(StrategyNamespace, mods...)
}

// CacheConfig is the Cache selector's own config: it has no fields beyond Options. It is the
// plugin module micro.selector.cache.
type CacheConfig struct{}

// PluginInfo names the module: micro.selector.cache.
func (CacheConfig) PluginInfo() plugin.Info {
	return plugin.Info{ID: Namespace + ".cache", New: func() plugin.Module { return new(CacheConfig) }}
}

// NewSelector builds a Cache selector (New).
func (CacheConfig) NewSelector(opts ...Option) (Selector, error) { return New(opts...) }

// RoundRobinConfig, RandomConfig and PowerOfTwoConfig are the built-in strategies' configs
// (they have no fields): the plugin modules micro.selector.strategy.roundrobin, .random and
// .p2c, giving RoundRobin(), Random and PowerOfTwo.
type (
	RoundRobinConfig struct{}
	RandomConfig     struct{}
	PowerOfTwoConfig struct{}
)

// PluginInfo names the module: micro.selector.strategy.roundrobin.
func (RoundRobinConfig) PluginInfo() plugin.Info {
	return plugin.Info{ID: StrategyNamespace + ".roundrobin", New: func() plugin.Module { return new(RoundRobinConfig) }}
}

// NewStrategy returns RoundRobin(), with counters of its own.
func (RoundRobinConfig) NewStrategy() Strategy { return RoundRobin() }

// PluginInfo names the module: micro.selector.strategy.random.
func (RandomConfig) PluginInfo() plugin.Info {
	return plugin.Info{ID: StrategyNamespace + ".random", New: func() plugin.Module { return new(RandomConfig) }}
}

// NewStrategy returns Random.
func (RandomConfig) NewStrategy() Strategy { return Random }

// PluginInfo names the module: micro.selector.strategy.p2c.
func (PowerOfTwoConfig) PluginInfo() plugin.Info {
	return plugin.Info{ID: StrategyNamespace + ".p2c", New: func() plugin.Module { return new(PowerOfTwoConfig) }}
}

// NewStrategy returns PowerOfTwo.
func (PowerOfTwoConfig) NewStrategy() Strategy { return PowerOfTwo }

var (
	_ Module         = CacheConfig{}
	_ StrategyModule = RoundRobinConfig{}
	_ StrategyModule = RandomConfig{}
	_ StrategyModule = PowerOfTwoConfig{}
)
