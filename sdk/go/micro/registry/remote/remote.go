// Package remote serves a Registry over the RPC core and reaches it from other processes, so
// services in several processes share one registry without an outside server. The serving side
// wraps any Registry (usually memory); the client side is a registry.Registry whose Watch is a
// long poll on a numbered event log.
//
//	srv.Handle(remote.NewHandler(memory.New()))           // in the registry process, service "micro.registry"
//	reg := remote.New(cli, remote.Address("127.0.0.1:8000")) // everywhere else
package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

// ServiceName is the service name a registry server is registered under by convention.
const ServiceName = "micro.registry"

// RegisterRequest is the body of Registry.Register.
type RegisterRequest struct {
	Service *registry.Service
	TTL     time.Duration
}

// ServiceRequest is the body of Registry.Deregister and Registry.GetService.
type ServiceRequest struct {
	Service *registry.Service
	Name    string
}

// ServicesResponse carries services.
type ServicesResponse struct {
	Services []*registry.Service
}

// Empty is an empty body.
type Empty struct{}

// WatchRequest asks for the events after Since (0: none, just the current position).
type WatchRequest struct {
	Since   uint64
	Service string
}

// WatchResponse carries events and the position to ask from next.
type WatchResponse struct {
	Events []*registry.Result
	Next   uint64
}

// Handler serves a Registry as the endpoints Registry.Register, Registry.Deregister,
// Registry.GetService, Registry.ListServices and Registry.Watch.
type Handler struct {
	reg     registry.Registry
	maxWait time.Duration

	mu      sync.Mutex
	log     []*registry.Result // the last logSize events
	first   uint64             // sequence number of log[0]
	changed chan struct{}      // closed and replaced on every event
	err     error
	done    chan struct{}
	once    sync.Once
	watcher registry.Watcher
}

const logSize = 4096

// NewHandler returns a Handler over reg and starts following its events; Close stops that.
func NewHandler(reg registry.Registry) (*Handler, error) {
	w, err := reg.Watch()
	if err != nil {
		return nil, fmt.Errorf("remote: watch the served registry: %w", err)
	}
	h := &Handler{reg: reg, maxWait: 20 * time.Second, first: 1, changed: make(chan struct{}), done: make(chan struct{}), watcher: w}
	go h.follow(w)
	return h, nil
}

// Close ends pending long polls with status Unavailable (so a server draining its calls does
// not wait for them) and stops following the registry. Call it before stopping the server.
func (h *Handler) Close() error {
	h.once.Do(func() {
		close(h.done)
		h.watcher.Stop()
	})
	return nil
}

func (h *Handler) follow(w registry.Watcher) {
	for {
		r, err := w.Next()
		h.mu.Lock()
		if err != nil {
			h.err = err
			close(h.changed)
			h.mu.Unlock()
			return
		}
		h.log = append(h.log, r)
		if len(h.log) > logSize {
			h.log = h.log[len(h.log)-logSize:]
			h.first++
		}
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
	}
}

// Register serves Registry.Register.
func (h *Handler) Register(ctx context.Context, req *RegisterRequest, rsp *Empty) error {
	return h.reg.Register(req.Service, registry.RegisterTTL(req.TTL), registry.RegisterContext(ctx))
}

// Deregister serves Registry.Deregister.
func (h *Handler) Deregister(ctx context.Context, req *ServiceRequest, rsp *Empty) error {
	return h.reg.Deregister(req.Service, registry.DeregisterContext(ctx))
}

// GetService serves Registry.GetService; an unknown service is status NotFound.
func (h *Handler) GetService(ctx context.Context, req *ServiceRequest, rsp *ServicesResponse) error {
	s, err := h.reg.GetService(req.Name, registry.GetContext(ctx))
	if errors.Is(err, registry.ErrNotFound) {
		return status.New(status.NotFound, "service %q not registered", req.Name)
	}
	rsp.Services = s
	return err
}

// ListServices serves Registry.ListServices.
func (h *Handler) ListServices(ctx context.Context, req *Empty, rsp *ServicesResponse) error {
	s, err := h.reg.ListServices(registry.ListContext(ctx))
	rsp.Services = s
	return err
}

// Watch serves Registry.Watch: it answers at once with the events after Since, or waits for
// one until shortly before the caller's deadline. Since older than the log is a Gone error,
// telling the caller to re-list.
func (h *Handler) Watch(ctx context.Context, req *WatchRequest, rsp *WatchResponse) error {
	wait := h.maxWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)*3/4)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		h.mu.Lock()
		head := h.first + uint64(len(h.log)) // the next sequence number
		if req.Since == 0 {
			rsp.Next = head
			h.mu.Unlock()
			return nil
		}
		if req.Since < h.first || req.Since > head {
			h.mu.Unlock()
			return status.New(status.NotFound, "watch position %d is gone (oldest kept %d): re-list", req.Since, h.first)
		}
		if h.err != nil {
			h.mu.Unlock()
			return status.Wrap(status.Unavailable, h.err, false)
		}
		for _, r := range h.log[req.Since-h.first:] {
			if req.Service == "" || r.Service.Name == req.Service {
				rsp.Events = append(rsp.Events, r)
			}
		}
		rsp.Next = head
		changed := h.changed
		h.mu.Unlock()
		if len(rsp.Events) > 0 {
			return nil
		}
		req.Since = head
		select {
		case <-changed:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-h.done:
			return status.New(status.Unavailable, "registry server closing")
		}
	}
}

