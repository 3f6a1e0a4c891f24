package policy

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/configd/configd/sdk/go/micro/status"
)

// Authenticate answers 401, with WWW-Authenticate (RFC 6750) and a JSON error, a request
// without a valid bearer token: none, a bad signature, expired, not valid yet, from another
// issuer, for another audience. A path of JWT.Public needs none. Without JWT keys it lets
// every request through.
func (p *Policy) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, w, r := p.begin(w, r, r.Context())
		v := x.c.jwt
		if v == nil {
			next.ServeHTTP(w, r)
			return
		}
		if _, public := v.public.match(r); public {
			next.ServeHTTP(w, r)
			return
		}
		claims, err := v.verify(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", challenge(err))
			x.refuse(w, http.StatusUnauthorized, tokenProblem(err))
			return
		}
		x.claims = claims
		next.ServeHTTP(w, r)
	})
}

// Authorize applies the access rules: 403 for a denied request, or one whose token lacks a
// claim or scope its rule requires (401 when it has no token at all).
func (p *Policy) Authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, w, r := p.begin(w, r, r.Context())
		if a := x.c.access; a != nil {
			if code, msg := a.check(r, x.claims); code != 0 {
				if code == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", challenge(errNoToken))
				}
				x.refuse(w, code, msg)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// RateLimit applies the rate limits: the client's, then the route's. A request waits for its
// turn up to the limit's Wait, or is answered 429 with Retry-After.
func (p *Policy) RateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, w, r := p.begin(w, r, r.Context())
		if l := x.c.limits; l != nil {
			if l.clients != nil {
				if d, err := l.clients.get(x.client(r)).take(r.Context()); err != nil {
					x.limited(w, "rate limited: too many requests from this client", d)
					return
				}
			}
			if b, ok := l.routes.match(r); ok {
				if d, err := b.take(r.Context()); err != nil {
					x.limited(w, "rate limited: too many requests to this route", d)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers the request with an error of the policy.
func (x *exchange) refuse(w http.ResponseWriter, code int, msg string) {
	x.refused = true
	status.WriteHTTP(w, code, &status.Error{Code: status.Code(code), Message: msg})
}

// limited answers 429, with the seconds until a token is free (at least 1) in Retry-After.
func (x *exchange) limited(w http.ResponseWriter, msg string, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
	x.refuse(w, http.StatusTooManyRequests, msg)
}
