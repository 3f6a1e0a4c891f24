// Package announce keeps configd registered in a service registry
// (Consul, etcd, mDNS, micro's memory or remote registry: whatever
// sdk/go/micro's catalog offers) while it serves, so that clients find it
// there (docs/registry.md): the Announcer registers configd's node once
// the daemon listens, registers it again before its TTL passes, and
// deregisters it first when the daemon shuts down, before the servers
// drain. A registry that cannot be reached is logged and tried again;
// configd serves regardless.
package announce

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/sdk/go/micro/registry"
)

// Registration defaults, as in micro: a node lives 30 s without a refresh
// and is refreshed every TTL/3.
const (
	DefaultRegisterTTL = 30 * time.Second
	// DefaultCallTimeout bounds one Register or Deregister call when the
	// Config's Timeout does not.
	DefaultCallTimeout = 5 * time.Second
)

// Timing returns the registration TTL and refresh interval of ttl and
// interval, a zero one set to its default (DefaultRegisterTTL, TTL/3).
func Timing(ttl, interval time.Duration) (time.Duration, time.Duration) {
	if ttl == 0 {
		ttl = DefaultRegisterTTL
	}
	if interval == 0 {
		interval = ttl / 3
	}
	return ttl, interval
}

// Config says where and as what configd registers.
type Config struct {
	// Registry is where configd registers; Closer, when set, is closed by
	// Close (the registry, when it was built for the Announcer).
	Registry registry.Registry
	Closer   io.Closer
	// Service, Version and ID name the node (defaults: api.ServiceName,
	// configd's version, the service's name and random hex); Advertise is
	// the host:port registered (default: the address the daemon listens
	// on, or an interface address when it listens on all); Metadata is
	// registered with the node, under configd's own keys (version, api,
	// tls, client_cert).
	Service, Version, ID, Advertise string
	Metadata                        map[string]string
	// ConfigdVersion is configd's version.
	ConfigdVersion string
	// TTL and Interval are the registration's lifetime and refresh
	// interval (Timing's defaults); Timeout bounds each call to the
	// registry (default 5 s).
	TTL, Interval, Timeout time.Duration
	Logger                 *slog.Logger
}

// Announcer keeps configd registered while it serves. A nil *Announcer
// (registration off) does nothing.
type Announcer struct {
	reg     registry.Registry
	owned   io.Closer
	ttl     time.Duration
	every   time.Duration
	timeout time.Duration
	logger  *slog.Logger
	cfg     Config

	mu   sync.Mutex
	svc  *registry.Service // set by start
	stop chan struct{}
	done chan struct{}
}

// New returns the Announcer of cfg. It registers nothing yet: see Start.
func New(cfg Config) *Announcer {
	a := &Announcer{reg: cfg.Registry, owned: cfg.Closer, timeout: cfg.Timeout, logger: cfg.Logger, cfg: cfg}
	a.ttl, a.every = Timing(cfg.TTL, cfg.Interval)
	if a.timeout == 0 {
		a.timeout = DefaultCallTimeout
	}
	if a.logger == nil {
		a.logger = slog.Default()
	}
	return a
}

// service is the registration of configd's node at addr.
func (a *Announcer) service(addr, tls string) *registry.Service {
	m := a.cfg
	name, version, id := m.Service, m.Version, m.ID
	if name == "" {
		name = api.ServiceName
	}
	if version == "" {
		version = m.ConfigdVersion
	}
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = name + "-" + hex.EncodeToString(b[:])
	}
	md := maps.Clone(m.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	// configd's own keys win over --server-metadata.
	md["version"] = m.ConfigdVersion
	md["api"] = api.NodeAPI // the HTTP API and gRPC share the address
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

// Start registers configd's node, listening at bound and serving TLS as
// tls says (off, on, mutual), and keeps it registered every interval
// until Deregister. A registry that cannot be
// reached is logged and tried again at the next interval: configd serves
// regardless.
func (a *Announcer) Start(bound net.Addr, tls string) {
	if a == nil {
		return
	}
	addr := a.cfg.Advertise
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

func (a *Announcer) register() bool {
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
func (a *Announcer) refresh(ok bool) {
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

// Deregister stops the refreshes and removes configd's node from the
// registry, waiting at most timeout; it is the first step of a shutdown,
// before the servers drain. Calling it again does nothing.
func (a *Announcer) Deregister(timeout time.Duration) {
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

// Close deregisters (if still registered) and closes the Config's Closer.
func (a *Announcer) Close(timeout time.Duration) {
	if a == nil {
		return
	}
	a.Deregister(timeout)
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
