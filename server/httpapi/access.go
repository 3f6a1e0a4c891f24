package httpapi

import (
	"net/http"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/web"
)

// access is the rule of one route when authentication is on: what a token
// needs to be served.
type access struct {
	// public routes need no token (they are outside the identity
	// middleware).
	public bool
	// perm is the permission needed on every target; "" asks only for a
	// valid token.
	perm string
	// targets returns the keys or canonical prefixes the request reaches
	// ("" is the whole keyspace). ok false leaves the request to its
	// handler, which refuses it as malformed with the same parse. nil
	// targets mean the whole keyspace.
	targets func(r *http.Request) (targets []string, ok bool)
	// inHandler: the targets are in the body, and the handler checks them
	// with handler.authorize (transactions, rollbacks).
	inHandler bool
	// ui: the web UI authenticates the request itself (a login session
	// or a bearer token, checked with the same Auth) and checks each page
	// against the token's grants: need lets it through.
	ui bool
}

// routeAccess holds the rule of every route, by "METHOD pattern" as
// chi.Walk reports it; NewHandler panics on a /v1 route without one, and
// TestEveryRouteHasAnAccessRule walks the router. The web UI, under /ui/,
// has one rule for all its routes: it checks them itself (see webUI).
var routeAccess = map[string]access{
	"GET /":        {public: true},
	"GET /healthz": {public: true},
	"GET /readyz":  {public: true},
	"GET /metrics": {public: true},
	"* /ui/*":      {ui: true},

	"GET /v1/kv":               {perm: api.PermissionRead, targets: listTarget},
	"GET /v1/kv/*":             {perm: api.PermissionRead, targets: keyTarget},
	"PUT /v1/kv/*":             {perm: api.PermissionWrite, targets: keyTarget},
	"DELETE /v1/kv/*":          {perm: api.PermissionWrite, targets: keyTarget},
	"GET /v1/layers/*":         {perm: api.PermissionRead, targets: keyTarget},
	"POST /v1/txn":             {perm: api.PermissionWrite, inHandler: true},
	"POST /v1/rollback":        {perm: api.PermissionWrite, inHandler: true},
	"GET /v1/history":          {perm: api.PermissionRead, targets: scopeTarget},
	"GET /v1/diff":             {perm: api.PermissionRead, targets: scopeTarget},
	"GET /v1/revisions/{rev}":  {perm: api.PermissionRead}, // a revision spans any keys: read on everything
	"GET /v1/watch":            {perm: api.PermissionRead, targets: watchTarget},
	"GET /v1/schemas":          {perm: api.PermissionRead, inHandler: true}, // each schema's prefix, read
	"GET /v1/schemas/*":        {perm: api.PermissionRead, targets: schemaTarget},
	"PUT /v1/schemas/*":        {perm: api.PermissionWrite, targets: schemaTarget},
	"DELETE /v1/schemas/*":     {perm: api.PermissionWrite, targets: schemaTarget},
	"GET /v1/schema-history/*": {perm: api.PermissionRead, targets: schemaTarget},
	"GET /v1/status":           {},
	"GET /v1/sources":          {},
	"GET /v1/replicas":         {},
	"GET /v1/clients":          {perm: api.PermissionRead, targets: listTarget},
	"POST /v1/clients/report":  {perm: api.PermissionRead, inHandler: true},
	"GET /v1/audit/verify":     {perm: api.PermissionAdmin},
	"GET /v1/backup":           {perm: api.PermissionAdmin},
	"GET /v1/tokens":           {perm: api.PermissionAdmin},
	"POST /v1/tokens":          {perm: api.PermissionAdmin},
	"DELETE /v1/tokens/{name}": {perm: api.PermissionAdmin},

	"PUT /v1/tokens/{name}/grants": {perm: api.PermissionAdmin},

	// Change requests: each handler checks the request's scope and keys
	// (requests.go).
	"POST /v1/requests":               {perm: api.PermissionWrite, inHandler: true},
	"GET /v1/requests":                {},
	"GET /v1/requests/{id}":           {},
	"POST /v1/requests/{id}/{action}": {perm: api.PermissionWrite, inHandler: true},
	"GET /v1/policies":                {},
	"PUT /v1/policies":                {perm: api.PermissionAdmin, inHandler: true},

	// Rollouts: each handler checks the rollout's scope, or its request's
	// keys (rollouts.go).
	"POST /v1/rollouts":               {perm: api.PermissionWrite, inHandler: true},
	"GET /v1/rollouts":                {},
	"GET /v1/rollouts/{id}":           {},
	"POST /v1/rollouts/{id}/{action}": {perm: api.PermissionWrite, inHandler: true},
}

func keyTarget(r *http.Request) ([]string, bool) {
	key, err := keyParam(r)
	return []string{key}, err == nil
}

func listTarget(r *http.Request) ([]string, bool) {
	p, err := keyspace.Prefix(r.URL.Query().Get("prefix"))
	return []string{p}, err == nil
}

