// Package mdns is a Registry over multicast DNS (github.com/hashicorp/mdns), go-micro v1's default:
// no server to run, every process on the link finds every other.
//
// Each registered node is announced by its own mDNS responder as an instance of the DNS-SD
// service type "_micro._tcp" in the registry's domain (default "local"); its TXT record carries
// the service (name, version, metadata, endpoints) and the node as JSON, split into 255-byte
// strings. SRV and A records are filled from the node's address for other mDNS tools; the TXT
// record is what this package reads.
//
// Reads are queries: GetService and ListServices multicast one question for "_micro._tcp" and
// collect the answers for Timeout (default 300 ms), so each read takes that long. The
// registry's own nodes are always part of its answers, even where multicast does not loop back.
//
// Watch polls: it lists every PollInterval (default 2 s) and reports the difference as events
// (registry.Diff), so a change is seen within PollInterval + Timeout.
//
// TTL: a node registered with a TTL and not registered again within it stops being announced
// (its responder shuts down), so a hung process leaves the registry like a crashed one; a
// crashed process's responder is gone with it and its nodes vanish from the next query.
//
// Interface selects the network interface for the multicast group (default: the system's
// multicast interface); Domain keeps groups of services apart on one link (tests use a
// random domain each).
package mdns

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	hm "github.com/hashicorp/mdns"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/registry"
)

// ServiceType is the DNS-SD service type every node is announced under.
const ServiceType = "_micro._tcp"

// Defaults.
const (
	DefaultTimeout      = 300 * time.Millisecond
	DefaultPollInterval = 2 * time.Second
	DefaultDomain       = "local"
)

// Config configures the mdns registry beyond registry.Options. It is the plugin module
// micro.registry.mdns.
type Config struct {
	// Domain is the mDNS domain; default "local".
	Domain string
	// Interface names the network interface to announce and query on ("lo", "eth0"); empty
	// uses the system's default multicast interface.
	Interface string
	// IPv6 also queries over IPv6 (ff02::fb); by default queries use IPv4 (224.0.0.251) only,
	// since sending to the IPv6 group fails outright on interfaces without an IPv6 route (lo).
	// Responders answer on both wherever they can listen.
	IPv6 bool
	// PollInterval is how often a Watch lists; default 2 s.
	PollInterval time.Duration
	// Logger receives the mDNS library's messages at debug level and this package's warnings.
	// Default slog.Default().
	Logger *slog.Logger
}

// Registry is a registry.Registry over mDNS. Close stops every responder it started.
type Registry struct {
	cfg     Config
	timeout time.Duration
	iface   *net.Interface
	ifErr   error
	stdlog  *log.Logger

	mu     sync.Mutex
	nodes  map[string]*announced // by node id
	closed bool
	done   chan struct{} // closed by Close: ends the watches
}

type announced struct {
	svc    *registry.Service // one node
	server *hm.Server
	timer  *time.Timer // expiry; nil without TTL
	gen    uint64      // bumped by every Register, so a stale expiry timer does nothing
}

var _ registry.Registry = (*Registry)(nil)

// NewRegistry returns an mdns registry with the default Config; registry.Timeout sets how long
// a query waits for answers.
func NewRegistry(opts ...registry.Option) registry.Registry { return New(Config{}, opts...) }

var _ registry.Module = Config{}

// PluginInfo names the module: micro.registry.mdns.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: registry.Namespace + ".mdns", New: func() plugin.Module { return new(Config) }}
}

// NewRegistry builds the registry c describes.
func (c Config) NewRegistry(opts ...registry.Option) (registry.Registry, error) {
	return New(c, opts...), nil
}

// New returns an mdns registry. Nothing is sent or bound until the first Register or read.
func New(cfg Config, opts ...registry.Option) *Registry {
	var o registry.Options
	for _, f := range opts {
		f(&o)
	}
	cfg.Domain = strings.Trim(cmp.Or(cfg.Domain, DefaultDomain), ".")
	cfg.PollInterval = cmp.Or(cfg.PollInterval, DefaultPollInterval)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Registry{
		cfg: cfg, timeout: cmp.Or(o.Timeout, DefaultTimeout),
		stdlog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		nodes:  map[string]*announced{}, done: make(chan struct{}),
	}
	if cfg.Interface != "" {
		r.iface, r.ifErr = net.InterfaceByName(cfg.Interface)
		if r.ifErr != nil {
			r.ifErr = fmt.Errorf("mdns: interface %q: %w", cfg.Interface, r.ifErr)
		}
	}
	return r
}

