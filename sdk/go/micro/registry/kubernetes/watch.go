package kubernetes

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/configd/configd/sdk/go/micro/registry"
)

const (
	// watchTimeout is how long one watch request lasts before it is renewed from the last
	// resource version seen.
	watchTimeout = 5 * time.Minute
	// retryMin and retryMax bound the wait before reconnecting to an API server that failed.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// Watch implements registry.Registry with a watch of the pods from the resource version of a
// listing made before Watch returns, so no change after it is missed. A pod's events are
// reported per name/version as Create, Update or Delete: a pod that starts Running brings its
// nodes, one that stops running or is deleted takes them away. When the API server cannot be
// reached, or the resource version is too old (410 Gone), the watcher keeps what it last
// reported, lists again once it can (retrying with backoff), reports the difference and resumes;
// it ends only with Stop or Close.
func (r *Registry) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	if r.err != nil {
		return nil, r.err
	}
	var o registry.WatchOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	lctx, lcancel := r.callCtx(nil)
	defer lcancel()
	l, err := r.list(lctx, o.Service)
	if err != nil {
		cancel()
		return nil, err
	}
	w := &watch{r: r, name: o.Service, pods: map[string][]*registry.Service{}, merged: registry.Reported{}}
	w.apply(l) // no queue yet: the state the watch starts from is not reported
	w.q = registry.NewQueue(0, cancel)
	go w.run(ctx, l.Metadata.ResourceVersion)
	return w.q, nil
}

type watch struct {
	r      *Registry
	q      *registry.Queue
	name   string                         // the one service watched, or "" for all
	pods   map[string][]*registry.Service // pod name → the services it holds now
	merged registry.Reported
}

func (w *watch) run(ctx context.Context, rv string) {
	wait := retryMin
	for {
		next, err := w.stream(ctx, rv)
		if ctx.Err() != nil {
			if w.r.ctx.Err() != nil {
				w.q.Fail(errors.New("registry kubernetes: registry closed"))
			}
			return
		}
		if err == nil { // the server ended the request: renew it
			rv, wait = next, retryMin
			continue
		}
		if next != rv { // events came before the failure: start the backoff afresh
			wait = retryMin
		}
		rv = next
		if !isStatus(err, http.StatusGone) {
			select {
			case <-ctx.Done():
				continue
			case <-time.After(wait):
			}
			wait = min(2*wait, retryMax)
		}
		// Too old, or the server was away: list again, report the difference, go on from there.
		lctx, lcancel := w.r.callCtx(ctx)
		l, lerr := w.r.list(lctx, w.name)
		lcancel()
		if lerr != nil {
			continue // keep what was reported; try again after the backoff
		}
		w.apply(l)
		rv, wait = l.Metadata.ResourceVersion, retryMin
	}
}

// stream follows one watch request from rv, applying its events, and returns the resource
// version to resume from with nil when the server ended the request, or the error that ended it.
func (w *watch) stream(ctx context.Context, rv string) (string, error) {
	body, err := w.r.c.watch(ctx, selector(w.name), rv, watchTimeout)
	if err != nil {
		return rv, err
	}
	defer body.Close()
	// The API server writes one event per line; a line longer than maxEventBytes ends the
	// stream (bufio.ErrTooLong) rather than growing without bound.
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	for {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return rv, err
			}
			return rv, nil // the server ended the request
		}
		var ev watchEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return rv, err
		}
		switch ev.Type {
		case "ERROR":
			e := &apiError{}
			if json.Unmarshal(ev.Object, e) != nil || e.Code == 0 {
				e.Code = http.StatusGone
			}
			return rv, e
		case "BOOKMARK":
			var p pod
			if json.Unmarshal(ev.Object, &p) == nil && p.Metadata.ResourceVersion != "" {
				rv = p.Metadata.ResourceVersion
			}
		case "ADDED", "MODIFIED", "DELETED":
			var p pod
			if err := json.Unmarshal(ev.Object, &p); err != nil {
				return rv, err
			}
			var now []*registry.Service
			if ev.Type != "DELETED" {
				now = services(&p, w.name)
			}
			w.set(p.Metadata.Name, now)
			rv = p.Metadata.ResourceVersion
		}
	}
}

// set records what pod holds now and reports the change.
func (w *watch) set(pod string, now []*registry.Service) {
	changed := map[string]bool{}
	for _, s := range w.pods[pod] {
		changed[s.Name] = true
	}
	for _, s := range now {
		changed[s.Name] = true
	}
	if len(now) == 0 {
		delete(w.pods, pod)
	} else {
		w.pods[pod] = now
	}
	w.publish(changed)
}

// apply replaces what every pod holds with a listing and reports the difference.
func (w *watch) apply(l *podList) {
	changed := map[string]bool{}
	for _, ss := range w.pods {
		for _, s := range ss {
			changed[s.Name] = true
		}
	}
	w.pods = map[string][]*registry.Service{}
	for _, p := range l.Items {
		if now := services(&p, w.name); len(now) > 0 {
			w.pods[p.Metadata.Name] = now
			for _, s := range now {
				changed[s.Name] = true
			}
		}
	}
	w.publish(changed)
}

// publish reports, for each changed name, the difference between what was last reported and
// what the pods hold now.
func (w *watch) publish(changed map[string]bool) {
	for name := range changed {
		var parts []*registry.Service
		for _, ss := range w.pods {
			for _, s := range ss {
				if s.Name == name {
					parts = append(parts, s)
				}
			}
		}
		w.merged.Update(w.q, name, parts)
	}
}
