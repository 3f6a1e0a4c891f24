package catalog_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
)

func TestBuiltInsByName(t *testing.T) {
	cat := catalog.Default()
	regs := cat.Registries
	if got := regs.Names(); !slices.Equal(got, []string{"consul", "etcd", "kubernetes", "mdns", "memory", "remote"}) {
		t.Fatalf("registries %v", got)
	}
	for _, name := range regs.Names() {
		r, err := cat.NewRegistry(name, registry.Addrs("127.0.0.1:1"))
		if err != nil || r.String() != name {
			t.Fatalf("New(%s) = %v, %v", name, r, err)
		}
		if c, ok := r.(io.Closer); ok {
			c.Close()
		}
	}
	if got := cat.Transports.Names(); !slices.Equal(got, []string{"grpc", "memory", "tcp"}) {
		t.Fatalf("transports %v", got)
	}
	for _, name := range []string{"grpc", "memory", "tcp"} {
		tr, err := cat.NewTransport(name)
		if err != nil || tr.String() != name {
			t.Fatalf("New(%s) = %v, %v", name, tr, err)
		}
		if c, ok := tr.(io.Closer); ok {
			c.Close()
		}
	}
	// Each call builds a fresh catalog: adding to one does not leak into the next.
	if err := regs.Add(extra{}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(catalog.Registries().Names(), "extra") {
		t.Fatal("a catalog change leaked into a new catalog")
	}
	if _, err := cat.NewRegistry("zookeeper"); !errors.Is(err, plugin.ErrUnknown) || !strings.Contains(err.Error(), "consul, etcd, extra, kubernetes, mdns, memory, remote") {
		t.Fatalf("unknown registry: %v", err)
	}
	if _, err := cat.NewTransport("utp"); !errors.Is(err, plugin.ErrUnknown) || !strings.Contains(err.Error(), "grpc, memory, tcp") {
		t.Fatalf("unknown transport: %v", err)
	}
}

// extra is a registry that is not built in: micro.registry.extra.
type extra struct{}

func (extra) PluginInfo() plugin.Info {
	return plugin.Info{ID: "micro.registry.extra", New: func() plugin.Module { return new(extra) }}
}
func (extra) NewRegistry(opts ...registry.Option) (registry.Registry, error) {
	return memory.New(opts...), nil
}

func TestSelectorsByName(t *testing.T) {
	sels := catalog.Default()
	names, strategies := sels.Selectors.Names(), sels.Strategies.Names()
	if !slices.Equal(names, []string{"cache"}) || !slices.Equal(strategies, []string{"p2c", "random", "roundrobin"}) {
		t.Fatalf("selectors %v, strategies %v", names, strategies)
	}
	for _, st := range append(strategies, "") {
		s, err := sels.NewSelector("cache", st, memory.New())
		if err != nil || s.String() != "cache" {
			t.Fatalf("New(cache, %q) = %v, %v", st, s, err)
		}
		s.Close()
	}
	if _, err := sels.NewSelector("nope", "", memory.New()); err == nil {
		t.Fatal("unknown selector: no error")
	}
	if _, err := sels.NewSelector("cache", "nope", memory.New()); err == nil {
		t.Fatal("unknown strategy: no error")
	}
}
