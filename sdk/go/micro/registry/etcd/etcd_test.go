package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/etcd"
	"github.com/configd/configd/sdk/go/micro/registry/registrytest"
)

func svc(name, version string, nodes ...string) *registry.Service {
	s := &registry.Service{Name: name, Version: version, Metadata: map[string]string{"team": "core"},
		Endpoints: []*registry.Endpoint{{Name: "Greeter.Hello"}}}
	for _, n := range nodes {
		s.Nodes = append(s.Nodes, &registry.Node{Id: n, Address: n + ":1", Metadata: map[string]string{"zone": "z-" + n}})
	}
	return s
}

func leases(t *testing.T, c *clientv3.Client) int {
	t.Helper()
	l, err := c.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Leases)
}

func TestEtcd(t *testing.T) {
	srv := testserver.Etcd(t)
	newReg := func(t *testing.T) *etcd.Registry {
		r := etcd.New(etcd.Config{}, registry.Addrs(srv.Endpoints...), registry.Timeout(5*time.Second))
		t.Cleanup(func() { r.Close() })
		return r
	}

	t.Run("RegisterGetListDeregister", func(t *testing.T) {
		registrytest.RegisterGetListDeregister(t, func(t *testing.T) registry.Registry { return newReg(t) })
	})

	t.Run("NodeIdWithSlashes", func(t *testing.T) {
		r := newReg(t)
		if err := r.Register(svc("slashes", "v1", "c/with/slashes")); err != nil {
			t.Fatal(err)
		}
		got, err := r.GetService("slashes")
		if err != nil || len(got) != 1 || got[0].Nodes[0].Id != "c/with/slashes" {
			t.Fatalf("GetService = %+v, %v", got, err)
		}
		if err := r.Deregister(svc("slashes", "v1", "c/with/slashes")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetService("slashes"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("after Deregister: %v", err)
		}
	})

	t.Run("OneLeaseKeptAliveAndExpiry", func(t *testing.T) {
		watcher := newReg(t)
		w, err := watcher.Watch(registry.WatchService("ttl"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		before := leases(t, watcher.Client())
		crashed := etcd.New(etcd.Config{}, registry.Addrs(srv.Endpoints...))
		alive := newReg(t)
		for range 5 { // a server's heartbeats: the lease is granted once
			if err := crashed.Register(svc("ttl", "v1", "a", "b"), registry.RegisterTTL(2*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if n := leases(t, watcher.Client()) - before; n != 1 {
			t.Fatalf("%d leases after 5 Registers of 2 nodes, want 1", n)
		}
		if err := alive.Register(svc("ttl", "v1", "c"), registry.RegisterTTL(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		for ev := registrytest.Next(t, w, 10*time.Second); len(ev.Service.Nodes) != 3; ev = registrytest.Next(t, w, 10*time.Second) {
		}
		// The keep-alive stream, not Register, keeps c past several TTLs; the crashed
		// registry stops keeping its lease alive (its client goes away without a revoke) and
		// its nodes expire together.
		crashedClient := crashed.Client()
		crashedClient.Close() // no Close of the registry: that would revoke the lease
		start := time.Now()
		ev := registrytest.Next(t, w, 15*time.Second)
		if ev.Action != registry.Update || len(ev.Service.Nodes) != 1 || ev.Service.Nodes[0].Id != "c" {
			t.Fatalf("after the crash: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
		}
		if d := time.Since(start); d < time.Second {
			t.Fatalf("crashed nodes expired after %v, before their 2s TTL", d)
		}
		// c stays, with no Register since, for more than two TTLs.
		quiet := time.NewTimer(5 * time.Second)
		defer quiet.Stop()
		evs := make(chan *registry.Result, 1)
		go func() { r, _ := w.Next(); evs <- r }()
		select {
		case ev := <-evs:
			t.Fatalf("c changed with its lease kept alive: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
		case <-quiet.C:
		}
		// Close revokes the lease: c goes at once.
		if err := alive.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-evs:
			if ev.Action != registry.Delete {
				t.Fatalf("after Close: %s", ev.Action)
			}
		case <-time.After(time.Second):
			t.Fatal("c still registered 1s after Close revoked its 2s lease")
		}
	})

	t.Run("LostLeaseIsRegranted", func(t *testing.T) {
		r := newReg(t)
		w, err := r.Watch(registry.WatchService("regrant"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if err := r.Register(svc("regrant", "v1", "a"), registry.RegisterTTL(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		registrytest.Next(t, w, 10*time.Second)
		// Someone revokes the lease (as if etcd had lost it): the keys go, and the next
		// heartbeat puts them back on a new lease.
		l, err := r.Client().Leases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range l.Leases {
			r.Client().Revoke(context.Background(), x.ID)
		}
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Delete {
			t.Fatalf("after revoke: %s", ev.Action)
		}
		deadline := time.Now().Add(10 * time.Second)
		beat := time.NewTicker(50 * time.Millisecond) // the heartbeat interval
		defer beat.Stop()
		for {
			if err := r.Register(svc("regrant", "v1", "a"), registry.RegisterTTL(5*time.Second)); err != nil {
				t.Fatal(err)
			}
			if got, err := r.GetService("regrant"); err == nil && len(got) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("not re-registered within 10s of heartbeats after its lease was lost")
			}
			<-beat.C
		}
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Create {
			t.Fatalf("after re-grant: %s", ev.Action)
		}
	})

	t.Run("WatchAll", func(t *testing.T) {
		registrytest.WatchCreateUpdateDelete(t, func(t *testing.T) registry.Registry { return newReg(t) })
	})
}

func TestEtcdDown(t *testing.T) {
	srv := testserver.NewEtcd(t) // prepared, never started
	r := etcd.New(etcd.Config{}, registry.Addrs(srv.Endpoints...), registry.Timeout(time.Second))
	defer r.Close()
	if err := r.Register(svc("x", "v1", "a"), registry.RegisterTTL(time.Second)); err == nil {
		t.Fatal("Register against no etcd succeeded")
	}
	if _, err := r.GetService("x"); err == nil || errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService against no etcd: %v (want a connection error)", err)
	}
	if _, err := r.Watch(); err == nil {
		t.Fatal("Watch against no etcd succeeded")
	}
}
