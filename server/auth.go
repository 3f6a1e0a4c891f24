package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/web"
)

// TokenPrefix starts every token configd generates.
const TokenPrefix = "cfd_"

// BootstrapTokenName names the admin token configd creates when it starts
// with authentication on and no token at all.
const BootstrapTokenName = "admin"

// MinBootstrapTokenLen is the shortest CONFIGD_BOOTSTRAP_TOKEN accepted.
const MinBootstrapTokenLen = 16

// Reasons of configd_auth_denied_total.
const (
	denyMissing   = "missing_token"
	denyUnknown   = "unknown_token"
	denyRevoked   = "revoked_token"
	denyForbidden = "forbidden"
)

// Auth authenticates requests by bearer token and says what each token may
// do. It keeps the valid tokens' hashes in memory, loaded from the store
// by NewAuth and updated by CreateToken and RevokeToken: every change to
// the token table must go through the same Auth. It is safe for concurrent
// use.
type Auth struct {
	st     *audit.Store
	denied *prometheus.CounterVec

	mu      sync.RWMutex
	valid   map[[sha256.Size]byte]*Principal
	revoked map[[sha256.Size]byte]bool
	any     bool // the table has a token, revoked or not

	// gen counts the changes to valid tokens' rights (revocations, new
	// grants): an open watch checks its token again only when it moved
	// (see tokenGate). Written under mu.
	gen atomic.Uint64
	// subs are the open watches of each token, called back when its
	// rights change.
	subsMu sync.Mutex
	subs   map[[sha256.Size]byte]map[*func()]struct{}
}

// Principal is an authenticated token: its name, which becomes the actor
// of its writes, and its grants.
type Principal struct {
	Name   string
	Grants []api.Grant

	// hash is the SHA-256 of the token's secret: a web UI session keeps
	// the principal, not the secret, and checks it again by hash.
	hash [sha256.Size]byte
}

// NewAuth loads the tokens of st.
func NewAuth(ctx context.Context, st *audit.Store) (*Auth, error) {
	a := &Auth{st: st, denied: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "configd_auth_denied_total",
		Help: "Requests refused by authentication (missing, unknown or revoked token) or authorisation (forbidden).",
	}, []string{"reason"}), subs: map[[sha256.Size]byte]map[*func()]struct{}{}}
	a.gen.Store(1)
	for _, r := range []string{denyMissing, denyUnknown, denyRevoked, denyForbidden} {
		a.denied.WithLabelValues(r)
	}
	if err := a.reload(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Auth) reload(ctx context.Context) error {
	ts, err := a.st.Tokens(ctx)
	if err != nil {
		return err
	}
	valid := make(map[[sha256.Size]byte]*Principal, len(ts))
	revoked := map[[sha256.Size]byte]bool{}
	for _, t := range ts {
		var h [sha256.Size]byte
		copy(h[:], t.Hash)
		if !t.RevokedAt.IsZero() {
			revoked[h] = true
			continue
		}
		valid[h] = &Principal{Name: t.Name, Grants: apiGrants(t.Grants), hash: h}
	}
	a.mu.Lock()
	a.valid, a.revoked, a.any = valid, revoked, len(ts) > 0
	a.gen.Add(1)
	a.mu.Unlock()
	return nil
}

// Bootstrap makes sure an admin can get in: when the token table is empty
// it creates the token BootstrapTokenName with admin on every key, whose
// secret is secret or, when secret is empty, a generated one. It returns
// the secret it stored, or "" when the table already had tokens (secret is
// then ignored).
func (a *Auth) Bootstrap(ctx context.Context, secret string) (string, error) {
	a.mu.RLock()
	any := a.any
	a.mu.RUnlock()
	if any {
		return "", nil
	}
	if secret == "" {
		secret = newToken()
	} else if err := checkBootstrapSecret(secret); err != nil {
		return "", fmt.Errorf("%sBOOTSTRAP_TOKEN: %w", EnvPrefix, err)
	}
	grants := []api.Grant{{Permission: api.PermissionAdmin, Prefix: ""}}
	if err := a.store(ctx, BootstrapTokenName, secret, grants); err != nil {
		return "", err
	}
	return secret, nil
}