// String implements registry.Registry.
func (r *Registry) String() string { return "mdns" }

// ErrClosed is returned by a Registry after Close.
var ErrClosed = errors.New("mdns: registry closed")

// Register implements registry.Registry: each node of s is announced until Deregister, Close,
// or, with a TTL, until the TTL passes without another Register.
func (r *Registry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if r.ifErr != nil {
		return r.ifErr
	}
	var o registry.RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	for _, n := range s.Nodes {
		one := s.Copy()
		one.Nodes = []*registry.Node{n.Copy()}
		if err := r.announce(one, o.TTL); err != nil {
			return fmt.Errorf("mdns: register %s node %s: %w", s.Name, n.Id, err)
		}
	}
	return nil
}

func (r *Registry) announce(s *registry.Service, ttl time.Duration) error {
	id := s.Nodes[0].Id
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	a := r.nodes[id]
	if a == nil || !registry.Equal(a.svc, s) {
		srv, err := r.startResponder(s)
		if err != nil {
			return err
		}
		if a != nil {
			r.stopLocked(id, a)
		}
		a = &announced{svc: s, server: srv}
		r.nodes[id] = a
	}
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.gen++
	if ttl > 0 {
		gen := a.gen
		a.timer = time.AfterFunc(ttl, func() { r.expire(id, a, gen) })
	}
	return nil
}

// expire stops announcing a node whose TTL passed, unless it was replaced meanwhile.
func (r *Registry) expire(id string, a *announced, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nodes[id] == a && a.gen == gen {
		r.cfg.Logger.Debug("mdns: node TTL passed without a refresh; no longer announced", "service", a.svc.Name, "node", id)
		r.stopLocked(id, a)
	}
}

func (r *Registry) stopLocked(id string, a *announced) {
	if a.timer != nil {
		a.timer.Stop()
	}
	a.server.Shutdown()
	delete(r.nodes, id)
}

func (r *Registry) startResponder(s *registry.Service) (*hm.Server, error) {
	n := s.Nodes[0]
	txt, err := encodeTXT(s)
	if err != nil {
		return nil, err
	}
	ip, port := hostPort(n.Address)
	inst := instanceName(s.Name, n.Id)
	zone, err := hm.NewMDNSService(inst, ServiceType, r.cfg.Domain+".", inst+"."+r.cfg.Domain+".", port, []net.IP{ip}, txt)
	if err != nil {
		return nil, err
	}
	return hm.NewServer(&hm.Config{Zone: zone, Iface: r.iface, Logger: r.stdlog})
}

// Deregister implements registry.Registry.
func (r *Registry) Deregister(s *registry.Service, _ ...registry.DeregisterOption) error {
	if err := s.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range s.Nodes {
		if a := r.nodes[n.Id]; a != nil && a.svc.Name == s.Name {
			r.stopLocked(n.Id, a)
		}
	}
	return nil
}

// GetService implements registry.Registry.
func (r *Registry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	var o registry.GetOptions
	for _, f := range opts {
		f(&o)
	}
	all, err := r.list(o.Context, name)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, registry.ErrNotFound
	}
	return all, nil
}

// ListServices implements registry.Registry.
func (r *Registry) ListServices(opts ...registry.ListOption) ([]*registry.Service, error) {
	var o registry.ListOptions
	for _, f := range opts {
		f(&o)
	}
	return r.list(o.Context, "")
}

