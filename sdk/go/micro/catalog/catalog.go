// Package catalog lists the built-in implementations of the core's parts by name, the way
// go-micro's cmd.DefaultRegistries and cmd.DefaultTransports did, but as values a binary builds
// and passes around rather than package maps anyone can mutate. A binary that wants a plugin
// adds it to the catalog it built.
package catalog

import (
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/consul"
	"github.com/configd/configd/sdk/go/micro/registry/etcd"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/registry/remote"
	"github.com/configd/configd/sdk/go/micro/transport"
	tmem "github.com/configd/configd/sdk/go/micro/transport/memory"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

// Registries returns a new catalog of the built-in registries: "memory", "remote" (a
// registry served by another process; registry.Addrs names it), "consul" (registry.Addrs: the
// agent's HTTP address) and "etcd" (registry.Addrs: the endpoints). A registry that holds
// resources (etcd: its lease and client) is an io.Closer, for a binary to close on shutdown.
func Registries() *registry.Catalog {
	c := registry.NewCatalog()
	must(c.Add("consul", consul.NewRegistry))
	must(c.Add("etcd", etcd.NewRegistry))
	must(c.Add("memory", memory.NewRegistry))
	must(c.Add("remote", remote.NewRegistry))
	return c
}

// Transports returns a new catalog of the built-in transports: "memory" and "tcp".
func Transports() *transport.Catalog {
	c := transport.NewCatalog()
	must(c.Add("memory", tmem.NewTransport))
	must(c.Add("tcp", tcp.NewTransport))
	return c
}

func must(err error) {
	if err != nil {
		panic(err) // a built-in name added twice: a bug in this file
	}
}