// checkBootstrapSecret says what is wrong with a bootstrap token given by
// the operator.
func checkBootstrapSecret(secret string) error {
	if len(secret) < MinBootstrapTokenLen || strings.ContainsFunc(secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("want at least %d characters, without spaces or control characters", MinBootstrapTokenLen)
	}
	return nil
}

// ReadBootstrapTokenFile reads the bootstrap token from the file at path
// (--bootstrap-token-file): its content without surrounding white space,
// checked as CONFIGD_BOOTSTRAP_TOKEN is.
func ReadBootstrapTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("bootstrap token file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("bootstrap token file %s is empty", path)
	}
	if err := checkBootstrapSecret(secret); err != nil {
		return "", fmt.Errorf("bootstrap token file %s: %w", path, err)
	}
	return secret, nil
}

// CreateToken creates a token named name with grants and returns its
// secret, which is stored only as a hash. Grants are checked and their
// prefixes made canonical ("app" is "app/").
func (a *Auth) CreateToken(ctx context.Context, name string, grants []api.Grant) (string, []api.Grant, error) {
	if err := checkTokenName(name); err != nil {
		return "", nil, err
	}
	canon, err := canonicalGrants(grants)
	if err != nil {
		return "", nil, err
	}
	secret := newToken()
	if err := a.store(ctx, name, secret, canon); err != nil {
		if errors.Is(err, audit.ErrTokenExists) {
			return "", nil, apierror.New(api.CodeConflict, "a token named %q exists; revoke it first or choose another name", name)
		}
		return "", nil, err
	}
	return secret, canon, nil
}

