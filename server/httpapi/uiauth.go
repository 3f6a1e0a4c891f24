package httpapi

import (
	"context"
	"fmt"

	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/web"
)

// uiAuth is the web UI's view of an Auth (web.Authenticator): the UI's
// logins, sessions and bearer tokens are checked against the same token
// table as the API, and count in configd_auth_denied_total alike.
type uiAuth struct{ a *authz.Auth }

// uiPrincipal is a Principal as the web UI sees it (web.Principal).
type uiPrincipal struct{ *authz.Principal }

// Name is the token's name.
func (p uiPrincipal) Name() string { return p.Principal.Name }

var _ web.Authenticator = uiAuth{}

// Authenticate checks a token's secret.
func (u uiAuth) Authenticate(secret string) (web.Principal, error) {
	p, err := u.a.Authenticate("Bearer " + secret)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", web.ErrUnauthenticated, err)
	}
	return uiPrincipal{p}, nil
}

// Recheck checks that the token of a session's principal is still valid.
func (u uiAuth) Recheck(wp web.Principal) (web.Principal, error) {
	up, ok := wp.(uiPrincipal)
	if !ok || up.Principal == nil {
		return nil, fmt.Errorf("%w: not a configd principal", web.ErrUnauthenticated)
	}
	p, err := u.a.Current(up.Principal)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", web.ErrUnauthenticated, err)
	}
	return uiPrincipal{p}, nil
}

// WithPrincipal makes the principal the request's identity and actor, as
// Identity does for the API.
func (u uiAuth) WithPrincipal(ctx context.Context, wp web.Principal) context.Context {
	up, ok := wp.(uiPrincipal)
	if !ok {
		return ctx
	}
	return authz.WithActor(authz.WithPrincipal(ctx, up.Principal), up.Principal.Name)
}
