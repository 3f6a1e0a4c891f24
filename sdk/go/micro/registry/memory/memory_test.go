package memory_test

import (
	"errors"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/registry/registrytest"
)

func svc(name, version string, nodes ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: version, Metadata: map[string]string{"k": "v"}}
	for _, n := range nodes {
		s.Nodes = append(s.Nodes, &registry.Node{Id: n, Address: n + ":1"})
	}
	return s
}

// next waits for one event with a bounded timeout.
func next(t *testing.T, w registry.Watcher) *registry.Result {
	t.Helper()
	return registrytest.Next(t, w, 5*time.Second)
}

func TestRegisterGetDeregister(t *testing.T) {
	r := memory.New()
	if _, err := r.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService of nothing: err = %v, want ErrNotFound", err)
	}
	for _, s := range []*registry.Service{svc("greeter", "v1", "a", "b"), svc("greeter", "v2", "c"), svc("other", "", "d")} {
		if err := r.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.GetService("greeter")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Version != "v1" || len(got[0].Nodes) != 2 || got[1].Version != "v2" {
		t.Fatalf("GetService = %+v", got)
	}
	got[0].Nodes[0].Address = "mutated"
	again, _ := r.GetService("greeter")
	if again[0].Nodes[0].Address != "a:1" {
		t.Fatal("GetService returned shared state: a caller's edit leaked into the registry")
	}
	all, _ := r.ListServices()
	if len(all) != 3 {
		t.Fatalf("ListServices = %d services, want 3", len(all))
	}
	if err := r.Deregister(svc("greeter", "v1", "a", "b")); err != nil {
		t.Fatal(err)
	}
	got, _ = r.GetService("greeter")
	if len(got) != 1 || got[0].Version != "v2" {
		t.Fatalf("after Deregister: %+v", got)
	}
}

func TestRegisterRejectsInvalid(t *testing.T) {
	r := memory.New()
	for name, s := range map[string]*registry.Service{
		"nil":        nil,
		"no name":    {Nodes: []*registry.Node{{Id: "a"}}},
		"node no id": {Name: "x", Nodes: []*registry.Node{{Address: "a"}}},
		"nil node":   {Name: "x", Nodes: []*registry.Node{nil}},
	} {
		if err := r.Register(s); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestWatchSeesCreateUpdateDelete(t *testing.T) {
	r := memory.New()
	w, err := r.Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	steps := []struct {
		do      func() error
		action  registry.Action
		nodeIDs int
	}{
		{func() error { return r.Register(svc("greeter", "v1", "a")) }, registry.Create, 1},
		{func() error { return r.Register(svc("greeter", "v1", "b")) }, registry.Update, 2},
		{func() error { return r.Deregister(svc("greeter", "v1", "a")) }, registry.Update, 1},
		{func() error { return r.Deregister(svc("greeter", "v1", "b")) }, registry.Delete, 1},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatal(err)
		}
		ev := next(t, w)
		if ev.Action != st.action || ev.Service.Name != "greeter" || len(ev.Service.Nodes) != st.nodeIDs {
			t.Fatalf("step %d: got %s %v, want %s with %d nodes", i, ev.Action, registrytest.NodeIDs(ev.Service), st.action, st.nodeIDs)
		}
	}
}

func TestReRegisterWithinTTLEmitsNothingAndKeepsNode(t *testing.T) {
	r := memory.New()
	w, _ := r.Watch()
	defer w.Stop()
	s := svc("greeter", "v1", "a")
	if err := r.Register(s, registry.RegisterTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Action != registry.Create {
		t.Fatalf("first event %s, want create", ev.Action)
	}
	if err := r.Register(s, registry.RegisterTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A changed service is the next event: the heartbeat in between produced none.
	s2 := svc("greeter", "v1", "a")
	s2.Metadata["k"] = "changed"
	if err := r.Register(s2, registry.RegisterTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Action != registry.Update || ev.Service.Metadata["k"] != "changed" {
		t.Fatalf("got %s %v, want the metadata update", ev.Action, ev.Service.Metadata)
	}
}

func TestNodeNotRefreshedExpires(t *testing.T) {
	r := memory.New()
	w, _ := r.Watch(registry.WatchService("greeter"))
	defer w.Stop()
	if err := r.Register(svc("greeter", "v1", "forever")); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(svc("greeter", "v1", "crashed"), registry.RegisterTTL(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(svc("noise", "v1", "x")); err != nil { // filtered out of this watch
		t.Fatal(err)
	}
	next(t, w) // create
	next(t, w) // update: crashed joins
	// Nobody reads the registry: the timer alone must remove the node and tell the watcher.
	ev := next(t, w)
	if ev.Action != registry.Update || len(ev.Service.Nodes) != 1 || ev.Service.Nodes[0].Id != "forever" {
		t.Fatalf("expiry event %s %v, want update leaving [forever]", ev.Action, registrytest.NodeIDs(ev.Service))
	}
	got, _ := r.GetService("greeter")
	if len(got) != 1 || len(got[0].Nodes) != 1 {
		t.Fatalf("GetService after expiry = %+v", got)
	}
}

func TestLastNodeExpiringDeletesService(t *testing.T) {
	r := memory.New()
	w, _ := r.Watch()
	defer w.Stop()
	if err := r.Register(svc("greeter", "v1", "a"), registry.RegisterTTL(30*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	next(t, w)
	if ev := next(t, w); ev.Action != registry.Delete || ev.Service.Nodes[0].Id != "a" {
		t.Fatalf("got %s, want delete carrying the last state", ev.Action)
	}
	if _, err := r.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestStopReleasesNext(t *testing.T) {
	r := memory.New()
	w, _ := r.Watch()
	done := make(chan error, 1)
	go func() { _, err := w.Next(); done <- err }()
	w.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, registry.ErrWatcherStopped) {
			t.Fatalf("err = %v, want ErrWatcherStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still blocked after Stop")
	}
}

func TestSlowWatcherOverflowsLoudly(t *testing.T) {
	q := registry.NewQueue(2, nil)
	q.Push(&registry.Result{Action: registry.Create})
	q.Push(&registry.Result{Action: registry.Update})
	if q.Push(&registry.Result{Action: registry.Update}) {
		t.Fatal("third push into a queue of 2 succeeded")
	}
	if _, err := q.Next(); !errors.Is(err, registry.ErrWatcherOverflow) {
		t.Fatalf("err = %v, want ErrWatcherOverflow", err)
	}
}

func TestCatalog(t *testing.T) {
	c, err := registry.NewCatalog(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Add(memory.Config{}); err == nil {
		t.Fatal("adding a name twice succeeded")
	}
	m, err := c.New("memory")
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.NewRegistry()
	if err != nil || r.String() != "memory" {
		t.Fatalf("New(memory) = %v, %v", r, err)
	}
	if _, err := c.New("zookeeper"); err == nil {
		t.Fatal("New of an unknown name succeeded")
	}
}
