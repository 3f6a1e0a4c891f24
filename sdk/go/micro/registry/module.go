package registry

import "github.com/configd/configd/plugin"

// Namespace is the plugin namespace of registries: the etcd registry is the module
// micro.registry.etcd.
const Namespace = "micro.registry"

// Module is a registry's own config (etcd.Config, consul.Config, ...): the plugin module that
// a Catalog holds. Its PluginInfo names it (micro.registry.<name>); what every registry takes
// (addresses, timeout, TLS) comes as Options.
type Module interface {
	plugin.Module
	// NewRegistry builds the registry this config describes.
	NewRegistry(opts ...Option) (Registry, error)
}

// Catalog holds registries by name ("memory", "consul", ...), replacing go-micro's mutable
// cmd.DefaultRegistries map: a binary builds one (catalog.Registries has the built-in ones) and
// passes it where it is needed. It is safe for concurrent use.
type Catalog = plugin.Catalog[Module]

// NewCatalog returns a catalog of the given registries, such as
// NewCatalog(memory.Config{}, etcd.Config{}).
func NewCatalog(mods ...Module) (*Catalog, error) { return plugin.NewCatalog(Namespace, mods...) }