// list queries the link and merges the answers with the registry's own nodes; name filters
// when not empty.
func (r *Registry) list(ctx context.Context, name string) ([]*registry.Service, error) {
	if r.ifErr != nil {
		return nil, r.ifErr
	}
	if ctx == nil {
		ctx = context.Background()
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	byID := map[string]*registry.Service{}
	for id, a := range r.nodes {
		byID[id] = a.svc.Copy()
	}
	r.mu.Unlock()

	entries := make(chan *hm.ServiceEntry, 64)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for e := range entries {
			s, err := decodeTXT(e.InfoFields)
			if err != nil {
				r.cfg.Logger.Debug("mdns: ignoring an answer", "instance", e.Name, "err", err)
				continue
			}
			if _, own := byID[s.Nodes[0].Id]; !own {
				byID[s.Nodes[0].Id] = s
			}
		}
	}()
	p := hm.DefaultParams(ServiceType)
	p.Domain, p.Timeout, p.Interface, p.Entries, p.Logger = r.cfg.Domain, r.timeout, r.iface, entries, r.stdlog
	p.DisableIPv6 = !r.cfg.IPv6
	err := hm.QueryContext(ctx, p)
	close(entries)
	<-collected
	if err != nil {
		return nil, fmt.Errorf("mdns: query: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mdns: query: %w", err)
	}
	parts := make([]*registry.Service, 0, len(byID))
	for _, s := range byID {
		if name == "" || s.Name == name {
			parts = append(parts, s)
		}
	}
	return registry.Merge(parts), nil
}

// Watch implements registry.Registry by polling; see the package doc. The first listing is made
// before Watch returns, so changes after it are reported.
func (r *Registry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	before, err := r.list(context.Background(), o.Service)
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	q := registry.NewQueue(0, func() { close(stop) })
	go r.poll(q, o.Service, before, stop)
	return q, nil
}

func (r *Registry) poll(q *registry.Queue, name string, before []*registry.Service, stop chan struct{}) {
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-r.done:
			q.Fail(ErrClosed)
			return
		case <-t.C:
		}
		after, err := r.list(context.Background(), name)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				q.Fail(err)
				return
			}
			r.cfg.Logger.Warn("mdns: watch poll failed; will poll again", "err", err)
			continue
		}
		for _, ev := range registry.Diff(before, after) {
			if !q.Push(ev) {
				return
			}
		}
		before = after
	}
}

// Close stops announcing every node of this registry and ends its watches.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	close(r.done)
	for id, a := range r.nodes {
		r.stopLocked(id, a)
	}
	return nil
}

// instanceName is a DNS label for one node of one service: readable, unique and at most 63
// bytes.
func instanceName(service, id string) string {
	h := fnv.New64a()
	h.Write([]byte(service + "\x00" + id))
	sum := hex.EncodeToString(h.Sum(nil))
	var b strings.Builder
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	label := b.String()
	if len(label) > 63-len(sum)-1 {
		label = label[:63-len(sum)-1]
	}
	return label + "-" + sum
}

// hostPort returns the IP and port of addr for the SRV and A records; an address that is not
// IP:port (a memory transport's) gets 0.0.0.0 and port 9, since a complete mDNS answer needs
// both. The TXT record holds the real address.
func hostPort(addr string) (net.IP, int) {
	ip, port := net.IPv4zero, 9
	if h, p, err := net.SplitHostPort(addr); err == nil {
		if parsed := net.ParseIP(h); parsed != nil {
			ip = parsed
		}
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
			port = n
		}
	}
	return ip, port
}

// txtChunk is the size of one TXT string; DNS allows 255.
const txtChunk = 255

// encodeTXT is the service as base64 JSON in 255-byte strings: base64, because the DNS library
// gives backslashes and quotes in TXT strings a meaning of their own.
func encodeTXT(s *registry.Service) ([]string, error) {
	j, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	b := []byte(base64.StdEncoding.EncodeToString(j))
	var out []string
	for len(b) > 0 {
		n := min(len(b), txtChunk)
		out = append(out, string(b[:n]))
		b = b[n:]
	}
	return out, nil
}

func decodeTXT(fields []string) (*registry.Service, error) {
	j, err := base64.StdEncoding.DecodeString(strings.Join(fields, ""))
	if err != nil {
		return nil, fmt.Errorf("not a micro service record: %w", err)
	}
	var s registry.Service
	if err := json.Unmarshal(j, &s); err != nil {
		return nil, fmt.Errorf("not a micro service record: %w", err)
	}
	if err := s.Validate(); err != nil || len(s.Nodes) != 1 {
		return nil, fmt.Errorf("not a micro service record: %v", cmp.Or(err, errors.New("want exactly one node")))
	}
	return &s, nil
}

// RandomDomain returns a domain no other registry uses, for tests that must not see other
// processes' services: "micro-" and 8 random hex digits.
func RandomDomain() string {
	var b [4]byte
	rand.Read(b[:])
	return "micro-" + hex.EncodeToString(b[:])
}
