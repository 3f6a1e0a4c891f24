package authz

import (
	"context"
	"sync/atomic"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/watcher"
)

// The rules an open watch keeps for as long as it is open, on every
// transport (long poll, server-sent events, the watch stream, gRPC): its
// token stays valid and may still read everything the watch reaches, and a
// secret's value goes out only on a connection that may carry it. A watch
// checks them before each batch it sends, and its token's revocation or
// new grants wake it (Auth.subscribe), so that it ends at once with the
// transport's unauthenticated or forbidden answer, and nothing committed
// after the change reaches it.

// WatchRules are the rules of one open watch.
type WatchRules struct {
	secure bool       // the connection may carry secrets' values
	gate   *tokenGate // nil: authentication is off
}

// Admit checks the rules before b is sent: nil, or the API error that
// ends the watch (401, 403).
func (r *WatchRules) Admit(b watcher.Batch) error {
	if err := r.Check(); err != nil {
		return err
	}
	if !r.secure {
		return checkPlain(b)
	}
	return nil
}

// Check checks the token's rules alone, when the watch is woken by its
// token's revocation or new grants: nil, or the 401 or 403 that ends it
// (and ever after). It costs an atomic load while no token has changed.
func (r *WatchRules) Check() error { return r.gate.check() }

// Close stops the rules' subscription to token changes.
func (r *WatchRules) Close() { r.gate.close() }

// tokenGate checks that the token of an open watch may still read its
// scope.
type tokenGate struct {
	a       *Auth
	p       *Principal
	targets []string      // the watched keys and canonical prefixes; "" is everything
	seen    atomic.Uint64 // Auth.gen when the token last passed
	failed  atomic.Pointer[apierror.Error]
	stop    func()
}

// NewWatchRules returns the rules of a watch of f by the token of ctx, on
// a connection that may carry secrets' values when secure, calling wake
// (which must return at once) when the token's rights change. With
// authentication off (a nil a), or no token in ctx, only the secrets'
// rule applies.
func NewWatchRules(ctx context.Context, a *Auth, f watcher.Filter, secure bool, wake func()) *WatchRules {
	r := &WatchRules{secure: secure}
	p := PrincipalFrom(ctx)
	if a == nil || p == nil {
		return r
	}
	g := &tokenGate{a: a, p: p, targets: watchTargets(f)}
	g.stop = a.subscribe(p, wake)
	r.gate = g
	return r
}

// CheckWatch refuses a watch of f that p may not open: every key and
// prefix of f needs read, and an empty filter (everything) needs read on
// everything. The refusal is Check's.
func (a *Auth) CheckWatch(p *Principal, f watcher.Filter) error {
	for _, t := range watchTargets(f) {
		if err := a.Check(p, api.PermissionRead, t); err != nil {
			return err
		}
	}
	return nil
}

// watchTargets are the keys and canonical prefixes a filter reaches: a
// prefix that does not parse, or an empty filter, reaches everything ("").
func watchTargets(f watcher.Filter) []string {
	targets := append([]string(nil), f.Keys...)
	for _, pre := range f.Prefixes {
		c, err := keyspace.Prefix(pre)
		if err != nil {
			c = ""
		}
		targets = append(targets, c)
	}
	if len(targets) == 0 {
		targets = []string{""}
	}
	return targets
}

// check returns nil while the token is valid and may read every target,
// else the 401 or 403 that ends the watch (and ever after).
func (g *tokenGate) check() error {
	if g == nil {
		return nil
	}
	if e := g.failed.Load(); e != nil {
		return e
	}
	gen := g.a.gen.Load()
	if g.seen.Load() == gen {
		return nil
	}
	var refusal *apierror.Error
	cur, reason := g.a.current(g.p)
	if cur == nil {
		refusal = apierror.New(api.CodeUnauthenticated, "%s: the watch has ended", unauthenticatedMessage(reason))
	} else {
		for _, t := range g.targets {
			if !cur.Allows(api.PermissionRead, t) {
				refusal = apierror.New(api.CodeForbidden, "%s: the watch has ended", forbiddenMessage(cur, api.PermissionRead, t))
				reason = denyForbidden
				break
			}
		}
	}
	if refusal != nil {
		if g.failed.CompareAndSwap(nil, refusal) {
			g.a.deny(reason)
		}
		return g.failed.Load()
	}
	g.seen.Store(gen)
	return nil
}

func (g *tokenGate) close() {
	if g != nil {
		g.stop()
	}
}
