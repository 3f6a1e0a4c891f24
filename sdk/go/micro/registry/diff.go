package registry

import (
	"cmp"
	"maps"
	"slices"
)

// Merge groups per-node records (each a Service holding one node, as key-value registries store
// them) into one Service per name and version, nodes sorted by id, services sorted by name and
// version. A version's metadata and endpoints are those of its node with the greatest id, so the
// result does not depend on the input's order.
func Merge(parts []*Service) []*Service {
	type key struct{ name, version string }
	groups := map[key]*Service{}
	var order []key
	for _, p := range parts {
		if p == nil {
			continue
		}
		k := key{p.Name, p.Version}
		g := groups[k]
		if g == nil {
			g = &Service{Name: p.Name, Version: p.Version}
			groups[k] = g
			order = append(order, k)
		}
		g.Nodes = append(g.Nodes, p.Copy().Nodes...)
	}
	out := make([]*Service, 0, len(order))
	for _, k := range order {
		g := groups[k]
		slices.SortFunc(g.Nodes, func(a, b *Node) int { return cmp.Compare(a.Id, b.Id) })
		out = append(out, g)
	}
	// Service-level fields from the record of the greatest node id.
	best := map[key]string{}
	for _, p := range parts {
		if p == nil {
			continue
		}
		k := key{p.Name, p.Version}
		id := ""
		if len(p.Nodes) > 0 {
			id = p.Nodes[0].Id
		}
		if prev, ok := best[k]; ok && prev > id {
			continue
		}
		best[k] = id
		c := p.Copy()
		groups[k].Metadata, groups[k].Endpoints = c.Metadata, c.Endpoints
	}
	slices.SortFunc(out, func(a, b *Service) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return out
}

// Diff returns the watch events that turn before into after, both lists of one Service per
// name/version with nodes sorted by id (as Merge returns them): Create for a version that
// appeared, Update for one that changed, Delete (with its last state) for one that went away.
func Diff(before, after []*Service) []*Result {
	type key struct{ name, version string }
	old := map[key]*Service{}
	for _, s := range before {
		old[key{s.Name, s.Version}] = s
	}
	var out []*Result
	for _, s := range after {
		k := key{s.Name, s.Version}
		prev, ok := old[k]
		delete(old, k)
		switch {
		case !ok:
			out = append(out, &Result{Action: Create, Service: s.Copy()})
		case !Equal(prev, s):
			out = append(out, &Result{Action: Update, Service: s.Copy()})
		}
	}
	for _, s := range before {
		if _, gone := old[key{s.Name, s.Version}]; gone {
			out = append(out, &Result{Action: Delete, Service: s.Copy()})
		}
	}
	return out
}

// Equal reports whether a and b are the same service: name, version, metadata, endpoints and
// nodes in order.
func Equal(a, b *Service) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Name != b.Name || a.Version != b.Version || !maps.Equal(a.Metadata, b.Metadata) ||
		len(a.Endpoints) != len(b.Endpoints) || len(a.Nodes) != len(b.Nodes) {
		return false
	}
	for i, e := range a.Endpoints {
		f := b.Endpoints[i]
		if e.Name != f.Name || !maps.Equal(e.Metadata, f.Metadata) {
			return false
		}
	}
	for i, n := range a.Nodes {
		m := b.Nodes[i]
		if n.Id != m.Id || n.Address != m.Address || !maps.Equal(n.Metadata, m.Metadata) {
			return false
		}
	}
	return true
}

// Reported is what a watcher last reported, per service name: for registries that rebuild a
// name's versions from per-node (or per-pod) records after each change and report the
// difference.
type Reported map[string][]*Service

// Update merges parts, the records of name now, pushes to q (when not nil) the events that turn
// what was reported into it, and remembers it as reported.
func (r Reported) Update(q *Queue, name string, parts []*Service) {
	now := Merge(parts)
	if q != nil {
		for _, ev := range Diff(r[name], now) {
			q.Push(ev)
		}
	}
	if len(now) == 0 {
		delete(r, name)
	} else {
		r[name] = now
	}
}
