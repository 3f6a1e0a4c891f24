package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/sdk/go/micro"
	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/sdk/go/micro/registry"
)

// ServiceName is the service name configd registers under unless
// --server-name (MICRO_SERVER_NAME, registry.service) names another.
const ServiceName = api.ServiceName

// API is the value of the "api" metadata of configd's nodes: the HTTP API
// and gRPC share the registered address.
const API = api.NodeAPI

// Registration defaults, as in micro: a node lives 30 s without a refresh
// and is refreshed every TTL/3.
const (
	DefaultRegisterTTL = 30 * time.Second
	// registryCallTimeout bounds one Register or Deregister call when
	// --registry-timeout does not.
	registryCallTimeout = 5 * time.Second
)

// RegistryConfig says where configd registers itself, so that clients find
// it through a registry (docs/registry.md). Off unless a registry is named
// or given in code.
type RegistryConfig struct {
	// Micro holds micro's settings that configd uses (micro.Config.Settings):
	// --registry, --registry-address, --registry-timeout, --server-name,
	// --server-version, --server-id, --server-advertise, --server-metadata,
	// --register-ttl and --register-interval, each with its MICRO_*
	// variable, over the config file's registry: section (Config.Settings).
	// A zero field is unset. configd offers no other flag of micro's: it
	// serves no micro transport and calls no service. MICRO_SERVER_ADDRESS
	// is refused: configd listens on --http-addr.
	Micro micro.Config
	// Use is a registry given in code (tests, an embedding program): it is
	// used when Micro.Registry names none, and is not closed by Run.
	Use registry.Registry
}

// on reports whether configd registers itself.
func (r RegistryConfig) on() bool { return r.Micro.Registry != "" || r.Use != nil }

// check says what is wrong with r, or returns nil.
func (r RegistryConfig) check() error {
	m := r.Micro
	switch {
	case m.Registry != "" && !slices.Contains(catalog.Registries().Names(), m.Registry):
		return fmt.Errorf("--registry %q: want one of %s", m.Registry, strings.Join(catalog.Registries().Names(), ", "))
	case len(m.RegistryAddress) > 0 && m.Registry == "":
		return errors.New("a registry address (--registry-address, MICRO_REGISTRY_ADDRESS, registry.address) needs a registry name (--registry, MICRO_REGISTRY, registry.name)")
	case m.ServerAddress != "":
		return errors.New("--server-address (MICRO_SERVER_ADDRESS) is not used by configd: it listens on --http-addr; --server-advertise sets the registered address")
	case m.ServerAdvertise != "":
		if _, port, err := net.SplitHostPort(m.ServerAdvertise); err != nil || port == "" {
			return fmt.Errorf("--server-advertise %q is not host:port", m.ServerAdvertise)
		}
	}
	ttl, interval := r.timing()
	if interval >= ttl {
		return fmt.Errorf("--register-interval %v must be shorter than --register-ttl %v", interval, ttl)
	}
	return nil
}

// timing returns the registration TTL and refresh interval, defaults
// filled in.
func (r RegistryConfig) timing() (ttl, interval time.Duration) {
	ttl, interval = r.Micro.RegisterTTL, r.Micro.RegisterInterval
	if ttl == 0 {
		ttl = DefaultRegisterTTL
	}
	if interval == 0 {
		interval = ttl / 3
	}
	return ttl, interval
}

// announcer keeps configd registered while it serves. A nil *announcer
// (no registry) does nothing.
type announcer struct {
	reg     registry.Registry
	owned   io.Closer // the registry, when built here
	ttl     time.Duration
	every   time.Duration
	timeout time.Duration
	logger  *slog.Logger
	cfg     RegistryConfig

	mu   sync.Mutex
	svc  *registry.Service // set by start
	stop chan struct{}
	done chan struct{}
}

// newAnnouncer builds the registry cfg names (nil, nil when registration
// is off). It registers nothing yet: see start.
func newAnnouncer(cfg Config, logger *slog.Logger) (*announcer, error) {
	rc := cfg.Registry
	if !rc.on() {
		return nil, nil
	}
	if err := rc.check(); err != nil {
		return nil, fmt.Errorf("invalid configuration: registry: %w", err)
	}
	a := &announcer{logger: logger, cfg: rc, reg: rc.Use, timeout: rc.Micro.RegistryTimeout}
	a.ttl, a.every = rc.timing()
	if a.timeout == 0 {
		a.timeout = registryCallTimeout
	}
	if rc.Micro.Registry != "" {
		var opts []registry.Option
		if len(rc.Micro.RegistryAddress) > 0 {
			opts = append(opts, registry.Addrs(rc.Micro.RegistryAddress...))
		}
		if rc.Micro.RegistryTimeout > 0 {
			opts = append(opts, registry.Timeout(rc.Micro.RegistryTimeout))
		}
		r, err := catalog.Default().NewRegistry(rc.Micro.Registry, opts...)
		if err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		a.reg = r
		a.owned, _ = r.(io.Closer)
	}
	return a, nil
}

