package consul

import (
	"context"
	"sync"

	"github.com/configd/configd/sdk/go/micro/registry"
)

// Watch implements registry.Registry with blocking queries: one on the health of each watched
// service (passing nodes), and, for a watch of every service, one on the catalog's service
// names that starts and ends the per-service queries. The current state is read before Watch
// returns, so every later change is reported. A failed query ends the watch with its error
// (the caller re-lists and watches again, as the selector does).
func (r *Registry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	if r.err != nil {
		return nil, r.err
	}
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{r: r, ctx: ctx, services: map[string]*serviceWatch{}}
	w.q = registry.NewQueue(0, cancel)
	fail := func(err error) (registry.Watcher, error) {
		cancel()
		return nil, err
	}
	bctx, bcancel := r.ctx(nil)
	defer bcancel()
	if o.Service != "" {
		svcs, index, err := r.health(bctx, o.Service, 0, 0)
		if err != nil {
			return fail(err)
		}
		w.start(o.Service, svcs, index)
		return w.q, nil
	}
	names, index, err := r.names(bctx, 0, 0)
	if err != nil {
		return fail(err)
	}
	for _, name := range names {
		svcs, sindex, err := r.health(bctx, name, 0, 0)
		if err != nil {
			return fail(err)
		}
		w.start(name, svcs, sindex)
	}
	go w.catalog(index)
	return w.q, nil
}

type watch struct {
	r   *Registry
	q   *registry.Queue
	ctx context.Context

	mu       sync.Mutex
	services map[string]*serviceWatch
}

type serviceWatch struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	last   []*registry.Service
	ended  bool
}

// publish reports the change from the last state to now, unless the service watch has ended.
func (sw *serviceWatch) publish(q *registry.Queue, now []*registry.Service) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.ended {
		return
	}
	for _, ev := range registry.Diff(sw.last, now) {
		q.Push(ev)
	}
	sw.last = now
}

func (w *watch) start(name string, baseline []*registry.Service, index uint64) {
	ctx, cancel := context.WithCancel(w.ctx)
	sw := &serviceWatch{cancel: cancel, last: baseline}
	w.mu.Lock()
	w.services[name] = sw
	w.mu.Unlock()
	go w.service(ctx, name, sw, index)
}

func (w *watch) service(ctx context.Context, name string, sw *serviceWatch, index uint64) {
	for {
		svcs, next, err := w.r.health(ctx, name, index, watchWait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.q.Fail(err)
			return
		}
		index = resetIndex(index, next)
		sw.publish(w.q, svcs)
	}
}

// catalog follows the catalog's service names: a new name starts a service watch from nothing
// (so its first passing nodes are a Create); a name gone ends its watch with a Delete of
// whatever it last reported.
func (w *watch) catalog(index uint64) {
	for {
		names, next, err := w.r.names(w.ctx, index, watchWait)
		if w.ctx.Err() != nil {
			return
		}
		if err != nil {
			w.q.Fail(err)
			return
		}
		index = resetIndex(index, next)
		seen := map[string]bool{}
		for _, name := range names {
			seen[name] = true
			w.mu.Lock()
			_, ok := w.services[name]
			w.mu.Unlock()
			if !ok {
				w.start(name, nil, 0)
			}
		}
		w.mu.Lock()
		for name, sw := range w.services {
			if !seen[name] {
				delete(w.services, name)
				sw.cancel()
				sw.publish(w.q, nil)
				sw.mu.Lock()
				sw.ended = true
				sw.mu.Unlock()
			}
		}
		w.mu.Unlock()
	}
}

// resetIndex applies Consul's rule for blocking queries: an index that went backwards (a
// snapshot restore, a new cluster) restarts from 0; otherwise wait past the new one.
func resetIndex(prev, next uint64) uint64 {
	if next < prev {
		return 0
	}
	return next
}
