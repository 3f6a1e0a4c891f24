package catalog_test

import (
	"io"
	"slices"
	"testing"

	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/sdk/go/micro/registry"
)

func TestBuiltInsByName(t *testing.T) {
	regs := catalog.Registries()
	if got := regs.Names(); !slices.Equal(got, []string{"consul", "etcd", "memory", "remote"}) {
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
	for _, name := range []string{"memory", "tcp"} {
		tr, err := trs.New(name)
		if err != nil || tr.String() != name {
			t.Fatalf("New(%s) = %v, %v", name, tr, err)
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
