// Package consul is a registry.Registry on a Consul agent.
//
// Each node is an agent service (ID = node id) with a TTL health check. Register with a TTL
// registers the service once and, while nothing about it changes, later Registers only pass the
// check (PUT /v1/agent/check/update), so the server's heartbeat is one small call. A node whose
// process dies stops passing its check: it leaves GetService, ListServices and Watch (which read
// passing nodes only) when the TTL runs out, and Consul removes it from the catalog after
// DeregisterCriticalAfter (Consul's DeregisterCriticalServiceAfter; Consul's minimum is one
// minute and its reaper runs every 30 s). Watch uses blocking queries.
//
// A service's version, metadata and endpoints and the node's metadata travel in one tag
// ("micro-service=" + base64 JSON), since Consul's service metadata limits values to 512
// bytes; the version is also in the service meta as micro_version for people reading Consul.
// Services registered by other tools are listed too, with an empty version.
package consul

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/registry"
)

const (
	tagPrefix = "micro-service="
	metaKey   = "micro_version"
	// DefaultDeregisterCriticalAfter is how long a node whose check is critical stays in the
	// catalog before Consul removes it (it is already invisible to callers by then).
	DefaultDeregisterCriticalAfter = time.Minute
	// DefaultTimeout bounds a call to the agent when the caller gave no context.
	DefaultTimeout = 10 * time.Second
	// watchWait is how long one blocking query waits for a change.
	watchWait = 5 * time.Minute
)

// Config configures a Registry beyond registry.Options. It is the plugin module
// micro.registry.consul.
type Config struct {
	// API is the Consul client configuration; nil means api.DefaultConfig (which reads
	// CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, ...). registry.Addrs overrides its Address.
	API *api.Config
	// DeregisterCriticalAfter: see the package doc. Zero means DefaultDeregisterCriticalAfter.
	DeregisterCriticalAfter time.Duration
}

// Registry is a Consul-backed registry.Registry.
type Registry struct {
	client *api.Client
	err    error // from building the client; every call returns it
	opts   registry.Options
	cfg    Config

	mu         sync.Mutex
	registered map[string]string // node id → the registration last sent (JSON), for heartbeats
}

var _ registry.Registry = (*Registry)(nil)

// NewRegistry returns a Registry with the default Config.
func NewRegistry(opts ...registry.Option) registry.Registry { return New(Config{}, opts...) }

var _ registry.Module = Config{}

// PluginInfo names the module: micro.registry.consul.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: registry.Namespace + ".consul", New: func() plugin.Module { return new(Config) }}
}

// NewRegistry builds the registry c describes.
func (c Config) NewRegistry(opts ...registry.Option) (registry.Registry, error) {
	return New(c, opts...), nil
}

// New returns a Registry talking to the agent at registry.Addrs' first address (other addresses
// are ignored: a Consul client talks to its local agent), or the API config's address.
func New(cfg Config, opts ...registry.Option) *Registry {
	r := &Registry{cfg: cfg, registered: map[string]string{}}
	for _, o := range opts {
		o(&r.opts)
	}
	if r.opts.Timeout <= 0 {
		r.opts.Timeout = DefaultTimeout
	}
	if r.cfg.DeregisterCriticalAfter <= 0 {
		r.cfg.DeregisterCriticalAfter = DefaultDeregisterCriticalAfter
	}
	ac := api.DefaultConfig()
	if cfg.API != nil {
		c := *cfg.API
		ac = &c
	}
	if len(r.opts.Addrs) > 0 && r.opts.Addrs[0] != "" {
		ac.Address = r.opts.Addrs[0]
	}
	r.client, r.err = api.NewClient(ac)
	if r.err != nil {
		r.err = fmt.Errorf("registry consul: %w", r.err)
	}
	return r
}

// String implements registry.Registry.
func (r *Registry) String() string { return "consul" }

// Client returns the Consul API client.
func (r *Registry) Client() *api.Client { return r.client }

type record struct {
	Version      string               `json:"v,omitempty"`
	Metadata     map[string]string    `json:"m,omitempty"`
	Endpoints    []*registry.Endpoint `json:"e,omitempty"`
	NodeMetadata map[string]string    `json:"n,omitempty"`
}

func checkID(nodeID string) string { return "service:" + nodeID }

func (r *Registry) ctx(c context.Context) (context.Context, context.CancelFunc) {
	if c == nil {
		c = context.Background()
	}
	if _, ok := c.Deadline(); ok {
		return context.WithCancel(c)
	}
	return context.WithTimeout(c, r.opts.Timeout)
}

// Register implements registry.Registry.
func (r *Registry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	if r.err != nil {
		return r.err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	var o registry.RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := r.ctx(o.Context)
	defer cancel()
	agent := r.client.Agent()
	for _, n := range s.Nodes {
		reg, err := r.registration(s, n, o.TTL)
		if err != nil {
			return err
		}
		key, _ := json.Marshal(reg)
		r.mu.Lock()
		same := r.registered[n.Id] == string(key)
		r.mu.Unlock()
		if same {
			if o.TTL <= 0 {
				continue
			}
			// The heartbeat: pass the check. It fails when the agent lost the service (an agent
			// restart, an operator's deregister): register it again.
			if err := agent.UpdateTTLOpts(checkID(n.Id), "", api.HealthPassing, (&api.QueryOptions{}).WithContext(ctx)); err == nil {
				continue
			}
		}
		if err := agent.ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)); err != nil {
			return fmt.Errorf("registry consul: register %s/%s: %w", s.Name, n.Id, err)
		}
		r.mu.Lock()
		r.registered[n.Id] = string(key)
		r.mu.Unlock()
	}
	return nil
}

