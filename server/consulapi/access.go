package consulapi

import (
	"net/http"
	"strings"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/authz"
)

// consulToken is the Consul token of r: X-Consul-Token, else an
// Authorization bearer token, else ?token= (the three ways Consul's
// clients send one).
func consulToken(r *http.Request) string {
	if t := r.Header.Get("X-Consul-Token"); t != "" {
		return t
	}
	if a := r.Header.Get(api.HeaderAuthorization); a != "" {
		if t, ok := strings.CutPrefix(a, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return r.URL.Query().Get("token")
}

// identity is the door's identity middleware, then the limits the doors
// share. With authentication on, the request's Consul token is a configd
// token (authz.Auth.Authenticate), whose name is the actor of its writes;
// without a valid one it is refused with 403, as Consul refuses an
// unknown token. With it off, the actor is consul-api@ADDRESS, the
// client's IP address.
func (h *handler) identity(next http.HandlerFunc) http.Handler {
	inner := h.opts.limits.Middleware(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if h.opts.auth == nil {
			ctx = authz.WithActor(ctx, Origin+"@"+authz.RemoteIP(r))
		} else {
			tok := consulToken(r)
			if tok == "" {
				writeText(w, http.StatusForbidden, "Permission denied: configd's Consul API needs a configd token "+
					"(X-Consul-Token, CONSUL_HTTP_TOKEN); the anonymous token has no rights")
				return
			}
			p, err := h.opts.auth.Authenticate("Bearer " + tok)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			ctx = authz.WithActor(authz.WithPrincipal(ctx, p), p.Name)
		}
		inner.ServeHTTP(w, r.WithContext(ctx))
	})
}

// check returns nil when the request's token has perm on target (a key or
// a Consul prefix, a plain string prefix: a grant on G covers it when it
// starts with G); authentication off, always nil.
func (h *handler) check(r *http.Request, perm, target string) error {
	if h.opts.auth == nil {
		return nil
	}
	return h.opts.auth.Check(authz.PrincipalFrom(r.Context()), perm, target)
}

// mayRead reports whether the request's token may read key: a listing
// leaves out the keys it may not, as Consul filters by ACL.
func (h *handler) mayRead(r *http.Request, key string) bool {
	p := authz.PrincipalFrom(r.Context())
	return h.opts.auth == nil || p != nil && p.Allows(api.PermissionRead, key)
}

// listPrefix is the configd prefix to list for Consul's prefix p, a plain
// string prefix ("app/d" reaches app/db and app/dx): the canonical prefix
// of its segments up to its last '/' ("" for the whole keyspace), whose
// keys the caller then filters by p.
func listPrefix(p string) (string, error) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", nil
	}
	return keyspace.Prefix(p[:i+1])
}