// Registry is a registry.Registry served by a Handler in another process.
type Registry struct {
	cli   *client.Client
	addrs []string
	opts  registry.Options
}

var _ registry.Registry = (*Registry)(nil)

// Address sets the registry servers' addresses (the same as registry.Addrs).
func Address(addrs ...string) registry.Option { return registry.Addrs(addrs...) }

// New returns a Registry that calls the registry server through cli.
func New(cli *client.Client, opts ...registry.Option) *Registry {
	o := registry.Options{Timeout: 5 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	return &Registry{cli: cli, addrs: o.Addrs, opts: o}
}

// String implements registry.Registry.
func (r *Registry) String() string { return "remote" }

func (r *Registry) call(ctx context.Context, endpoint string, req, rsp any, opts ...client.CallOption) error {
	if ctx == nil {
		ctx = context.Background()
	}
	opts = append([]client.CallOption{client.WithAddress(r.addrs...), client.WithRequestTimeout(r.opts.Timeout)}, opts...)
	return r.cli.Call(ctx, ServiceName, "Registry."+endpoint, req, rsp, opts...)
}

// Register implements registry.Registry.
func (r *Registry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	var o registry.RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	return r.call(o.Context, "Register", &RegisterRequest{Service: s, TTL: o.TTL}, &Empty{})
}

// Deregister implements registry.Registry.
func (r *Registry) Deregister(s *registry.Service, opts ...registry.DeregisterOption) error {
	var o registry.DeregisterOptions
	for _, f := range opts {
		f(&o)
	}
	return r.call(o.Context, "Deregister", &ServiceRequest{Service: s}, &Empty{})
}

// GetService implements registry.Registry.
func (r *Registry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	var o registry.GetOptions
	for _, f := range opts {
		f(&o)
	}
	var rsp ServicesResponse
	err := r.call(o.Context, "GetService", &ServiceRequest{Name: name}, &rsp)
	if status.CodeOf(err) == status.NotFound {
		return nil, fmt.Errorf("%w: %w", registry.ErrNotFound, err)
	}
	return rsp.Services, err
}

// ListServices implements registry.Registry.
func (r *Registry) ListServices(opts ...registry.ListOption) ([]*registry.Service, error) {
	var o registry.ListOptions
	for _, f := range opts {
		f(&o)
	}
	var rsp ServicesResponse
	err := r.call(o.Context, "ListServices", &Empty{}, &rsp)
	return rsp.Services, err
}

// Watch implements registry.Registry. It learns the server's position before returning, so
// every change after Watch returns is delivered; a lost server or a position the server no
// longer keeps ends the watcher with the error (the selector then re-lists and watches again).
func (r *Registry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	var start WatchResponse
	if err := r.call(context.Background(), "Watch", &WatchRequest{}, &start); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := registry.NewQueue(0, cancel)
	go func() {
		since := start.Next
		for {
			var rsp WatchResponse
			err := r.call(ctx, "Watch", &WatchRequest{Since: since, Service: o.Service}, &rsp,
				client.WithRequestTimeout(30*time.Second))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				q.Fail(fmt.Errorf("remote: watch: %w", err))
				return
			}
			for _, ev := range rsp.Events {
				if !q.Push(ev) {
					return
				}
			}
			since = rsp.Next
		}
	}()
	return q, nil
}

// NewRegistry returns a remote Registry with its own tcp client. Addrs names the registry
// servers.
func NewRegistry(opts ...registry.Option) registry.Registry {
	r, err := Config{}.NewRegistry(opts...)
	if err != nil {
		panic(err) // unreachable: the client's options are valid
	}
	return r
}

// Config is the remote registry's own config: it has no fields beyond registry.Options
// (Addrs names the registry servers). It is the plugin module micro.registry.remote.
type Config struct{}

var _ registry.Module = Config{}

// PluginInfo names the module: micro.registry.remote.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: registry.Namespace + ".remote", New: func() plugin.Module { return new(Config) }}
}

// NewRegistry builds a remote registry with its own tcp client.
func (Config) NewRegistry(opts ...registry.Option) (registry.Registry, error) {
	cli, err := client.New(client.Transport(tcp.New()))
	if err != nil {
		return nil, err
	}
	return New(cli, opts...), nil
}