func (a *Auth) store(ctx context.Context, name, secret string, grants []api.Grant) error {
	h := sha256.Sum256([]byte(secret))
	gs := make([]audit.Grant, len(grants))
	for i, g := range grants {
		gs[i] = audit.Grant{Permission: g.Permission, Prefix: g.Prefix}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.st.CreateToken(ctx, audit.Token{Name: name, Hash: h[:], Grants: gs}); err != nil {
		return err
	}
	a.valid[h] = &Principal{Name: name, Grants: grants, hash: h}
	a.any = true
	return nil
}

// RevokeToken revokes the valid token named name: requests that carry it
// are refused from now on, and its open watches end (see tokenGate).
func (a *Auth) RevokeToken(ctx context.Context, name string) error {
	a.mu.Lock()
	if err := a.st.RevokeToken(ctx, name); err != nil {
		a.mu.Unlock()
		if errors.Is(err, audit.ErrNotFound) {
			return apierror.New(api.CodeNotFound, "no valid token named %q", name)
		}
		return err
	}
	var changed [][sha256.Size]byte
	for h, p := range a.valid {
		if p.Name == name {
			delete(a.valid, h)
			a.revoked[h] = true
			changed = append(changed, h)
		}
	}
	a.gen.Add(1)
	a.mu.Unlock()
	a.notify(changed)
	return nil
}

// SetGrants replaces the grants of the valid token named name. Requests
// are checked against the new grants from now on, and the token's open
// watches end if they reach a key it may no longer read.
func (a *Auth) SetGrants(ctx context.Context, name string, grants []api.Grant) ([]api.Grant, error) {
	canon, err := canonicalGrants(grants)
	if err != nil {
		return nil, err
	}
	gs := make([]audit.Grant, len(canon))
	for i, g := range canon {
		gs[i] = audit.Grant{Permission: g.Permission, Prefix: g.Prefix}
	}
	a.mu.Lock()
	if err := a.st.SetTokenGrants(ctx, name, gs); err != nil {
		a.mu.Unlock()
		if errors.Is(err, audit.ErrNotFound) {
			return nil, apierror.New(api.CodeNotFound, "no valid token named %q", name)
		}
		return nil, err
	}
	var changed [][sha256.Size]byte
	for h, p := range a.valid {
		if p.Name == name {
			a.valid[h] = &Principal{Name: name, Grants: canon, hash: h}
			changed = append(changed, h)
		}
	}
	a.gen.Add(1)
	a.mu.Unlock()
	a.notify(changed)
	return canon, nil
}

// subscribe calls fn each time the rights of p's token change, until the
// returned function is called. fn must return at once.
func (a *Auth) subscribe(p *Principal, fn func()) (unsubscribe func()) {
	key := &fn
	a.subsMu.Lock()
	m := a.subs[p.hash]
	if m == nil {
		m = map[*func()]struct{}{}
		a.subs[p.hash] = m
	}
	m[key] = struct{}{}
	a.subsMu.Unlock()
	return func() {
		a.subsMu.Lock()
		defer a.subsMu.Unlock()
		if m := a.subs[p.hash]; m != nil {
			delete(m, key)
			if len(m) == 0 {
				delete(a.subs, p.hash)
			}
		}
	}
}

// notify calls back the open watches of the tokens whose hashes changed.
func (a *Auth) notify(hashes [][sha256.Size]byte) {
	var fns []func()
	a.subsMu.Lock()
	for _, h := range hashes {
		for fn := range a.subs[h] {
			fns = append(fns, *fn)
		}
	}
	a.subsMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Tokens lists every token, revoked ones included, without secrets.
func (a *Auth) Tokens(ctx context.Context) ([]api.TokenInfo, error) {
	ts, err := a.st.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.TokenInfo, len(ts))
	for i, t := range ts {
		out[i] = api.TokenInfo{Name: t.Name, Grants: apiGrants(t.Grants), CreatedAt: t.CreatedAt}
		if !t.RevokedAt.IsZero() {
			r := t.RevokedAt
			out[i].RevokedAt = &r
		}
	}
	return out, nil
}

// authenticate finds the token of an Authorization value ("Bearer
// cfd_..."); on failure it returns the reason, for the metric and the
// message.
func (a *Auth) authenticate(authorization string) (*Principal, string) {
	scheme, secret, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(secret) == "" {
		return nil, denyMissing
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	a.mu.RLock()
	defer a.mu.RUnlock()
	if p, ok := a.valid[h]; ok {
		return p, ""
	}
	if a.revoked[h] {
		return nil, denyRevoked
	}
	return nil, denyUnknown
}

// current returns the principal of p's token if the token is still valid;
// else nil and the reason.
func (a *Auth) current(p *Principal) (*Principal, string) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if cur, ok := a.valid[p.hash]; ok {
		return cur, ""
	}
	if a.revoked[p.hash] {
		return nil, denyRevoked
	}
	return nil, denyUnknown
}

func (a *Auth) deny(reason string) { a.denied.WithLabelValues(reason).Inc() }

// unauthenticatedMessage says why a request had no valid token and how to
// send one.
func unauthenticatedMessage(reason string) string {
	switch reason {
	case denyRevoked:
		return "the bearer token has been revoked"
	case denyUnknown:
		return "the bearer token is not known to configd"
	}
	return "authentication required: send a token as 'Authorization: Bearer <token>' (configctl --token or " + EnvPrefix + "TOKEN)"
}

// Identity is the identity middleware of authentication (see
// WithIdentity): a request without a valid bearer token is answered 401
// unauthenticated; otherwise the token's name is the actor. The
// X-Configd-Actor header is honoured only from a token with admin on every
// key, which may act on someone's behalf; other tokens' headers are
// ignored.
func (a *Auth) Identity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, reason := a.authenticate(r.Header.Get(api.HeaderAuthorization))
		if p == nil {
			a.deny(reason)
			w.Header().Set("WWW-Authenticate", `Bearer realm="configd"`)
			writeError(w, api.ErrorBody{Code: api.CodeUnauthenticated, Message: unauthenticatedMessage(reason)})
			return
		}
		actor := p.Name
		if claim := r.Header.Get(api.HeaderActor); claim != "" && p.Allows(api.PermissionAdmin, "") {
			if msg := checkActor(claim); msg != "" {
				writeError(w, api.ErrorBody{Code: api.CodeBadRequest, Message: msg})
				return
			}
			actor = claim
		}
		ctx := WithActor(withPrincipal(r.Context(), p), actor)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the token that authenticated the request of ctx,
// or nil when authentication is off.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

var permRank = map[string]int{api.PermissionRead: 1, api.PermissionWrite: 2, api.PermissionAdmin: 3}

// Allows reports whether p has perm (or a stronger permission) on target,
// a key or a canonical prefix: a grant on prefix G covers every target
// that starts with G, so only a grant on "" covers the whole keyspace "".
func (p *Principal) Allows(perm, target string) bool {
	need := permRank[perm]
	for _, g := range p.Grants {
		if permRank[g.Permission] >= need && strings.HasPrefix(target, g.Prefix) {
			return true
		}
	}
	return false
}

// grantsString lists p's grants as configctl takes them (write:app/).
func (p *Principal) grantsString() string { return grantsString(p.Grants) }

// grantsString lists grants as configctl takes them (write:app/), sorted.
func grantsString(gs []api.Grant) string {
	s := make([]string, len(gs))
	for i, g := range gs {
		s[i] = g.Permission + ":" + g.Prefix
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// forbiddenMessage says what p lacked.
func forbiddenMessage(p *Principal, perm, target string) string {
	what := fmt.Sprintf("key or prefix %q", target)
	if target == "" {
		what = "every key (the whole keyspace)"
	}
	return fmt.Sprintf("token %q lacks %s on %s; its grants: %s", p.Name, perm, what, p.grantsString())
}

// canonicalGrants checks a token's grants (at least one) and makes their
// prefixes canonical ("app" is "app/").
func canonicalGrants(grants []api.Grant) ([]api.Grant, error) {
	if len(grants) == 0 {
		return nil, apierror.BadRequest("a token needs at least one grant (permission read, write or admin on a prefix)")
	}
	canon := make([]api.Grant, len(grants))
	for i, g := range grants {
		c, err := canonicalGrant(g)
		if err != nil {
			return nil, apierror.BadRequest("grants[%d]: %v", i, err)
		}
		canon[i] = c
	}
	return canon, nil
}

func canonicalGrant(g api.Grant) (api.Grant, error) {
	if _, ok := permRank[g.Permission]; !ok {
		return g, fmt.Errorf("permission %q: want read, write or admin", g.Permission)
	}
	p, err := keyspace.Prefix(g.Prefix)
	if err != nil {
		return g, err
	}
	return api.Grant{Permission: g.Permission, Prefix: p}, nil
}

func apiGrants(gs []audit.Grant) []api.Grant {
	out := make([]api.Grant, len(gs))
	for i, g := range gs {
		out[i] = api.Grant{Permission: g.Permission, Prefix: g.Prefix}
	}
	return out
}

// MaxTokenNameLen is the longest token name.
const MaxTokenNameLen = 64

func checkTokenName(name string) error {
	if name == "" || len(name) > MaxTokenNameLen {
		return apierror.BadRequest("token name %q: want 1 to %d characters", name, MaxTokenNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r)) {
			return apierror.BadRequest("token name %q: use letters, digits and - _ . @", name)
		}
	}
	return nil
}

// newToken returns a fresh secret: TokenPrefix and 32 random bytes in
// base64url.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// uiAuth is the web UI's view of an Auth (web.Authenticator): the UI's
// logins, sessions and bearer tokens are checked against the same token
// table as the API, and count in configd_auth_denied_total alike.
type uiAuth struct{ a *Auth }

// uiPrincipal is a Principal as the web UI sees it (web.Principal).
type uiPrincipal struct{ *Principal }

// Name is the token's name.
func (p uiPrincipal) Name() string { return p.Principal.Name }

var _ web.Authenticator = uiAuth{}

// Authenticate checks a token's secret.
func (u uiAuth) Authenticate(secret string) (web.Principal, error) {
	p, reason := u.a.authenticate("Bearer " + secret)
	if p == nil {
		u.a.deny(reason)
		return nil, fmt.Errorf("%w: %s", web.ErrUnauthenticated, unauthenticatedMessage(reason))
	}
	return uiPrincipal{p}, nil
}

// Recheck checks that the token of a session's principal is still valid.
func (u uiAuth) Recheck(wp web.Principal) (web.Principal, error) {
	up, ok := wp.(uiPrincipal)
	if !ok || up.Principal == nil {
		return nil, fmt.Errorf("%w: not a configd principal", web.ErrUnauthenticated)
	}
	p, reason := u.a.current(up.Principal)
	if p == nil {
		u.a.deny(reason)
		return nil, fmt.Errorf("%w: %s", web.ErrUnauthenticated, unauthenticatedMessage(reason))
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
	return WithActor(withPrincipal(ctx, up.Principal), up.Principal.Name)
}