// scopeTarget is the key= or prefix= of history and diff; neither is the
// whole keyspace.
func scopeTarget(r *http.Request) ([]string, bool) {
	sc, err := scopeParams(r.URL.Query())
	if err != nil {
		return nil, false
	}
	if sc.Key != "" {
		return []string{sc.Key}, true
	}
	return []string{sc.Prefix}, true
}

// watchTarget is every key= and prefix= of a watch. A key or prefix that
// does not parse needs read on everything, as the watch hub's own checks
// are not this parse.
func watchTarget(r *http.Request) ([]string, bool) {
	q := r.URL.Query()
	var out []string
	for _, k := range q["key"] {
		if keyspace.Validate(k) != nil {
			return []string{""}, true
		}
		out = append(out, k)
	}
	for _, p := range q["prefix"] {
		c, err := keyspace.Prefix(p)
		if err != nil {
			return []string{""}, true
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, false // refused by the handler: a watch needs key= or prefix=
	}
	return out, true
}

// need enforces rule a on a route. With authentication off (no WithAuth)
// it does nothing.
func (h *handler) need(a access) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if h.opts.auth == nil || a.public || a.ui {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if authz.PrincipalFrom(r.Context()) == nil {
				// The identity middleware was replaced by one that does not
				// authenticate: refuse rather than serve unchecked.
				apierror.WriteError(w, h.opts.auth.Check(nil, a.perm, ""))
				return
			}
			if a.perm != "" && !a.inHandler {
				targets, ok := []string{""}, true
				if a.targets != nil {
					targets, ok = a.targets(r)
				}
				for _, t := range targets {
					if ok && !h.authorize(w, r, a.perm, t) {
						return
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// authorize checks that the request's token has perm on target (a key or
// a canonical prefix); if not it answers 403 and returns false. With
// authentication off it returns true.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request, perm, target string) bool {
	if h.opts.auth == nil {
		return true
	}
	if err := h.opts.auth.Check(authz.PrincipalFrom(r.Context()), perm, target); err != nil {
		apierror.WriteError(w, err)
		return false
	}
	return true
}

// uiMiddleware is what runs before the web UI. With authentication off:
// the identity middleware and the limits, as for /v1. With it on, the UI
// authenticates requests itself (webUI): a browser has no bearer token,
// but a login session.
func (h *handler) uiMiddleware() []func(http.Handler) http.Handler {
	if h.opts.auth == nil {
		return []func(http.Handler) http.Handler{h.opts.identity, h.opts.limits.Middleware, h.need(routeAccess["* /ui/*"])}
	}
	return []func(http.Handler) http.Handler{h.need(routeAccess["* /ui/*"])}
}

// webUI is the web UI that NewHandler mounts at /ui. With authentication
// on, it accepts a login session (POST /ui/login) or an Authorization
// bearer token, both checked with the handler's Auth, and shows each token
// only what its grants allow; the limits apply once it knows the token.
//
// The UI's change requests act through the handler's book, as the API's
// routes do, and its rollouts through the handler's rollouts book; its
// clients page lists the handler's Clients.
//
// With a hub, the live timeline watches at GET /ui/api/watch: the same
// watch handler as /v1/watch, under /ui so that the session cookie (Path
// /ui) reaches it, watching only prefixes the token may read (uiWatch).
// The cookie is not sent to /v1, which stays bearer-only and so needs no
// CSRF defence of its own beyond the cross-origin guard.
func (h *handler) webUI(watch *watchHTTP) http.Handler {
	opts := []web.Option{web.WithHub(h.opts.hub), web.WithLogger(h.opts.logger), web.WithRequests(h.book), web.WithRollouts(h.rollouts)}
	if h.opts.clients != nil {
		opts = append(opts, web.WithClients(h.opts.clients))
	}
	if watch != nil {
		opts = append(opts, web.WithWatch(h.uiWatch(watch)))
	}
	if h.opts.auth != nil {
		opts = append(opts, web.WithAuth(uiAuth{h.opts.auth}), web.WithMiddleware(h.opts.limits.Middleware))
	}
	if h.opts.uiSessions != nil {
		opts = append(opts, web.WithSessions(h.opts.uiSessions))
	}
	return web.New(h.st, opts...)
}

// uiWatch narrows a watch of the web UI to what its token may read: each
// prefix= the token may not read whole becomes the prefixes under it that
// the token's grants cover, and a key= it may not read is dropped. A watch
// left with nothing is refused with 403. Authentication off, it changes
// nothing.
func (h *handler) uiWatch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := authz.PrincipalFrom(r.Context())
		q := r.URL.Query()
		if h.opts.auth == nil || (len(q["key"]) == 0 && len(q["prefix"]) == 0) {
			next.ServeHTTP(w, r) // the handler refuses a watch of nothing
			return
		}
		keys, prefixes, err := h.opts.auth.WatchScope(p, q["key"], q["prefix"])
		if err != nil {
			apierror.WriteError(w, err)
			return
		}
		q["key"], q["prefix"] = keys, prefixes
		if len(keys) == 0 {
			delete(q, "key")
		}
		if len(prefixes) == 0 {
			delete(q, "prefix")
		}
		r2 := r.Clone(r.Context())
		r2.URL.RawQuery = q.Encode()
		next.ServeHTTP(w, r2)
	})
}
