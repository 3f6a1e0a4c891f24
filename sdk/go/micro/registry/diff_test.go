package registry_test

import (
	"testing"

	"github.com/configd/configd/sdk/go/micro/registry"
)

func part(name, version, id string) *registry.Service {
	return &registry.Service{Name: name, Version: version, Metadata: map[string]string{"from": id},
		Nodes: []*registry.Node{{Id: id, Address: id + ":1"}}}
}

func TestMergeAndDiff(t *testing.T) {
	merged := registry.Merge([]*registry.Service{part("a", "v2", "n3"), part("a", "v1", "n2"), part("a", "v1", "n1")})
	if len(merged) != 2 || merged[0].Version != "v1" || len(merged[0].Nodes) != 2 || merged[0].Nodes[0].Id != "n1" ||
		merged[0].Metadata["from"] != "n2" || merged[1].Version != "v2" {
		t.Fatalf("Merge = %+v", merged)
	}
	after := registry.Merge([]*registry.Service{part("a", "v1", "n1"), part("a", "v3", "n4")})
	evs := registry.Diff(merged, after)
	got := map[registry.Action]string{}
	for _, e := range evs {
		got[e.Action] = e.Service.Version
	}
	if len(evs) != 3 || got[registry.Update] != "v1" || got[registry.Create] != "v3" || got[registry.Delete] != "v2" {
		t.Fatalf("Diff = %v", got)
	}
	if evs := registry.Diff(after, registry.Merge([]*registry.Service{part("a", "v3", "n4"), part("a", "v1", "n1")})); len(evs) != 0 {
		t.Fatalf("Diff of equal lists = %d events", len(evs))
	}
}
