// Package etcd is a registry.Registry on etcd v3.
//
// Each node is one key, Prefix + url-escaped name + "/" + url-escaped node id, whose value is
// the JSON of its Service holding that one node. Nodes registered with a TTL are attached to a
// lease the Registry grants once (one per distinct TTL, so a registry used by one server holds
// one lease) and keeps alive with one long-lived KeepAlive stream, not a call per heartbeat:
// Register with nothing changed writes nothing. When the lease is lost (etcd unreachable for
// longer than the TTL, or its data wiped), the next Register grants a new one and writes the
// keys again. A crashed process stops keeping its lease alive, and etcd deletes its keys when
// the TTL runs out. Close revokes the leases, so a clean shutdown removes every key at once.
package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/registry"
)

const (
	// DefaultPrefix is where the keys live.
	DefaultPrefix = "/micro/registry/"
	// DefaultTimeout bounds a call to etcd when the caller gave no context.
	DefaultTimeout = 10 * time.Second
)

// Config configures a Registry beyond registry.Options. It is the plugin module
// micro.registry.etcd.
type Config struct {
	// Client, when set, is used as is (and not closed by Close); otherwise a client is built for
	// registry.Addrs (default 127.0.0.1:2379).
	Client *clientv3.Client
	// Prefix of the keys; DefaultPrefix when empty. It should end in "/".
	Prefix string
}

// Registry is an etcd-backed registry.Registry.
type Registry struct {
	client     *clientv3.Client
	ownsClient bool
	err        error
	opts       registry.Options
	prefix     string
	ctx        context.Context // the registry's lifetime: keep-alives run under it
	cancel     context.CancelFunc

	mu      sync.Mutex
	leases  map[time.Duration]*lease
	written map[string]written // key → what this registry last put there
}

type lease struct {
	id   clientv3.LeaseID
	lost chan struct{} // closed when the keep-alive stream ends (lease expired or revoked)
}

type written struct {
	value string
	lease clientv3.LeaseID
}

var _ registry.Registry = (*Registry)(nil)

// NewRegistry returns a Registry with the default Config.
func NewRegistry(opts ...registry.Option) registry.Registry { return New(Config{}, opts...) }

var _ registry.Module = Config{}

// PluginInfo names the module: micro.registry.etcd.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: registry.Namespace + ".etcd", New: func() plugin.Module { return new(Config) }}
}

// NewRegistry builds the registry c describes.
func (c Config) NewRegistry(opts ...registry.Option) (registry.Registry, error) {
	return New(c, opts...), nil
}

// New returns a Registry. Building the client does not contact etcd; a bad configuration is
// returned by every call.
func New(cfg Config, opts ...registry.Option) *Registry {
	r := &Registry{prefix: cfg.Prefix, leases: map[time.Duration]*lease{}, written: map[string]written{}}
	for _, o := range opts {
		o(&r.opts)
	}
	if r.opts.Timeout <= 0 {
		r.opts.Timeout = DefaultTimeout
	}
	if r.prefix == "" {
		r.prefix = DefaultPrefix
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.client = cfg.Client
	if r.client == nil {
		eps := r.opts.Addrs
		if len(eps) == 0 {
			eps = []string{"127.0.0.1:2379"}
		}
		r.client, r.err = clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: r.opts.Timeout, Logger: zap.NewNop()})
		if r.err != nil {
			r.err = fmt.Errorf("registry etcd: %w", r.err)
		}
		r.ownsClient = true
	}
	return r
}

// String implements registry.Registry.
func (r *Registry) String() string { return "etcd" }

// Client returns the etcd client.
func (r *Registry) Client() *clientv3.Client { return r.client }

// Close revokes the registry's leases (removing the keys on them), stops their keep-alives and
// closes the client if the registry built it.
func (r *Registry) Close() error {
	r.mu.Lock()
	leases := r.leases
	r.leases = map[time.Duration]*lease{}
	r.written = map[string]written{}
	r.mu.Unlock()
	var errs []error
	if r.err == nil {
		for _, l := range leases {
			ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
			if _, err := r.client.Revoke(ctx, l.id); err != nil {
				errs = append(errs, fmt.Errorf("registry etcd: revoke lease: %w", err))
			}
			cancel()
		}
	}
	r.cancel()
	if r.ownsClient && r.client != nil {
		errs = append(errs, r.client.Close())
	}
	return errors.Join(errs...)
}

func (r *Registry) callCtx(c context.Context) (context.Context, context.CancelFunc) {
	return registry.CallContext(c, r.opts.Timeout)
}

