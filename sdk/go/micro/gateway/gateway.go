package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/registry"
)

// Gateway is an http.Handler that sends each request to a service through the RPC core: a
// configured or declared Route when one matches, else the path rule of Options.PathHandler.
// Declared routes follow the registry through a watch. It is safe for concurrent use.
type Gateway struct {
	opts      Options
	handler   http.Handler // the middleware around the router
	transport *http.Transport
	jsonCT    string // the codecs of the rpc handler's JSON and protobuf calls (callCodecs)
	protoCT   string

	mu         sync.Mutex
	configured []Route
	declared   map[string][]Route // by service name and version
	mux        atomic.Pointer[http.ServeMux]
	changed    chan struct{} // closed when the routes in use change

	stop     chan struct{}
	watching sync.WaitGroup
	closed   sync.Once
}

// New returns a Gateway, or an error naming what is wrong with the options or the routes. It
// lists the registry's declared routes before it returns and follows them until Close.
func New(opts ...Option) (*Gateway, error) {
	o := Options{PathHandler: HandlerRPC, MaxBody: DefaultMaxBody, Timeout: DefaultTimeout}
	for _, f := range opts {
		f(&o)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.Registry == nil:
		return nil, errors.New("gateway: no registry")
	case o.MaxBody <= 0:
		return nil, fmt.Errorf("gateway: MaxBody must be > 0, got %d", o.MaxBody)
	case o.Timeout <= 0:
		return nil, fmt.Errorf("gateway: Timeout must be > 0, got %v", o.Timeout)
	case !slices.Contains([]string{HandlerRPC, HandlerHTTP, HandlerWeb}, o.PathHandler):
		return nil, fmt.Errorf("gateway: unknown path handler %q (want %s, %s or %s)", o.PathHandler, HandlerRPC, HandlerHTTP, HandlerWeb)
	case o.PathHandler == HandlerRPC && o.Client == nil:
		return nil, errors.New("gateway: the rpc path handler needs a client")
	}
	if o.Selector == nil {
		if c, ok := o.Client.(*client.Client); ok {
			o.Selector = c.Options().Selector
		}
	}
	if o.PathHandler != HandlerRPC && o.Selector == nil {
		return nil, fmt.Errorf("gateway: the %s path handler needs a selector", o.PathHandler)
	}
	jsonCT, protoCT, err := callCodecs(o.ContentType)
	if err != nil {
		return nil, err
	}
	g := &Gateway{opts: o, declared: map[string][]Route{}, stop: make(chan struct{}), changed: make(chan struct{}),
		transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}, jsonCT: jsonCT, protoCT: protoCT}
	if err := g.SetRoutes(o.Routes); err != nil {
		return nil, err
	}
	var h http.Handler = http.HandlerFunc(g.serve)
	for i := len(o.Middleware) - 1; i >= 0; i-- {
		h = o.Middleware[i](h)
	}
	g.handler = h
	w, err := g.follow()
	if err != nil {
		return nil, err
	}
	g.watching.Add(1)
	go g.watch(w)
	return g, nil
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.handler.ServeHTTP(w, r) }

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > g.opts.MaxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "", "", fmt.Sprintf("request body of %d bytes is over the limit of %d", r.ContentLength, g.opts.MaxBody))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.opts.MaxBody)
	g.mux.Load().ServeHTTP(w, r)
}

