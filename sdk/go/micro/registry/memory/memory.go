// Package memory is an in-process Registry with TTL expiry of nodes. It is the default for tests
// and single-process setups, and the store behind a registry served to other processes.
package memory

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/registry"
)

// Registry is an in-memory registry.Registry. Nodes registered with a TTL disappear when they are
// not registered again within it; watchers see the removal as an Update or a Delete.
type Registry struct {
	mu       sync.Mutex
	services map[string]map[string]*record // name → version → record
	watchers map[*registry.Queue]string    // queue → service filter ("" = all)
	timer    *time.Timer
	timerAt  time.Time
	opts     registry.Options
}

type record struct {
	svc   *registry.Service // without nodes
	nodes map[string]*entry
}

type entry struct {
	node    *registry.Node
	expires time.Time // zero: never
}

var _ registry.Registry = (*Registry)(nil)

// NewRegistry returns an empty in-memory registry.
func NewRegistry(opts ...registry.Option) registry.Registry { return New(opts...) }

// Config is the memory registry's own config: it has no fields beyond registry.Options. It is
// the plugin module micro.registry.memory.
type Config struct{}

var _ registry.Module = Config{}

// PluginInfo names the module: micro.registry.memory.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: registry.Namespace + ".memory", New: func() plugin.Module { return new(Config) }}
}

// NewRegistry builds the registry c describes: an empty in-memory registry.
func (c Config) NewRegistry(opts ...registry.Option) (registry.Registry, error) {
	return New(opts...), nil
}

// New returns an empty in-memory registry.
func New(opts ...registry.Option) *Registry {
	r := &Registry{services: map[string]map[string]*record{}, watchers: map[*registry.Queue]string{}}
	for _, o := range opts {
		o(&r.opts)
	}
	return r
}

// String implements registry.Registry.
func (r *Registry) String() string { return "memory" }

