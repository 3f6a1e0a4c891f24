package remote_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/registry/registrytest"
	"github.com/configd/configd/sdk/go/micro/registry/remote"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

func serve(t *testing.T) (func(), *remote.Registry) {
	t.Helper()
	tr := tcp.New()
	h, err := remote.NewHandler(memory.New())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Name(remote.ServiceName), server.Transport(tr), server.GracePeriod(0), server.DrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(h, server.HandlerName("Registry")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		h.Close()
		srv.Stop(context.Background())
	}
	t.Cleanup(stop)
	cli, err := client.New(client.Transport(tr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return stop, remote.New(cli, remote.Address(srv.Addr()))
}

func next(t *testing.T, w registry.Watcher) (*registry.Result, error) {
	t.Helper()
	return registrytest.Result(t, w, 10*time.Second)
}

func TestRemoteRegistryAcrossTheWire(t *testing.T) {
	stop, reg := serve(t)
	if _, err := reg.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("GetService of nothing: %v, want ErrNotFound", err)
	}
	w, err := reg.Watch(registry.WatchService("greeter"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	s := &registry.Service{Name: "greeter", Version: "v1", Nodes: []*registry.Node{{Id: "a", Address: "a:1"}}}
	if err := reg.Register(s, registry.RegisterTTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(&registry.Service{Name: "other", Nodes: []*registry.Node{{Id: "o"}}}); err != nil {
		t.Fatal(err)
	}
	got, err := reg.GetService("greeter")
	if err != nil || len(got) != 1 || got[0].Nodes[0].Address != "a:1" {
		t.Fatalf("GetService = %+v, %v", got, err)
	}
	if all, err := reg.ListServices(); err != nil || len(all) != 2 {
		t.Fatalf("ListServices = %d, %v", len(all), err)
	}
	if ev, err := next(t, w); err != nil || ev.Action != registry.Create || ev.Service.Name != "greeter" {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	if err := reg.Deregister(s); err != nil {
		t.Fatal(err)
	}
	if ev, err := next(t, w); err != nil || ev.Action != registry.Delete {
		t.Fatalf("second event %+v, %v (the other service must be filtered out)", ev, err)
	}
	// The registry server going away ends the watch loudly, not silently.
	stop()
	if _, err := next(t, w); err == nil {
		t.Fatal("watch survived its server without an error")
	}
}
