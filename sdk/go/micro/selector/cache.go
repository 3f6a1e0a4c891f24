package selector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/sdk/go/micro/registry"
)

// Cache is the default Selector: it lists a service from the registry once, keeps the list up to
// date from a registry Watch, re-lists after TTL in case an event was missed, and keeps serving
// the last good list when the registry errors.
type Cache struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	entries  map[string]*entry
	nodes    map[nodeKey]*nodeState
	watching bool // a watch is established; without one, every Select re-lists
}

type entry struct {
	services []*registry.Service
	fetched  time.Time
	stale    bool   // the watch restarted: events may have been missed
	gen      uint64 // bumped by every event, so an older list never overwrites a newer event
}

type nodeKey struct{ service, id string }

type nodeState struct {
	outstanding  atomic.Int64
	demotedUntil time.Time // guarded by Cache.mu
}

var _ Selector = (*Cache)(nil)

// New returns a Cache selector and starts its registry watch. Close stops it.
func New(opts ...Option) (*Cache, error) {
	o := Options{TTL: time.Minute, DemoteFor: 10 * time.Second, Logger: slog.Default(), Now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	if o.Registry == nil {
		return nil, errors.New("selector: no registry")
	}
	if o.Strategy == nil {
		o.Strategy = RoundRobin()
	}
	if o.TTL <= 0 || o.DemoteFor < 0 {
		return nil, fmt.Errorf("selector: TTL must be > 0 and DemoteFor >= 0 (got %v, %v)", o.TTL, o.DemoteFor)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		opts: o, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		entries: map[string]*entry{}, nodes: map[nodeKey]*nodeState{},
	}
	// Subscribe before returning, so no change after New is missed by a list made after it.
	w, err := o.Registry.Watch()
	if err != nil {
		o.Logger.Warn("selector: registry watch failed, will retry", "err", err)
	}
	c.watching = w != nil
	go c.watch(w)
	return c, nil
}

// String implements Selector.
func (c *Cache) String() string { return "cache" }

// Select implements Selector.
func (c *Cache) Select(service string, opts ...SelectOption) (Next, error) {
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	so := SelectOptions{Strategy: c.opts.Strategy}
	for _, f := range opts {
		f(&so)
	}
	services, err := c.list(service)
	if err != nil {
		return nil, err
	}
	if len(services) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, service)
	}
	for _, f := range so.Filters {
		services = f(services)
	}
	now := c.opts.Now()
	var healthy, demoted []*registry.Node
	c.mu.Lock()
	for _, s := range services {
		for _, n := range s.Nodes {
			if st := c.nodes[nodeKey{service, n.Id}]; st != nil && now.Before(st.demotedUntil) {
				demoted = append(demoted, n)
			} else {
				healthy = append(healthy, n)
			}
		}
	}
	c.mu.Unlock()
	if len(healthy) == 0 {
		// A demoted node is a better bet than no node at all.
		healthy = demoted
	}
	if len(healthy) == 0 {
		return nil, fmt.Errorf("%w: %s (after filters)", ErrNoneAvailable, service)
	}
	inner := so.Strategy(service, healthy, c)
	return func() (*registry.Node, error) {
		n, err := inner()
		if err == nil {
			c.state(service, n.Id).outstanding.Add(1)
		}
		return n, err
	}, nil
}

// Mark implements Selector.
func (c *Cache) Mark(service string, node *registry.Node, err error) {
	st := c.state(service, node.Id)
	if st.outstanding.Add(-1) < 0 {
		st.outstanding.Store(0)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		st.demotedUntil = c.opts.Now().Add(c.opts.DemoteFor)
		c.opts.Logger.Debug("selector: node demoted", "service", service, "node", node.Id, "err", err)
	} else {
		st.demotedUntil = time.Time{}
	}
}

// Outstanding implements Load.
func (c *Cache) Outstanding(service, nodeID string) int64 {
	return c.state(service, nodeID).outstanding.Load()
}

// Reset implements Selector.
func (c *Cache) Reset(service string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, service)
	for k := range c.nodes {
		if k.service == service {
			delete(c.nodes, k)
		}
	}
}

// Close implements Selector.
func (c *Cache) Close() error {
	c.cancel()
	<-c.done
	return nil
}

func (c *Cache) state(service, id string) *nodeState {
	k := nodeKey{service, id}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.nodes[k]
	if st == nil {
		st = &nodeState{}
		c.nodes[k] = st
	}
	return st
}

// list returns the cached services of name, asking the registry when the cache is missing,
// expired or stale. A registry error with a cached list serves that list.
func (c *Cache) list(name string) ([]*registry.Service, error) {
	now := c.opts.Now()
	c.mu.Lock()
	e := c.entries[name]
	if e != nil && c.watching && !e.stale && now.Sub(e.fetched) < c.opts.TTL {
		s := e.services
		c.mu.Unlock()
		return s, nil
	}
	var gen uint64
	if e != nil {
		gen = e.gen
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	fresh, err := c.opts.Registry.GetService(name, registry.GetContext(ctx))
	c.mu.Lock()
	defer c.mu.Unlock()
	e = c.entries[name]
	switch {
	case errors.Is(err, registry.ErrNotFound):
		delete(c.entries, name)
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	case err != nil && e != nil:
		c.opts.Logger.Warn("selector: registry unreachable, serving the last good list",
			"service", name, "age", now.Sub(e.fetched).String(), "err", err)
		return e.services, nil
	case err != nil:
		return nil, fmt.Errorf("selector: list %s: %w", name, err)
	}
	if e != nil && e.gen != gen {
		// An event arrived while we listed: it is newer than the list.
		e.fetched, e.stale = now, false
		return e.services, nil
	}
	c.entries[name] = &entry{services: fresh, fetched: now, gen: gen}
	return fresh, nil
}

// watch applies registry events to the cached entries, restarting the watch with jittered
// backoff when it fails. After a restart every entry is stale: it is re-listed on next use.
func (c *Cache) watch(w registry.Watcher) {
	defer close(c.done)
	backoff := 50 * time.Millisecond
	for c.ctx.Err() == nil {
		var err error
		if w == nil {
			w, err = c.opts.Registry.Watch()
		}
		if err == nil {
			c.mu.Lock()
			c.watching = true
			c.mu.Unlock()
			stop := context.AfterFunc(c.ctx, w.Stop)
			err = c.consume(w)
			stop()
			w.Stop()
			w = nil
			backoff = 50 * time.Millisecond
		}
		if c.ctx.Err() != nil {
			return
		}
		c.opts.Logger.Warn("selector: registry watch ended, restarting", "err", err)
		c.mu.Lock()
		c.watching = false
		for _, e := range c.entries {
			e.stale = true
		}
		c.mu.Unlock()
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, 5*time.Second)
		select {
		case <-time.After(d):
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *Cache) consume(w registry.Watcher) error {
	for {
		r, err := w.Next()
		if err != nil {
			return err
		}
		if r.Service != nil {
			c.apply(r)
		}
	}
}

func (c *Cache) apply(r *registry.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[r.Service.Name]
	if e == nil {
		return // not a service we call; it will be listed on first use
	}
	e.gen++
	out := make([]*registry.Service, 0, len(e.services)+1)
	for _, s := range e.services {
		if s.Version != r.Service.Version {
			out = append(out, s)
		}
	}
	if r.Action != registry.Delete {
		out = append(out, r.Service)
	}
	e.services = out
}
