package etcd

import (
	"context"
	"errors"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/sdk/go/micro/registry"
)

// Watch implements registry.Registry with an etcd watch from the revision of a read made before
// Watch returns, so no change after it is missed. Events of one etcd response are applied
// together and reported per name/version as Create, Update or Delete. If the watch is cancelled
// (a compacted revision), the state is read again, the difference reported, and the watch
// resumes; it ends only with Stop or when the client is closed.
func (r *Registry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	if r.err != nil {
		return nil, r.err
	}
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	prefix := r.prefix
	if o.Service != "" {
		prefix = r.dir(o.Service)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	rctx, rcancel := r.callCtx(nil)
	defer rcancel()
	nodes, rev, err := r.list(rctx, prefix)
	if err != nil {
		cancel()
		return nil, err
	}
	w := &watch{r: r, prefix: prefix, nodes: nodes, merged: registry.Reported{}}
	for _, s := range registry.Merge(values(nodes)) {
		w.merged[s.Name] = append(w.merged[s.Name], s)
	}
	w.q = registry.NewQueue(0, cancel)
	go w.run(ctx, rev)
	return w.q, nil
}

type watch struct {
	r      *Registry
	q      *registry.Queue
	prefix string
	nodes  map[string]*registry.Service // key → one-node service
	merged registry.Reported
}

func (w *watch) run(ctx context.Context, rev int64) {
	for {
		wch := w.r.client.Watch(clientv3.WithRequireLeader(ctx), w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				break // compacted or cancelled: re-read below
			}
			changed := map[string]bool{}
			for _, ev := range resp.Events {
				k := string(ev.Kv.Key)
				if old := w.nodes[k]; old != nil {
					changed[old.Name] = true
				}
				delete(w.nodes, k)
				if ev.Type == clientv3.EventTypePut {
					if s := decode(ev.Kv.Value); s != nil {
						w.nodes[k] = s
						changed[s.Name] = true
					}
				}
			}
			w.publish(changed)
			rev = resp.Header.Revision
		}
		if w.r.ctx.Err() != nil {
			w.q.Fail(errors.New("registry etcd: registry closed"))
			return
		}
		if ctx.Err() != nil {
			return
		}
		// Re-read everything and report the difference, then watch from there.
		nodes, next, err := w.r.list(ctx, w.prefix)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.q.Fail(err)
			return
		}
		changed := map[string]bool{}
		for _, s := range w.nodes {
			changed[s.Name] = true
		}
		for _, s := range nodes {
			changed[s.Name] = true
		}
		w.nodes, rev = nodes, next
		w.publish(changed)
	}
}

// publish reports, for each changed name, the difference between what was last reported and
// the nodes now known.
func (w *watch) publish(changed map[string]bool) {
	for name := range changed {
		var parts []*registry.Service
		for _, s := range w.nodes {
			if s.Name == name {
				parts = append(parts, s)
			}
		}
		w.merged.Update(w.q, name, parts)
	}
}
