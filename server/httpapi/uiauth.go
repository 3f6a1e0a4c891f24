package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// WithUISessions keeps the web UI's login sessions in t instead of the
// handler's memory: a replica gives the table its cluster shares, so that
// a session opened on one replica works on all (package uisessions, with
// UIPrincipalCodec).
func WithUISessions(t web.SessionTable) Option { return func(o *options) { o.uiSessions = t } }

// UIPrincipalCodec turns the web UI's principals into what a shared
// session table keeps, and back: the token's name and the SHA-256 of its
// secret (what Recheck needs, and what the token table is keyed by
// already), never the secret. A decoded principal has no grants until
// Recheck finds its token.
type UIPrincipalCodec struct{}

type uiPrincipalRecord struct {
	Name      string `json:"name"`
	TokenHash string `json:"token_hash"`
}

// Encode returns p's record.
func (UIPrincipalCodec) Encode(wp web.Principal) ([]byte, error) {
	up, ok := wp.(uiPrincipal)
	if !ok || up.Principal == nil {
		return nil, fmt.Errorf("%T is not a configd principal", wp)
	}
	h := up.TokenHash()
	return json.Marshal(uiPrincipalRecord{Name: up.Principal.Name, TokenHash: hex.EncodeToString(h[:])})
}

// Decode returns the principal of a record that Encode made.
func (UIPrincipalCodec) Decode(b []byte) (web.Principal, error) {
	var rec uiPrincipalRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode a UI session's principal: %w", err)
	}
	raw, err := hex.DecodeString(rec.TokenHash)
	if err != nil || len(raw) != sha256.Size {
		return nil, fmt.Errorf("decode a UI session's principal: token_hash %q is not a SHA-256", rec.TokenHash)
	}
	return uiPrincipal{authz.TokenPrincipal(rec.Name, [sha256.Size]byte(raw))}, nil
}
