// Package all lists every source type that ships with configd: file, env,
// consul and etcd. A binary decodes its config file's sources with it:
//
//	cfg, err := source.DecodeConfig(node, all.Types())
//
// A binary that offers a type of its own adds it to the catalog:
//
//	types := all.Types()
//	err := types.Add(vault.Config{})
package all

import (
	"github.com/configd/configd/plugin"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/consul"
	"github.com/configd/configd/source/env"
	"github.com/configd/configd/source/etcd"
	"github.com/configd/configd/source/file"
)

// Types returns a new catalog of the source types that ship with configd.
// Each call builds a new one: adding to it changes no other.
func Types() *source.Catalog {
	return plugin.Must(source.NewCatalog(consul.Config{}, env.Config{}, etcd.Config{}, file.Config{}))
}