// Register implements registry.Registry. Registering the same nodes again only extends their TTL
// and emits no event; a change of address, metadata or endpoints emits an Update.
func (r *Registry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	if err := s.Validate(); err != nil {
		return err
	}
	var o registry.RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	now := time.Now()
	var expires time.Time
	if o.TTL > 0 {
		expires = now.Add(o.TTL)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reapLocked(now)
	rec := r.services[s.Name][s.Version]
	action := registry.Action("")
	if rec == nil {
		if len(s.Nodes) == 0 {
			return nil // a service is known through its nodes
		}
		versions := r.services[s.Name]
		if versions == nil {
			versions = map[string]*record{}
			r.services[s.Name] = versions
		}
		rec = &record{nodes: map[string]*entry{}}
		versions[s.Version] = rec
		action = registry.Create
	}
	bare := s.Copy()
	bare.Nodes = nil
	if action == "" && !sameService(rec.svc, bare) {
		action = registry.Update
	}
	rec.svc = bare
	for _, n := range s.Nodes {
		e := rec.nodes[n.Id]
		if e == nil || e.node.Address != n.Address || !maps.Equal(e.node.Metadata, n.Metadata) {
			if action == "" {
				action = registry.Update
			}
			e = &entry{node: n.Copy()}
			rec.nodes[n.Id] = e
		}
		e.expires = expires
	}
	if action != "" {
		r.emitLocked(action, rec)
	}
	r.scheduleLocked(now)
	return nil
}

// Deregister implements registry.Registry.
func (r *Registry) Deregister(s *registry.Service, _ ...registry.DeregisterOption) error {
	if err := s.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.services[s.Name][s.Version]
	if rec == nil {
		return nil
	}
	before := rec.snapshot()
	removed := false
	for _, n := range s.Nodes {
		if _, ok := rec.nodes[n.Id]; ok {
			delete(rec.nodes, n.Id)
			removed = true
		}
	}
	if !removed {
		return nil
	}
	r.afterRemovalLocked(s.Name, s.Version, rec, before)
	return nil
}

// GetService implements registry.Registry.
func (r *Registry) GetService(name string, _ ...registry.GetOption) ([]*registry.Service, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reapLocked(time.Now())
	versions := r.services[name]
	if len(versions) == 0 {
		return nil, registry.ErrNotFound
	}
	out := make([]*registry.Service, 0, len(versions))
	for _, rec := range versions {
		out = append(out, rec.snapshot())
	}
	sortServices(out)
	return out, nil
}

// ListServices implements registry.Registry.
func (r *Registry) ListServices(_ ...registry.ListOption) ([]*registry.Service, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reapLocked(time.Now())
	var out []*registry.Service
	for _, versions := range r.services {
		for _, rec := range versions {
			out = append(out, rec.snapshot())
		}
	}
	sortServices(out)
	return out, nil
}

// Watch implements registry.Registry.
func (r *Registry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	var q *registry.Queue
	q = registry.NewQueue(0, func() {
		r.mu.Lock()
		delete(r.watchers, q)
		r.mu.Unlock()
	})
	r.mu.Lock()
	r.watchers[q] = o.Service
	r.mu.Unlock()
	return q, nil
}

func (r *Registry) afterRemovalLocked(name, version string, rec *record, before *registry.Service) {
	if len(rec.nodes) == 0 {
		delete(r.services[name], version)
		if len(r.services[name]) == 0 {
			delete(r.services, name)
		}
		r.emit(registry.Delete, before)
		return
	}
	r.emitLocked(registry.Update, rec)
}

func (r *Registry) emitLocked(a registry.Action, rec *record) { r.emit(a, rec.snapshot()) }

func (r *Registry) emit(a registry.Action, s *registry.Service) {
	for q, filter := range r.watchers {
		if filter != "" && filter != s.Name {
			continue
		}
		if !q.Push(&registry.Result{Action: a, Service: s.Copy()}) {
			delete(r.watchers, q)
		}
	}
}

// reapLocked removes the nodes whose TTL has passed and emits their events.
func (r *Registry) reapLocked(now time.Time) {
	for name, versions := range r.services {
		for version, rec := range versions {
			var before *registry.Service
			for id, e := range rec.nodes {
				if !e.expires.IsZero() && !now.Before(e.expires) {
					if before == nil {
						before = rec.snapshot()
					}
					delete(rec.nodes, id)
				}
			}
			if before != nil {
				r.afterRemovalLocked(name, version, rec, before)
			}
		}
	}
}

// scheduleLocked arms one timer for the earliest expiry, so a crashed node goes away (and
// watchers hear of it) even when nobody reads the registry. time.AfterFunc holds no goroutine
// while it waits, so an idle registry leaks nothing.
func (r *Registry) scheduleLocked(now time.Time) {
	var next time.Time
	for _, versions := range r.services {
		for _, rec := range versions {
			for _, e := range rec.nodes {
				if !e.expires.IsZero() && (next.IsZero() || e.expires.Before(next)) {
					next = e.expires
				}
			}
		}
	}
	if next.IsZero() || (r.timer != nil && r.timerAt.Equal(next)) {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timerAt = next
	r.timer = time.AfterFunc(next.Sub(now), func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		now := time.Now()
		r.timer = nil
		r.reapLocked(now)
		r.scheduleLocked(now)
	})
}

func (rec *record) snapshot() *registry.Service {
	s := rec.svc.Copy()
	s.Nodes = make([]*registry.Node, 0, len(rec.nodes))
	for _, e := range rec.nodes {
		s.Nodes = append(s.Nodes, e.node.Copy())
	}
	slices.SortFunc(s.Nodes, func(a, b *registry.Node) int { return cmp.Compare(a.Id, b.Id) })
	return s
}

func sameService(a, b *registry.Service) bool {
	if a == nil || !maps.Equal(a.Metadata, b.Metadata) || len(a.Endpoints) != len(b.Endpoints) {
		return false
	}
	for i := range a.Endpoints {
		if a.Endpoints[i].Name != b.Endpoints[i].Name || !maps.Equal(a.Endpoints[i].Metadata, b.Endpoints[i].Metadata) {
			return false
		}
	}
	return true
}

func sortServices(s []*registry.Service) {
	slices.SortFunc(s, func(a, b *registry.Service) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
}
