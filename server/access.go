package server

import (
	"net/http"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
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
}

// routeAccess holds the rule of every route, by "METHOD pattern" as
// chi.Walk reports it; NewHandler panics on a /v1 route without one, and
// TestEveryRouteHasAnAccessRule walks the router. The web UI, under /ui/,
// has one rule for all its pages: until it has its own sessions it needs an
// admin token.
var routeAccess = map[string]access{
	"GET /":        {public: true},
	"GET /healthz": {public: true},
	"GET /readyz":  {public: true},
	"GET /metrics": {public: true},
	"* /ui/*":      {perm: api.PermissionAdmin},

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
	"GET /v1/status":           {},
	"GET /v1/sources":          {},
	"GET /v1/audit/verify":     {perm: api.PermissionAdmin},
	"GET /v1/backup":           {perm: api.PermissionAdmin},
	"GET /v1/tokens":           {perm: api.PermissionAdmin},
	"POST /v1/tokens":          {perm: api.PermissionAdmin},
	"DELETE /v1/tokens/{name}": {perm: api.PermissionAdmin},
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
		if h.opts.auth == nil || a.public {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := PrincipalFrom(r.Context())
			if p == nil {
				// The identity middleware was replaced by one that does not
				// authenticate: refuse rather than serve unchecked.
				h.opts.auth.deny(denyMissing)
				writeError(w, http.StatusUnauthorized, api.ErrorBody{Code: api.CodeUnauthenticated, Message: unauthenticatedMessage(denyMissing)})
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
	p := PrincipalFrom(r.Context())
	if p != nil && p.Allows(perm, target) {
		return true
	}
	h.opts.auth.deny(denyForbidden)
	msg := "forbidden"
	if p != nil {
		msg = forbiddenMessage(p, perm, target)
	}
	writeError(w, http.StatusForbidden, api.ErrorBody{Code: api.CodeForbidden, Message: msg})
	return false
}
