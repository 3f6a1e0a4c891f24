package mdns_test

import (
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/mdns"
	"github.com/configd/configd/sdk/go/micro/registry/registrytest"
)

// testInterface is the interface the tests multicast on: MDNS_TEST_INTERFACE, or the system's
// default multicast interface. (Multicast on the default interface and on lo both work in the
// project's sandbox and CI; the variable is for machines where they do not.)
var testInterface = os.Getenv("MDNS_TEST_INTERFACE")

// pair returns two registries in one fresh domain, as two processes on one link would have.
func pair(t *testing.T, iface string) (*mdns.Registry, *mdns.Registry) {
	t.Helper()
	domain := mdns.RandomDomain()
	mk := func() *mdns.Registry {
		r := mdns.New(mdns.Config{Domain: domain, Interface: iface, PollInterval: 100 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)}, registry.Timeout(150*time.Millisecond))
		t.Cleanup(func() { r.Close() })
		return r
	}
	return mk(), mk()
}

func greeter(version string, ids ...string) *registry.Service {
	s := &registry.Service{Name: "greeter", Version: version, Metadata: map[string]string{"k": `quote " back \ slash`},
		Endpoints: []*registry.Endpoint{{Name: "Greeter.Hello"}}}
	for _, id := range ids {
		s.Nodes = append(s.Nodes, &registry.Node{Id: id, Address: "127.0.0.1:" + map[string]string{"a": "1001", "b": "1002"}[id], Metadata: map[string]string{"node": id}})
	}
	return s
}

// next waits for one watch event.
func next(t *testing.T, w registry.Watcher) *registry.Result {
	t.Helper()
	return registrytest.Next(t, w, 10*time.Second)
}

func TestTwoRegistriesSeeEachOther(t *testing.T) {
	for _, iface := range []string{testInterface, "lo"} {
		t.Run("interface="+iface, func(t *testing.T) {
			a, b := pair(t, iface)
			if _, err := b.GetService("greeter"); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("GetService before Register: %v, want ErrNotFound", err)
			}
			if err := a.Register(greeter("v1", "a"), registry.RegisterTTL(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := b.Register(greeter("v1", "b")); err != nil {
				t.Fatal(err)
			}
			for name, r := range map[string]*mdns.Registry{"a": a, "b": b} {
				got, err := r.GetService("greeter")
				if err != nil {
					t.Fatalf("%s: GetService: %v", name, err)
				}
				if !registry.Equal(got[0], greeter("v1", "a", "b")) || len(got) != 1 {
					t.Fatalf("%s: GetService = %+v, want both nodes with every field", name, got[0])
				}
			}
			all, err := b.ListServices()
			if err != nil || len(all) != 1 || len(all[0].Nodes) != 2 {
				t.Fatalf("ListServices = %v, %v", all, err)
			}
			if err := a.Deregister(greeter("v1", "a")); err != nil {
				t.Fatal(err)
			}
			got, err := b.GetService("greeter")
			if err != nil || len(got[0].Nodes) != 1 || got[0].Nodes[0].Id != "b" {
				t.Fatalf("after Deregister of a: %v, %v", got, err)
			}
		})
	}
}

func TestWatchSeesCreateUpdateDelete(t *testing.T) {
	a, b := pair(t, testInterface)
	w, err := b.Watch(registry.WatchService("greeter"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := a.Register(greeter("v1", "a")); err != nil {
		t.Fatal(err)
	}
	if r := next(t, w); r.Action != registry.Create || !registry.Equal(r.Service, greeter("v1", "a")) {
		t.Fatalf("first event %s %+v, want create of a", r.Action, r.Service)
	}
	if err := a.Register(greeter("v1", "b")); err != nil {
		t.Fatal(err)
	}
	if r := next(t, w); r.Action != registry.Update || len(r.Service.Nodes) != 2 {
		t.Fatalf("second event %s %v, want update to a and b", r.Action, registrytest.NodeIDs(r.Service))
	}
	if err := a.Deregister(greeter("v1", "a", "b")); err != nil {
		t.Fatal(err)
	}
	// The two nodes' responders stop one after the other: a poll between the two may report an
	// update to the one left before the delete.
	r := next(t, w)
	if r.Action == registry.Update && len(r.Service.Nodes) == 1 {
		r = next(t, w)
	}
	if r.Action != registry.Delete || r.Service.Name != "greeter" {
		t.Fatalf("after the deregistration: %s %+v, want delete", r.Action, r.Service)
	}
}

// A node registered with a TTL and never refreshed (a hung process) leaves the other
// registries' view when the TTL passes; a closed registry (a crashed process: its responders
// are gone) leaves it at the next query.
func TestTTLExpiryAndCrash(t *testing.T) {
	a, b := pair(t, testInterface)
	w, err := b.Watch(registry.WatchService("greeter"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := a.Register(greeter("v1", "a"), registry.RegisterTTL(500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if r := next(t, w); r.Action != registry.Create {
		t.Fatalf("event %s, want create", r.Action)
	}
	start := time.Now()
	if r := next(t, w); r.Action != registry.Delete {
		t.Fatalf("event %s, want delete by TTL", r.Action)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("TTL 500ms took %v to expire", d)
	}

	if err := a.Register(greeter("v1", "b")); err != nil {
		t.Fatal(err)
	}
	if r := next(t, w); r.Action != registry.Create {
		t.Fatalf("event %s, want create of b", r.Action)
	}
	a.Close()
	if r := next(t, w); r.Action != registry.Delete || r.Service.Nodes[0].Id != "b" {
		t.Fatalf("event %s, want delete of b after its registry closed", r.Action)
	}
	if err := a.Register(greeter("v1", "a")); !errors.Is(err, mdns.ErrClosed) {
		t.Fatalf("Register after Close: %v, want ErrClosed", err)
	}
}

// Registering again within the TTL keeps the node; the registration that was refreshed does
// not expire on its first timer.
func TestRefreshKeepsNode(t *testing.T) {
	a, b := pair(t, testInterface)
	ttl := 400 * time.Millisecond
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if err := a.Register(greeter("v1", "a"), registry.RegisterTTL(ttl)); err != nil {
			t.Fatal(err)
		}
		got, err := b.GetService("greeter") // takes the query timeout, well under the TTL
		if err != nil {
			t.Fatalf("refreshed node gone: %v", err)
		}
		if len(got[0].Nodes) != 1 {
			t.Fatalf("nodes %v", registrytest.NodeIDs(got[0]))
		}
	}
}

func TestUnknownInterface(t *testing.T) {
	r := mdns.New(mdns.Config{Interface: "no-such-if0"})
	defer r.Close()
	if err := r.Register(greeter("v1", "a")); err == nil {
		t.Fatal("Register on an unknown interface: no error")
	}
	if _, err := r.ListServices(); err == nil {
		t.Fatal("ListServices on an unknown interface: no error")
	}
}
