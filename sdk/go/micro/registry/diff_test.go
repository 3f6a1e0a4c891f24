package registry_test

import (
	"fmt"
	"strings"
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

func TestReportedPushesTheDifferenceFromWhatWasReported(t *testing.T) {
	r := registry.Reported{}
	r.Update(nil, "a", []*registry.Service{part("a", "v1", "x")}) // the starting state: nothing to push
	q := registry.NewQueue(0, nil)
	r.Update(q, "a", []*registry.Service{part("a", "v1", "x"), part("a", "v1", "y")})
	r.Update(q, "a", []*registry.Service{part("a", "v1", "x"), part("a", "v1", "y")}) // no change: no event
	r.Update(q, "a", nil)
	var got []string
	for range 2 {
		ev, err := q.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %d", ev.Action, len(ev.Service.Nodes)))
	}
	if strings.Join(got, ", ") != "update 2, delete 2" {
		t.Fatalf("events %v", got)
	}
	if _, ok := r["a"]; ok {
		t.Fatal("a gone name is still remembered")
	}
	q.Stop()
}
