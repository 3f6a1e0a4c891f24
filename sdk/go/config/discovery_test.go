package config

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/etcd"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/server"
)

// runRegistered runs the real daemon (server.Run) on dataDir, registered
// as id in the etcd at endpoints, until stop; it returns once configd has
// registered.
func runRegistered(t *testing.T, dataDir, id string, endpoints []string) (addr string, stop func()) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr = dataDir, "127.0.0.1:0"
	cfg.Registry.Micro.Registry, cfg.Registry.Micro.RegistryAddress, cfg.Registry.Micro.ServerID = "etcd", endpoints, id
	d := configdtest.Run(t, cfg)
	m, err := d.Log.Wait(regexp.MustCompile(`msg=registered .*addr=(\S+)`), d.Done())
	if err != nil {
		t.Fatal(err)
	}
	return m[1], d.Stop
}

func put(t *testing.T, addr, key, value string) int64 {
	t.Helper()
	c, err := apiclient.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := c.Put(context.Background(), key, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	return rsp.Rev
}

// The client finds configd through a real etcd registry, not an address;
// when that configd goes away and another takes over its store elsewhere,
// the client follows through the registry and resumes from its revision.
func TestDiscoveryFollowsConfigdThroughEtcd(t *testing.T) {
	srv := testserver.Etcd(t)
	reg := etcd.New(etcd.Config{}, registry.Addrs(srv.Endpoints...))
	defer reg.Close()
	dataDir := filepath.Join(t.TempDir(), "data")

	addrA, stopA := runRegistered(t, dataDir, "configd-a", srv.Endpoints)
	rev1 := put(t, addrA, "app/k", "1")

	log := configdtest.NewLog()
	c, err := New(context.Background(), WithRegistry(reg), WithLogger(slog.New(slog.NewTextHandler(log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Get("app/k").String(""); got != "1" || c.Rev() < rev1 {
		t.Fatalf("app/k = %q at rev %d, want 1 at %d", got, c.Rev(), rev1)
	}
	if !strings.Contains(log.String(), "addr="+addrA) {
		t.Fatalf("client did not watch configd-a at %s:\n%s", addrA, log)
	}

	// configd-a leaves (deregistering); configd-b serves its store on
	// another port, which the client was never told.
	stopA()
	addrB, _ := runRegistered(t, dataDir, "configd-b", srv.Endpoints)
	if addrB == addrA {
		t.Fatalf("configd-b took configd-a's address %s", addrA)
	}
	rev2 := put(t, addrB, "app/k", "2")
	waitRev(t, c, rev2)
	if got := c.Get("app/k").String(""); got != "2" {
		t.Fatalf("app/k = %q, want 2", got)
	}
	logs := log.String()
	if !regexp.MustCompile(`msg="watching configd" .*addr=` + regexp.QuoteMeta(addrB) + ` since=` + strconv.FormatInt(rev1, 10)).MatchString(logs) {
		t.Errorf("client did not resume on configd-b at %s from rev %d:\n%s", addrB, rev1, logs)
	}
	if strings.Contains(logs, "fresh snapshot") {
		t.Errorf("client took a fresh snapshot instead of resuming:\n%s", logs)
	}
}

// A node that is registered but does not answer is marked and skipped:
// the client reaches the one that does.
func TestDiscoverySkipsADeadNode(t *testing.T) {
	d := startConfigd(t)
	rev := d.put("k", "v")
	reg := memory.New()
	for _, n := range []*registry.Node{
		{Id: "dead", Address: deadAddr(t), Metadata: map[string]string{"tls": "off"}},
		{Id: "live", Address: d.addr, Metadata: map[string]string{"tls": "off"}},
	} {
		if err := reg.Register(&registry.Service{Name: "configd", Nodes: []*registry.Node{n}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 { // round robin starts anywhere: whichever comes first
		c, err := New(context.Background(), WithRegistry(reg), WithLogger(discard()))
		if err != nil {
			t.Fatal(err)
		}
		waitRev(t, c, rev)
		if got := c.Get("k").String(""); got != "v" {
			t.Errorf("k = %q, want v", got)
		}
		c.Close()
	}
}

// Only nodes whose tls metadata matches the client are used; another
// service name is looked up with WithService.
func TestDiscoveryMatchesTLSAndService(t *testing.T) {
	d := startConfigd(t)
	reg := memory.New()
	if err := reg.Register(&registry.Service{Name: "configd", Nodes: []*registry.Node{{Id: "tls", Address: d.addr, Metadata: map[string]string{"tls": "on"}}}}); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), WithRegistry(reg), WithLogger(discard()), WithTimeout(waitLimit/10))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "tls=off") || !strings.Contains(err.Error(), "service configd (registry memory)") {
		t.Fatalf("New with only a TLS node: %v; want ErrUnavailable naming tls=off and the service", err)
	}
	if err := reg.Register(&registry.Service{Name: "configd-blue", Nodes: []*registry.Node{{Id: "blue", Address: d.addr}}}); err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), WithRegistry(reg), WithService("configd-blue"), WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := New(context.Background(), WithService("x")); err == nil || !strings.Contains(err.Error(), "WithRegistry") {
		t.Errorf("WithService alone: %v", err)
	}
}
