package catalog_test

import (
	"io"
	"slices"
	"testing"

	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
)

func TestBuiltInsByName(t *testing.T) {
	regs := catalog.Registries()
	if got := regs.Names(); !slices.Equal(got, []string{"consul", "etcd", "mdns", "memory", "remote"}) {
		t.Fatalf("registries %v", got)
	}
	for _, name := range regs.Names() {
		r, err := regs.New(name, registry.Addrs("127.0.0.1:1"))
		if err != nil || r.String() != name {
			t.Fatalf("New(%s) = %v, %v", name, r, err)
		}
		if c, ok := r.(io.Closer); ok {
			c.Close()
		}
	}
	trs := catalog.Transports()
	for _, name := range []string{"grpc", "memory", "tcp"} {
		tr, err := trs.New(name)
		if err != nil || tr.String() != name {
			t.Fatalf("New(%s) = %v, %v", name, tr, err)
		}
		if c, ok := tr.(io.Closer); ok {
			c.Close()
		}
	}
	// Each call builds a fresh catalog: adding to one does not leak into the next.
	if err := regs.Add("extra", func(...registry.Option) registry.Registry { return nil }); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(catalog.Registries().Names(), "extra") {
		t.Fatal("a catalog change leaked into a new catalog")
	}
}

func TestSelectorsByName(t *testing.T) {
	sels := catalog.Default().Selectors
	names, strategies := sels.Names()
	if !slices.Equal(names, []string{"cache"}) || !slices.Equal(strategies, []string{"p2c", "random", "roundrobin"}) {
		t.Fatalf("selectors %v, strategies %v", names, strategies)
	}
	for _, st := range append(strategies, "") {
		s, err := sels.New("cache", st, memory.New())
		if err != nil || s.String() != "cache" {
			t.Fatalf("New(cache, %q) = %v, %v", st, s, err)
		}
		s.Close()
	}
	if _, err := sels.New("nope", "", memory.New()); err == nil {
		t.Fatal("unknown selector: no error")
	}
	if _, err := sels.New("cache", "nope", memory.New()); err == nil {
		t.Fatal("unknown strategy: no error")
	}
}