func (r *Registry) registration(s *registry.Service, n *registry.Node, ttl time.Duration) (*api.AgentServiceRegistration, error) {
	blob, err := json.Marshal(record{Version: s.Version, Metadata: s.Metadata, Endpoints: s.Endpoints, NodeMetadata: n.Metadata})
	if err != nil {
		return nil, err
	}
	host, port := n.Address, 0
	if h, p, err := net.SplitHostPort(n.Address); err == nil {
		if pn, err := strconv.Atoi(p); err == nil {
			host, port = h, pn
		}
	}
	reg := &api.AgentServiceRegistration{
		ID: n.Id, Name: s.Name, Address: host, Port: port,
		Tags: []string{tagPrefix + base64.RawURLEncoding.EncodeToString(blob)},
		Meta: map[string]string{metaKey: s.Version},
	}
	if ttl > 0 {
		reg.Check = &api.AgentServiceCheck{
			CheckID: checkID(n.Id), Name: "micro TTL", TTL: ttl.String(), Status: api.HealthPassing,
			DeregisterCriticalServiceAfter: r.cfg.DeregisterCriticalAfter.String(),
		}
	}
	return reg, nil
}

// Deregister implements registry.Registry.
func (r *Registry) Deregister(s *registry.Service, opts ...registry.DeregisterOption) error {
	if r.err != nil {
		return r.err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	var o registry.DeregisterOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := r.ctx(o.Context)
	defer cancel()
	for _, n := range s.Nodes {
		r.mu.Lock()
		delete(r.registered, n.Id)
		r.mu.Unlock()
		err := r.client.Agent().ServiceDeregisterOpts(n.Id, (&api.QueryOptions{}).WithContext(ctx))
		var se api.StatusError
		if err != nil && !(errors.As(err, &se) && se.Code == http.StatusNotFound) {
			return fmt.Errorf("registry consul: deregister %s/%s: %w", s.Name, n.Id, err)
		}
	}
	return nil
}

// GetService implements registry.Registry: the passing nodes of name, one Service per version.
func (r *Registry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	if r.err != nil {
		return nil, r.err
	}
	var o registry.GetOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := r.ctx(o.Context)
	defer cancel()
	svcs, _, err := r.health(ctx, name, 0, 0)
	if err != nil {
		return nil, err
	}
	if len(svcs) == 0 {
		return nil, registry.ErrNotFound
	}
	return svcs, nil
}

// ListServices implements registry.Registry: every service with a passing node.
func (r *Registry) ListServices(opts ...registry.ListOption) ([]*registry.Service, error) {
	if r.err != nil {
		return nil, r.err
	}
	var o registry.ListOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := r.ctx(o.Context)
	defer cancel()
	names, _, err := r.names(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	var out []*registry.Service
	for _, name := range names {
		svcs, _, err := r.health(ctx, name, 0, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, svcs...)
	}
	return out, nil
}

// names lists the catalog's service names (without Consul's own), blocking past index.
func (r *Registry) names(ctx context.Context, index uint64, wait time.Duration) ([]string, uint64, error) {
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx)
	m, meta, err := r.client.Catalog().Services(q)
	if err != nil {
		return nil, 0, fmt.Errorf("registry consul: list services: %w", err)
	}
	var out []string
	for name := range m {
		if name != "consul" {
			out = append(out, name)
		}
	}
	return out, meta.LastIndex, nil
}

// health returns the passing nodes of name merged per version, blocking past index.
func (r *Registry) health(ctx context.Context, name string, index uint64, wait time.Duration) ([]*registry.Service, uint64, error) {
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx)
	entries, meta, err := r.client.Health().Service(name, "", true, q)
	if err != nil {
		return nil, 0, fmt.Errorf("registry consul: get %s: %w", name, err)
	}
	parts := make([]*registry.Service, 0, len(entries))
	for _, e := range entries {
		parts = append(parts, decode(e))
	}
	return registry.Merge(parts), meta.LastIndex, nil
}

func decode(e *api.ServiceEntry) *registry.Service {
	s := &registry.Service{Name: e.Service.Service}
	var rec record
	for _, tag := range e.Service.Tags {
		if b, ok := strings.CutPrefix(tag, tagPrefix); ok {
			if raw, err := base64.RawURLEncoding.DecodeString(b); err == nil {
				json.Unmarshal(raw, &rec)
			}
		}
	}
	s.Version, s.Metadata, s.Endpoints = rec.Version, rec.Metadata, rec.Endpoints
	host := e.Service.Address
	if host == "" && e.Node != nil {
		host = e.Node.Address
	}
	addr := host
	if e.Service.Port != 0 {
		addr = net.JoinHostPort(host, strconv.Itoa(e.Service.Port))
	}
	s.Nodes = []*registry.Node{{Id: e.Service.ID, Address: addr, Metadata: rec.NodeMetadata}}
	return s
}
