// Package registrytest holds helpers for the tests of registries.
package registrytest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/registry"
)

// Result waits up to within for w's next event and returns it with Next's
// error; it fails t when nothing comes in time.
func Result(t testing.TB, w registry.Watcher, within time.Duration) (*registry.Result, error) {
	t.Helper()
	type res struct {
		r   *registry.Result
		err error
	}
	ch := make(chan res, 1)
	go func() { r, err := w.Next(); ch <- res{r, err} }()
	select {
	case got := <-ch:
		return got.r, got.err
	case <-time.After(within):
		t.Fatalf("no watch event within %v", within)
		return nil, nil
	}
}

// Next is Result that also fails t on an error.
func Next(t testing.TB, w registry.Watcher, within time.Duration) *registry.Result {
	t.Helper()
	r, err := Result(t, w, within)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return r
}

// NodeIDs lists the ids of s's nodes, in order.
func NodeIDs(s *registry.Service) []string {
	var ids []string
	for _, n := range s.Nodes {
		ids = append(ids, n.Id)
	}
	return ids
}

// Svc returns version of service name with one node per id (address 127.0.0.1:1001 on), the
// service's metadata and an endpoint: what the shared cases register.
func Svc(name, version string, ids ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: version, Metadata: map[string]string{"team": "core"},
		Endpoints: []*registry.Endpoint{{Name: "Greeter.Hello", Metadata: map[string]string{"stream": "false"}}}}
	for i, id := range ids {
		s.Nodes = append(s.Nodes, &registry.Node{Id: id, Address: fmt.Sprintf("127.0.0.1:%d", 1001+i),
			Metadata: map[string]string{"zone": "z-" + id}})
	}
	return s
}

// NewFunc returns the registry of one more process of a test, on the registry's shared store: a
// registry where one process holds one version of a name (Kubernetes: a pod) gets a process per
// version from it.
type NewFunc func(t *testing.T) registry.Registry

// RegisterGetListDeregister is the round trip every registry passes: versions of a name from
// different processes, a name that is a prefix of another, every field kept, and deregistering
// (an unknown node too).
func RegisterGetListDeregister(t *testing.T, newReg NewFunc) {
	t.Helper()
	p1, p2, p3 := newReg(t), newReg(t), newReg(t)
	if _, err := p1.GetService("crud"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService of nothing: %v", err)
	}
	regs := []struct {
		r registry.Registry
		s *registry.Service
	}{{p1, Svc("crud", "v1", "a", "b")}, {p2, Svc("crud", "v2", "c")}, {p3, Svc("crud2", "v1", "d")}}
	for _, x := range regs {
		if err := x.r.Register(x.s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := p3.GetService("crud") // "crud" does not match "crud2"
	if err != nil || len(got) != 2 || got[0].Version != "v1" || got[1].Version != "v2" {
		t.Fatalf("GetService = %+v, %v", got, err)
	}
	if want := Svc("crud", "v1", "a", "b"); !registry.Equal(got[0], want) {
		t.Fatalf("round trip lost fields:\n got %+v %+v\nwant %+v %+v", got[0], got[0].Nodes[0], want, want.Nodes[0])
	}
	if !slices.Equal(NodeIDs(got[1]), []string{"c"}) {
		t.Fatalf("v2 nodes %v", NodeIDs(got[1]))
	}
	all, err := p1.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all {
		if s.Name == "crud" || s.Name == "crud2" {
			names = append(names, s.Name+"/"+s.Version)
		}
	}
	slices.Sort(names) // ListServices promises no order
	if !slices.Equal(names, []string{"crud/v1", "crud/v2", "crud2/v1"}) {
		t.Fatalf("ListServices has %v", names)
	}
	for _, x := range regs {
		if err := x.r.Deregister(x.s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p1.GetService("crud"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("after Deregister: %v", err)
	}
	if err := p1.Deregister(Svc("crud", "v1", "a")); err != nil {
		t.Fatalf("Deregister of an unknown node: %v", err)
	}
}

// WatchCreateUpdateDelete watches every service while processes come, change version and go:
// each change is one event (a node moving to another version is an Update of the old version
// then a Create of the new), and Stop ends the watch.
func WatchCreateUpdateDelete(t *testing.T, newReg NewFunc) {
	t.Helper()
	p1, p2, p3 := newReg(t), newReg(t), newReg(t)
	if err := p1.Register(Svc("before", "v1", "a")); err != nil {
		t.Fatal(err)
	}
	w, err := p1.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	steps := []struct {
		do     func() error
		action registry.Action
		name   string
		nodes  []string
	}{
		{func() error { return p2.Register(Svc("fresh", "v1", "b")) }, registry.Create, "fresh", []string{"b"}},
		{func() error { return p3.Register(Svc("before", "v1", "c")) }, registry.Update, "before", []string{"a", "c"}},
		{func() error { return p3.Register(Svc("before", "v2", "c")) }, registry.Create, "before", []string{"c"}}, // c moves to v2
		{func() error { return p1.Deregister(Svc("before", "v1", "a")) }, registry.Delete, "before", []string{"a"}},
		{func() error { return p2.Deregister(Svc("fresh", "v1", "b")) }, registry.Delete, "fresh", []string{"b"}},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		ev := Next(t, w, 10*time.Second)
		if i == 2 { // one write moves c from v1 to v2: v1's Update comes first (version order)
			if ev.Action != registry.Update || ev.Service.Version != "v1" || !slices.Equal(NodeIDs(ev.Service), []string{"a"}) {
				t.Fatalf("step 2a: %s %s %v", ev.Action, ev.Service.Version, NodeIDs(ev.Service))
			}
			ev = Next(t, w, 10*time.Second)
		}
		if ev.Action != s.action || ev.Service.Name != s.name || !slices.Equal(NodeIDs(ev.Service), s.nodes) {
			t.Fatalf("step %d: got %s %s %s %v, want %s %s %v", i, ev.Action, ev.Service.Name, ev.Service.Version, NodeIDs(ev.Service), s.action, s.name, s.nodes)
		}
	}
	w.Stop()
	if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Fatalf("Next after Stop: %v", err)
	}
}
