package server_test

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/etcd"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/server"
)

// runConfigd runs server.Run with cfg until stop is called, and returns
// the address it listens on and its log.
func runConfigd(t *testing.T, cfg server.Config) (addr string, log *configdtest.Log, stop func()) {
	t.Helper()
	d := configdtest.Run(t, cfg)
	return d.Addr, d.Log, d.Stop
}

// next waits for the next event of w, at most 20 s.
func next(t *testing.T, w registry.Watcher) *registry.Result {
	t.Helper()
	ch := make(chan *registry.Result, 1)
	go func() { r, _ := w.Next(); ch <- r }()
	select {
	case r := <-ch:
		if r == nil {
			t.Fatal("registry watch ended")
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no registry event within 20s")
	}
	return nil
}

// configd registers in a real etcd with its address and metadata, and
// leaves it on shutdown.
func TestConfigdRegistersInEtcd(t *testing.T) {
	srv := testserver.Etcd(t)
	reg := etcd.New(etcd.Config{}, registry.Addrs(srv.Endpoints...))
	defer reg.Close()
	w, err := reg.Watch(registry.WatchService("configd"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// The flags, as a user gives them.
	cfg, err := server.LoadConfig([]string{"--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--registry", "etcd", "--registry-address", strings.Join(srv.Endpoints, ","), "--register-ttl", "5s",
		"--server-metadata", "zone=a,api=ignored"}, envFunc(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addr, log, stop := runConfigd(t, cfg)

	r := next(t, w)
	if r.Action != registry.Create || r.Service.Name != "configd" || r.Service.Version != server.Version() || len(r.Service.Nodes) != 1 {
		t.Fatalf("first event %s %+v, want the creation of configd with one node", r.Action, r.Service)
	}
	n := r.Service.Nodes[0]
	want := map[string]string{"version": server.Version(), "api": "http+grpc", "tls": "off", "zone": "a"}
	if n.Address != addr || !strings.HasPrefix(n.Id, "configd-") || len(n.Metadata) != len(want) {
		t.Errorf("node %+v, want address %s, id configd-..., metadata %v", n, addr, want)
	}
	for k, v := range want {
		if n.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, n.Metadata[k], v)
		}
	}
	// What a client finds answers as configd.
	rsp, err := http.Get("http://" + n.Address + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()

	stop()
	if r := next(t, w); r.Action != registry.Delete || r.Service.Nodes[0].Id != n.Id {
		t.Fatalf("after shutdown: %s %+v, want the node deleted", r.Action, r.Service)
	}
	if _, err := reg.GetService("configd"); err != registry.ErrNotFound {
		t.Errorf("GetService after shutdown: %v, want ErrNotFound", err)
	}
	logs := log.String()
	if d, s := strings.Index(logs, "msg=deregistered"), strings.Index(logs, "msg=stopped"); d < 0 || d > s {
		t.Errorf("want deregistered logged before stopped:\n%s", logs)
	}
}

// hookRegistry is a memory registry that counts registrations and runs
// onDeregister inside Deregister.
type hookRegistry struct {
	*memory.Registry
	registered   chan struct{}
	count        atomic.Int64
	onDeregister func()
}

func (h *hookRegistry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	err := h.Registry.Register(s, opts...)
	h.count.Add(1)
	select {
	case h.registered <- struct{}{}:
	default:
	}
	return err
}

func (h *hookRegistry) Deregister(s *registry.Service, opts ...registry.DeregisterOption) error {
	h.onDeregister()
	return h.Registry.Deregister(s, opts...)
}

// The registration is refreshed within its TTL for as long as configd
// runs, and leaves the registry while configd still accepts connections:
// before the servers stop accepting and drain.
func TestConfigdRefreshesAndDeregistersBeforeDraining(t *testing.T) {
	var addr string
	var servedDuringDeregister atomic.Bool
	reg := &hookRegistry{Registry: memory.New(), registered: make(chan struct{}, 1), onDeregister: func() {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		rsp, err := c.Get("http://" + addr + "/healthz")
		if err == nil {
			rsp.Body.Close()
			servedDuringDeregister.Store(rsp.StatusCode == http.StatusOK)
		}
	}}
	cfg := server.DefaultConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Registry.Use = reg
	cfg.Registry.Micro.RegisterTTL = 300 * time.Millisecond
	cfg.Registry.Micro.RegisterInterval = 50 * time.Millisecond
	addr, _, stop := runConfigd(t, cfg)

	// Ten registrations span more than 1.5 TTLs: the node must still be
	// there, refreshed rather than expired.
	for reg.count.Load() < 10 {
		select {
		case <-reg.registered:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d registrations within 10s", reg.count.Load())
		}
	}
	svcs, err := reg.GetService("configd")
	if err != nil || len(svcs[0].Nodes) != 1 || svcs[0].Nodes[0].Address != addr {
		t.Fatalf("GetService: %+v, %v; want one node at %s", svcs, err, addr)
	}
	stop()
	if !servedDuringDeregister.Load() {
		t.Error("configd no longer answered when it deregistered: it must leave the registry before it stops accepting")
	}
	if _, err := reg.GetService("configd"); err != registry.ErrNotFound {
		t.Errorf("GetService after shutdown: %v, want ErrNotFound", err)
	}
}

// On all interfaces, configd registers an address other hosts can dial.
func TestConfigdAdvertisesAnInterfaceAddress(t *testing.T) {
	reg := memory.New()
	cfg := server.DefaultConfig()
	cfg.HTTPAddr = "0.0.0.0:0"
	cfg.Registry.Use = reg
	addr, log, _ := runConfigd(t, cfg)
	if _, err := log.Wait(regexp.MustCompile(`msg=registered`), nil); err != nil {
		t.Fatal(err)
	}
	svcs, err := reg.GetService("configd")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(svcs[0].Nodes[0].Address)
	_, boundPort, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || port != boundPort {
		t.Fatalf("registered %s for a listener on %s", svcs[0].Nodes[0].Address, addr)
	}
	rsp, err := http.Get("http://" + svcs[0].Nodes[0].Address + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
}

// Without a registry, configd registers nowhere and says nothing of it.
func TestConfigdRegistersNowhereByDefault(t *testing.T) {
	cfg, err := server.LoadConfig([]string{"--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data")}, envFunc(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, log, stop := runConfigd(t, cfg)
	stop()
	if s := log.String(); strings.Contains(s, "registered") {
		t.Errorf("configd without a registry logged a registration:\n%s", s)
	}
}

// configd -h lists the flags of micro's that configd uses with their
// variables and config keys, and says that configd registers nowhere by
// default.
func TestConfigdHelpListsRegistryFlags(t *testing.T) {
	var usage strings.Builder
	if _, err := server.LoadConfig([]string{"-h"}, envFunc(nil), &usage); err == nil {
		t.Fatal("-h: no error")
	}
	for _, w := range []string{"-registry", "MICRO_REGISTRY", "default none", "-registry-address", "MICRO_REGISTRY_ADDRESS",
		"registry.address", "-server-advertise", "-register-ttl", "MICRO_REGISTER_INTERVAL", "registry.interval"} {
		if !strings.Contains(usage.String(), w) {
			t.Errorf("usage does not mention %s", w)
		}
	}
}

// configd offers only the flags of micro's it uses: the others (whose help
// used to say "not used by configd") are neither in -h nor accepted, and
// the error says why.
func TestConfigdOffersOnlyTheMicroFlagsItUses(t *testing.T) {
	var usage strings.Builder
	if _, err := server.LoadConfig([]string{"-h"}, envFunc(nil), &usage); err == nil {
		t.Fatal("-h: no error")
	}
	for _, flag := range []string{"transport", "transport-tls-ca", "transport-tls-cert", "transport-tls-key", "selector",
		"selector-strategy", "client-request-timeout", "server-address"} {
		if strings.Contains(usage.String(), "-"+flag+" ") || strings.Contains(usage.String(), "-"+flag+"\n") {
			t.Errorf("usage offers --%s", flag)
		}
		_, err := server.LoadConfig([]string{"--" + flag, "x"}, envFunc(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--"+flag+" is a flag of micro services, not used by configd") {
			t.Errorf("--%s: %v, want it refused as not configd's", flag, err)
		}
	}
	// Their variables are not read, but for MICRO_SERVER_ADDRESS, refused
	// as before: configd listens on --http-addr.
	if _, err := server.LoadConfig(nil, envFunc(map[string]string{"MICRO_TRANSPORT": "nope", "MICRO_CLIENT_REQUEST_TIMEOUT": "soon"}), io.Discard); err != nil {
		t.Errorf("MICRO_TRANSPORT, MICRO_CLIENT_REQUEST_TIMEOUT: %v, want them ignored", err)
	}
	if _, err := server.LoadConfig(nil, envFunc(map[string]string{"MICRO_SERVER_ADDRESS": ":1"}), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--http-addr") {
		t.Errorf("MICRO_SERVER_ADDRESS: %v, want it refused", err)
	}
}
