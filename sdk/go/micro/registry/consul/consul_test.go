package consul_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/consul"
	"github.com/configd/configd/sdk/go/micro/registry/registrytest"
)

func svc(name, version string, nodes ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: version, Metadata: map[string]string{"team": "core"},
		Endpoints: []*registry.Endpoint{{Name: "Greeter.Hello", Metadata: map[string]string{"stream": "false"}}}}
	for _, n := range nodes {
		s.Nodes = append(s.Nodes, &registry.Node{Id: n, Address: "127.0.0.1:" + map[string]string{"a": "1001", "b": "1002", "c": "1003"}[n],
			Metadata: map[string]string{"zone": "z-" + n}})
	}
	return s
}

// until consumes events until one matches, for changes Consul reports in several steps (two
// nodes registered one after the other).
func until(t *testing.T, w registry.Watcher, within time.Duration, match func(*registry.Result) bool) *registry.Result {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ev := registrytest.Next(t, w, time.Until(deadline))
		if match(ev) {
			return ev
		}
	}
}

func TestConsul(t *testing.T) {
	srv := testserver.Consul(t)
	r := consul.New(consul.Config{}, registry.Addrs(srv.Addr), registry.Timeout(5*time.Second))

	t.Run("RegisterGetListDeregister", func(t *testing.T) {
		registrytest.RegisterGetListDeregister(t, func(*testing.T) registry.Registry { return r })
	})

	t.Run("TTLExpiryAndHeartbeat", func(t *testing.T) {
		w, err := r.Watch(registry.WatchService("ttl"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if err := r.Register(svc("ttl", "v1", "a", "b"), registry.RegisterTTL(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		until(t, w, 10*time.Second, func(ev *registry.Result) bool { return len(ev.Service.Nodes) == 2 })
		// Each node has its own TTL check, passing (Consul does not report the check's
		// DeregisterCriticalServiceAfter back, so that part is not checked here).
		checks, _, err := r.Client().Health().Checks("ttl", &api.QueryOptions{Filter: `ServiceID == "a"`})
		if err != nil || len(checks) != 1 {
			t.Fatalf("checks of a: %v, %v", checks, err)
		}
		for _, c := range checks {
			if c.CheckID != "service:a" || c.Type != "ttl" || c.Status != api.HealthPassing {
				t.Fatalf("check %s: type %q status %q", c.CheckID, c.Type, c.Status)
			}
		}
		// b's process "dies": only a keeps heartbeating, for longer than the TTL.
		done := make(chan struct{})
		beat := make(chan error, 1)
		go func() {
			tk := time.NewTicker(500 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-done:
					beat <- nil
					return
				case <-tk.C:
					if err := r.Register(svc("ttl", "v1", "a"), registry.RegisterTTL(2*time.Second)); err != nil {
						beat <- err
						return
					}
				}
			}
		}()
		start := time.Now()
		ev := registrytest.Next(t, w, 15*time.Second)
		close(done)
		if err := <-beat; err != nil {
			t.Fatal(err)
		}
		if ev.Action != registry.Update || len(ev.Service.Nodes) != 1 || ev.Service.Nodes[0].Id != "a" {
			t.Fatalf("after b's TTL: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
		}
		if d := time.Since(start); d < time.Second {
			t.Fatalf("b expired after %v, before its 2s TTL", d)
		}
		// An agent that lost the service (restart, operator) gets it back on the next heartbeat.
		if err := r.Client().Agent().ServiceDeregister("a"); err != nil {
			t.Fatal(err)
		}
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Delete {
			t.Fatalf("after the agent dropped a: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
		}
		if err := r.Register(svc("ttl", "v1", "a"), registry.RegisterTTL(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Create || ev.Service.Nodes[0].Id != "a" {
			t.Fatalf("after re-registering a: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
		}
		if err := r.Deregister(svc("ttl", "v1", "a", "b")); err != nil {
			t.Fatal(err)
		}
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Delete {
			t.Fatalf("after Deregister: %s", ev.Action)
		}
	})

	t.Run("WatchAll", func(t *testing.T) {
		if err := r.Register(svc("before", "v1", "a")); err != nil {
			t.Fatal(err)
		}
		w, err := r.Watch()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		steps := []struct {
			do     func() error
			action registry.Action
			name   string
			// nodes is how many nodes the event names, at least min.
			min, nodes int
		}{
			{func() error { return r.Register(svc("fresh", "v1", "b")) }, registry.Create, "fresh", 1, 1},
			{func() error { return r.Register(svc("before", "v1", "c")) }, registry.Update, "before", 2, 2},
			// Two nodes deregistered one after the other show as an Update
			// then a Delete of the last, or, when Consul's index moved
			// past both at once, one Delete of both.
			{func() error { return r.Deregister(svc("before", "v1", "a", "c")) }, registry.Delete, "before", 1, 2},
			{func() error { return r.Deregister(svc("fresh", "v1", "b")) }, registry.Delete, "fresh", 1, 1},
		}
		for i, s := range steps {
			if err := s.do(); err != nil {
				t.Fatal(err)
			}
			// Two nodes deregistered one after the other may show an Update first.
			ev := until(t, w, 10*time.Second, func(ev *registry.Result) bool { return ev.Action == s.action })
			if n := len(ev.Service.Nodes); ev.Action != s.action || ev.Service.Name != s.name || n < s.min || n > s.nodes {
				t.Fatalf("step %d: got %s %s %v, want %s %s with %d to %d nodes", i, ev.Action, ev.Service.Name, registrytest.NodeIDs(ev.Service), s.action, s.name, s.min, s.nodes)
			}
		}
		w.Stop()
		if _, err := w.Next(); !errors.Is(err, registry.ErrWatcherStopped) {
			t.Fatalf("Next after Stop: %v", err)
		}
	})

	t.Run("ForeignService", func(t *testing.T) {
		// A service registered by another tool is listed with an empty version.
		if err := r.Client().Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "x1", Name: "foreign", Address: "10.0.0.1", Port: 80}); err != nil {
			t.Fatal(err)
		}
		defer r.Client().Agent().ServiceDeregister("x1")
		got, err := r.GetService("foreign")
		if err != nil || len(got) != 1 || got[0].Version != "" || got[0].Nodes[0].Address != "10.0.0.1:80" {
			t.Fatalf("GetService(foreign) = %+v, %v", got, err)
		}
	})
}

func TestConsulDown(t *testing.T) {
	srv := testserver.NewConsul(t) // prepared, never started
	r := consul.New(consul.Config{}, registry.Addrs(srv.Addr), registry.Timeout(2*time.Second))
	if err := r.Register(svc("x", "v1", "a"), registry.RegisterTTL(time.Second)); err == nil {
		t.Fatal("Register against no agent succeeded")
	}
	if _, err := r.GetService("x"); err == nil || errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService against no agent: %v (want a connection error, not ErrNotFound)", err)
	}
	if _, err := r.Watch(); err == nil {
		t.Fatal("Watch against no agent succeeded")
	}
}