func (r *Registry) dir(name string) string { return r.prefix + url.PathEscape(name) + "/" }

func (r *Registry) key(name, id string) string { return r.dir(name) + url.PathEscape(id) }

// lease returns a live lease for ttl, granting one (and starting its keep-alive) if there is none.
func (r *Registry) lease(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	r.mu.Lock()
	l := r.leases[ttl]
	r.mu.Unlock()
	if l != nil {
		select {
		case <-l.lost:
		default:
			return l.id, nil
		}
	}
	secs := int64((ttl + time.Second - 1) / time.Second) // etcd counts whole seconds
	g, err := r.client.Grant(ctx, secs)
	if err != nil {
		return 0, fmt.Errorf("registry etcd: grant lease: %w", err)
	}
	ch, err := r.client.KeepAlive(r.ctx, g.ID)
	if err != nil {
		return 0, fmt.Errorf("registry etcd: keep lease alive: %w", err)
	}
	nl := &lease{id: g.ID, lost: make(chan struct{})}
	go func() {
		for range ch { // drain the responses; the channel closes when the lease is gone
		}
		close(nl.lost)
	}()
	r.mu.Lock()
	r.leases[ttl] = nl
	r.mu.Unlock()
	return g.ID, nil
}

// Register implements registry.Registry. A Register that changes nothing writes nothing: the
// lease's keep-alive keeps the keys.
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
	ctx, cancel := r.callCtx(o.Context)
	defer cancel()
	var id clientv3.LeaseID
	if o.TTL > 0 {
		var err error
		if id, err = r.lease(ctx, o.TTL); err != nil {
			return err
		}
	}
	for _, n := range s.Nodes {
		one := s.Copy()
		one.Nodes = []*registry.Node{n.Copy()}
		b, err := json.Marshal(one)
		if err != nil {
			return err
		}
		k, w := r.key(s.Name, n.Id), written{value: string(b), lease: id}
		r.mu.Lock()
		same := r.written[k] == w
		r.mu.Unlock()
		if same {
			continue
		}
		var popts []clientv3.OpOption
		if id != 0 {
			popts = append(popts, clientv3.WithLease(id))
		}
		if _, err := r.client.Put(ctx, k, w.value, popts...); err != nil {
			return fmt.Errorf("registry etcd: register %s/%s: %w", s.Name, n.Id, err)
		}
		r.mu.Lock()
		r.written[k] = w
		r.mu.Unlock()
	}
	return nil
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
	ctx, cancel := r.callCtx(o.Context)
	defer cancel()
	for _, n := range s.Nodes {
		k := r.key(s.Name, n.Id)
		r.mu.Lock()
		delete(r.written, k)
		r.mu.Unlock()
		if _, err := r.client.Delete(ctx, k); err != nil {
			return fmt.Errorf("registry etcd: deregister %s/%s: %w", s.Name, n.Id, err)
		}
	}
	return nil
}

// GetService implements registry.Registry.
func (r *Registry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	if r.err != nil {
		return nil, r.err
	}
	var o registry.GetOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := r.callCtx(o.Context)
	defer cancel()
	parts, _, err := r.list(ctx, r.dir(name))
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, registry.ErrNotFound
	}
	return registry.Merge(values(parts)), nil
}

// ListServices implements registry.Registry.
func (r *Registry) ListServices(opts ...registry.ListOption) ([]*registry.Service, error) {
	if r.err != nil {
		return nil, r.err
	}
	var o registry.ListOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := r.callCtx(o.Context)
	defer cancel()
	parts, _, err := r.list(ctx, r.prefix)
	if err != nil {
		return nil, err
	}
	return registry.Merge(values(parts)), nil
}

// list reads every node under prefix: key → its one-node Service, and the store revision.
func (r *Registry) list(ctx context.Context, prefix string) (map[string]*registry.Service, int64, error) {
	resp, err := r.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("registry etcd: list %s: %w", prefix, err)
	}
	out := map[string]*registry.Service{}
	for _, kv := range resp.Kvs {
		if s := decode(kv.Value); s != nil {
			out[string(kv.Key)] = s
		}
	}
	return out, resp.Header.Revision, nil
}

func decode(b []byte) *registry.Service {
	var s registry.Service
	if json.Unmarshal(b, &s) != nil || s.Name == "" || len(s.Nodes) != 1 {
		return nil // not ours: ignore it rather than fail every read
	}
	return &s
}

func values(m map[string]*registry.Service) []*registry.Service {
	out := make([]*registry.Service, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	return out
}
