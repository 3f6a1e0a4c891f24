package transport

import "github.com/configd/configd/plugin"

// Namespace is the plugin namespace of transports: the tcp transport is the module
// micro.transport.tcp.
const Namespace = "micro.transport"

// Module is a transport's own config (tcp.Config, grpc.Config, ...): the plugin module that a
// Catalog holds. Its PluginInfo names it (micro.transport.<name>); what every transport takes
// (TLS, frame size, timeouts) comes as Options.
type Module interface {
	plugin.Module
	// NewTransport builds the transport this config describes.
	NewTransport(opts ...Option) (Transport, error)
}

// Catalog holds transports by name ("memory", "tcp", "grpc"): a binary builds one
// (catalog.Transports has the built-in ones) and passes it where it is needed. It is safe for
// concurrent use.
type Catalog = plugin.Catalog[Module]

// NewCatalog returns a catalog of the given transports, such as NewCatalog(tcp.Config{}).
func NewCatalog(mods ...Module) (*Catalog, error) { return plugin.NewCatalog(Namespace, mods...) }