// service is the registration of configd's node at addr.
func (a *announcer) service(addr, tls string) *registry.Service {
	m := a.cfg.Micro
	name, version, id := m.ServerName, m.ServerVersion, m.ServerID
	if name == "" {
		name = ServiceName
	}
	if version == "" {
		version = Version()
	}
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = name + "-" + hex.EncodeToString(b[:])
	}
	md := maps.Clone(m.ServerMetadata)
	if md == nil {
		md = map[string]string{}
	}
	// configd's own keys win over --server-metadata.
	md["version"] = Version()
	md["api"] = API
	md["tls"] = "off"
	switch tls {
	case "on":
		md["tls"] = "on"
	case "mutual":
		md["tls"] = "on"
		md["client_cert"] = "required"
	}
	return &registry.Service{Name: name, Version: version,
		Nodes: []*registry.Node{{Id: id, Address: addr, Metadata: md}}}
}

// start registers configd's node, listening at bound, and keeps it
// registered every interval until deregister. A registry that cannot be
// reached is logged and tried again at the next interval: configd serves
// regardless.
func (a *announcer) start(bound net.Addr, tls string) {
	if a == nil {
		return
	}
	addr := a.cfg.Micro.ServerAdvertise
	if addr == "" {
		addr = advertiseAddr(bound)
	}
	a.mu.Lock()
	a.svc = a.service(addr, tls)
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	a.mu.Unlock()
	n := a.svc.Nodes[0]
	ok := a.register()
	if ok {
		a.logger.Info("registered", "registry", a.reg.String(), "service", a.svc.Name, "id", n.Id, "addr", n.Address, "ttl", a.ttl)
	}
	go a.refresh(ok)
}

func (a *announcer) register() bool {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	err := a.reg.Register(a.svc, registry.RegisterTTL(a.ttl), registry.RegisterContext(ctx))
	if err != nil {
		a.logger.Warn("cannot register in the registry; retrying", "registry", a.reg.String(), "service", a.svc.Name,
			"every", a.every, "err", err)
	}
	return err == nil
}

// refresh registers again every interval, so that the node outlives its
// TTL only while configd runs.
func (a *announcer) refresh(ok bool) {
	defer close(a.done)
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		now := a.register()
		if now && !ok {
			a.logger.Info("registered", "registry", a.reg.String(), "service", a.svc.Name, "id", a.svc.Nodes[0].Id, "addr", a.svc.Nodes[0].Address)
		}
		ok = now
	}
}

// deregister stops the refreshes and removes configd's node from the
// registry, waiting at most timeout; it is the first step of a shutdown,
// before the servers drain. Calling it again does nothing.
func (a *announcer) deregister(timeout time.Duration) {
	if a == nil {
		return
	}
	a.mu.Lock()
	svc, stop, done := a.svc, a.stop, a.done
	a.svc = nil
	a.mu.Unlock()
	if svc == nil {
		return
	}
	close(stop)
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), min(timeout, a.timeout))
	defer cancel()
	if err := a.reg.Deregister(svc, registry.DeregisterContext(ctx)); err != nil {
		a.logger.Warn("cannot deregister; the registry drops the node when its TTL passes", "registry", a.reg.String(),
			"id", svc.Nodes[0].Id, "ttl", a.ttl, "err", err)
		return
	}
	a.logger.Info("deregistered", "registry", a.reg.String(), "service", svc.Name, "id", svc.Nodes[0].Id)
}

// close deregisters (if still registered) and releases the registry built
// by newAnnouncer.
func (a *announcer) close(timeout time.Duration) {
	if a == nil {
		return
	}
	a.deregister(timeout)
	if a.owned != nil {
		if err := a.owned.Close(); err != nil {
			a.logger.Warn("close registry", "err", err)
		}
	}
}

// advertiseAddr is the address to register for a listener bound to addr:
// addr itself, unless its host is unspecified (0.0.0.0, ::), which other
// hosts cannot dial: then the first private, else global unicast, address
// of the host's interfaces, else loopback.
func advertiseAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsUnspecified() {
		return addr.String()
	}
	return net.JoinHostPort(pickIP(interfaceAddrs()), port)
}

func interfaceAddrs() []net.IP {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

// pickIP prefers a private IPv4, then any private, then a global unicast
// address, then loopback.
func pickIP(ips []net.IP) string {
	for _, pass := range []func(net.IP) bool{
		func(ip net.IP) bool { return ip.IsPrivate() && ip.To4() != nil },
		net.IP.IsPrivate,
		net.IP.IsGlobalUnicast,
	} {
		for _, ip := range ips {
			if pass(ip) {
				return ip.String()
			}
		}
	}
	return "127.0.0.1"
}