// SetRoutes replaces the configured routes. Routes that are invalid or conflict with one
// another are refused with an error naming the first, and the routes in use stay.
func (g *Gateway) SetRoutes(routes []Route) error {
	for i, rt := range routes {
		if err := rt.validate(); err != nil {
			return fmt.Errorf("gateway: route %d: %w", i, err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	mux, err := g.build(routes)
	if err != nil {
		return err
	}
	g.configured = slices.Clone(routes)
	g.use(mux)
	return nil
}

// use puts mux in service and wakes the waiters of Changed; the caller holds g.mu.
func (g *Gateway) use(mux *http.ServeMux) {
	g.mux.Store(mux)
	close(g.changed)
	g.changed = make(chan struct{})
}

// Changed returns a channel closed at the next change of the routes in use: SetRoutes, or a
// service's declared routes coming or going. Read Routes after it is closed.
func (g *Gateway) Changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// Routes returns the configured routes, then those services declare (none for a web path
// handler; one that conflicts with a route before it is left out of the router).
func (g *Gateway) Routes() []Route {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := slices.Clone(g.configured)
	if g.opts.PathHandler == HandlerWeb {
		return out
	}
	for _, k := range slices.Sorted(maps.Keys(g.declared)) {
		out = append(out, g.declared[k]...)
	}
	return out
}

// Close stops following the registry. The Gateway goes on serving with the routes it has.
func (g *Gateway) Close() error {
	g.closed.Do(func() { close(g.stop) })
	g.watching.Wait()
	g.transport.CloseIdleConnections()
	return nil
}

// build makes the router: configured routes (a conflict among them is an error), then
// declared ones unless the path handler is web's (one that conflicts with a route already in
// is left out, with a log line),
// then the path rule at "/", which any other route is more specific than.
func (g *Gateway) build(configured []Route) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	for i, rt := range configured {
		if err := handle(mux, rt, g.routeHandler(rt)); err != nil {
			return nil, fmt.Errorf("gateway: route %d: %w", i, err)
		}
	}
	in := map[Route]bool{}
	for _, k := range slices.Sorted(maps.Keys(g.declared)) {
		if g.opts.PathHandler == HandlerWeb {
			break // micro web proxies to web pages: the routes services declare are micro api's
		}
		for _, rt := range g.declared[k] {
			if in[rt] {
				continue // two versions of a service declare the same route: one route
			}
			in[rt] = true
			if err := handle(mux, rt, g.routeHandler(rt)); err != nil {
				g.opts.Logger.Warn("gateway: declared route left out", "service", rt.Service, "endpoint", rt.Endpoint, "err", err)
			}
		}
	}
	if err := handle(mux, Route{Path: "/"}, http.HandlerFunc(g.pathRule)); err != nil {
		g.opts.Logger.Debug("gateway: a route at / replaces the path rule", "err", err)
	}
	return mux, nil
}

// handle adds rt to mux, turning ServeMux's panic on a bad or conflicting pattern into an
// error.
func handle(mux *http.ServeMux, rt Route, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	mux.Handle(rt.pattern(), h)
	return nil
}

// follow lists the declared routes of every service and returns a watch of their changes,
// started before the listing so no change is missed.
func (g *Gateway) follow() (registry.Watcher, error) {
	w, err := g.opts.Registry.Watch()
	if err != nil {
		return nil, fmt.Errorf("gateway: watch the registry: %w", err)
	}
	svcs, err := g.opts.Registry.ListServices()
	if err != nil {
		w.Stop()
		return nil, fmt.Errorf("gateway: list services: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.declared)
	for _, s := range svcs {
		g.declare(s)
	}
	mux, err := g.build(g.configured)
	if err != nil {
		w.Stop()
		return nil, err
	}
	g.use(mux)
	return w, nil
}

// declare records the routes s declares; the caller holds g.mu.
func (g *Gateway) declare(s *registry.Service) {
	key := s.Name + "\x00" + s.Version
	rs, errs := DeclaredRoutes(s)
	for _, err := range errs {
		g.opts.Logger.Warn("gateway: declared route refused", "service", s.Name, "err", err)
	}
	if len(rs) == 0 {
		delete(g.declared, key)
		return
	}
	g.declared[key] = rs
}

// watch applies registry changes to the declared routes until Close, re-listing when the
// watch ends on its own (overflow, registry error).
func (g *Gateway) watch(w registry.Watcher) {
	defer g.watching.Done()
	go func() { <-g.stop; w.Stop() }()
	for {
		r, err := w.Next()
		if err == nil {
			g.apply(r)
			continue
		}
		select {
		case <-g.stop:
			return
		default:
		}
		g.opts.Logger.Warn("gateway: registry watch ended; listing again", "err", err)
		for {
			if w, err = g.follow(); err == nil {
				break
			}
			g.opts.Logger.Warn("gateway: following the registry", "err", err)
			select {
			case <-g.stop:
				return
			case <-time.After(time.Second):
			}
		}
		go func(w registry.Watcher) { <-g.stop; w.Stop() }(w)
	}
}

func (g *Gateway) apply(r *registry.Result) {
	g.mu.Lock()
	defer g.mu.Unlock()
	before := g.declared[r.Service.Name+"\x00"+r.Service.Version]
	if r.Action == registry.Delete {
		delete(g.declared, r.Service.Name+"\x00"+r.Service.Version)
	} else {
		g.declare(r.Service)
	}
	if slices.Equal(before, g.declared[r.Service.Name+"\x00"+r.Service.Version]) {
		return // a node came or went: the routes are the same
	}
	mux, err := g.build(g.configured)
	if err != nil { // the configured routes were built before: cannot fail
		g.opts.Logger.Error("gateway: rebuilding the routes", "err", err)
		return
	}
	g.use(mux)
}
