package authz

import (
	"context"
	"net"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/apierror"
)

// MaxActorLen is the longest actor name, in bytes, that HeaderIdentity
// accepts.
const MaxActorLen = 256

type actorKey struct{}

// WithActor returns a copy of ctx that carries actor: the identity that
// handlers record as the author of the request's writes. An identity
// middleware (HeaderIdentity, Auth.Identity) calls it.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor that an identity middleware put in ctx, or ""
// when there is none. Handlers read the actor only from here.
func ActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// HeaderIdentity is the default identity middleware. It trusts the
// X-Configd-Actor header as the actor; without it the actor is
// "anonymous@" followed by the client's IP address. It authenticates
// nobody: it only records who a client says it is; with authentication
// on, Auth.Identity takes its place.
//
// An actor that is longer than MaxActorLen, not UTF-8 or holds control
// characters is refused with 400 bad_request.
func HeaderIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor := r.Header.Get(api.HeaderActor)
		if actor == "" {
			actor = "anonymous@" + RemoteIP(r)
		} else if msg := checkActor("header "+api.HeaderActor, actor); msg != "" {
			apierror.Write(w, api.ErrorBody{Code: api.CodeBadRequest, Message: msg})
			return
		}
		next.ServeHTTP(w, r.WithContext(WithActor(r.Context(), actor)))
	})
}

// checkActor says what is wrong with actor a, claimed in field (the HTTP
// header or the gRPC metadata), or "" when nothing is.
func checkActor(field, a string) string {
	if len(a) > MaxActorLen {
		return field + " is longer than 256 bytes"
	}
	if !utf8.ValidString(a) {
		return field + " is not valid UTF-8"
	}
	for _, r := range a {
		if unicode.IsControl(r) {
			return field + " contains a control character"
		}
	}
	return ""
}

// RemoteIP is the IP address of r's client.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Identity is the HTTP identity middleware of authentication: a request without a valid bearer token is answered 401
// unauthenticated; otherwise the token's name is the actor. The
// X-Configd-Actor header is honoured only from a token with admin on every
// key, which may act on someone's behalf; other tokens' headers are
// ignored.
func (a *Auth) Identity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r.Header.Get(api.HeaderAuthorization))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="configd"`)
			apierror.WriteError(w, err)
			return
		}
		actor := p.Name
		if claim := r.Header.Get(api.HeaderActor); claim != "" && p.Allows(api.PermissionAdmin, "") {
			if msg := checkActor("header "+api.HeaderActor, claim); msg != "" {
				apierror.Write(w, api.ErrorBody{Code: api.CodeBadRequest, Message: msg})
				return
			}
			actor = claim
		}
		ctx := WithActor(WithPrincipal(r.Context(), p), actor)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
