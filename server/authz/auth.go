// Package authz says who a request comes from and what it may do, the
// same way for every door of configd (the HTTP API, the web UI, the gRPC
// API): bearer tokens and the principals they authenticate, their grants,
// the per-identity limits (rate and open watches), and the rules an open
// watch keeps for as long as it is open. Its core is protocol-neutral: a
// refusal is an *apierror.Error (401 unauthenticated, 403 forbidden, 429
// rate_limited or too_many_watches), which each door turns into its own
// answer. Beside it sit the thin adapters of the two protocols: HTTP
// middleware (Auth.Identity, HeaderIdentity, Limits.Middleware) and gRPC
// interceptors (ServerOptions).
package authz

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
)

// Reasons of configd_auth_denied_total.
const (
	denyMissing   = "missing_token"
	denyUnknown   = "unknown_token"
	denyRevoked   = "revoked_token"
	denyForbidden = "forbidden"
)

// TokenStore is where the tokens are kept: audit.Store.
type TokenStore interface {
	Tokens(ctx context.Context) ([]audit.Token, error)
	TokensAndEpoch(ctx context.Context) ([]audit.Token, int64, error)
	CreateToken(ctx context.Context, t audit.Token) error
	RevokeToken(ctx context.Context, name string) error
	SetTokenGrants(ctx context.Context, name string, grants []audit.Grant) error
}

var _ TokenStore = (*audit.Store)(nil)

// Auth authenticates requests by bearer token and says what each token may
// do. It keeps the valid tokens' hashes in memory, loaded from the store
// by NewAuth and updated by CreateToken and RevokeToken: every change to
// the token table must go through the same Auth. It is safe for concurrent
// use.
type Auth struct {
	st     TokenStore
	denied *prometheus.CounterVec

	reloadMu sync.Mutex // one reload at a time: they read the store in turn
	mu       sync.RWMutex
	valid    map[[sha256.Size]byte]*Principal
	revoked  map[[sha256.Size]byte]bool
	any      bool  // the table has a token, revoked or not
	epoch    int64 // the token epoch of the tokens last read (TokensAndEpoch)

	// gen counts the changes to valid tokens' rights (revocations, new
	// grants): an open watch checks its token again only when it moved
	// (see tokenGate). Written under mu.
	gen atomic.Uint64
	// subs are the open watches of each token, called back when its
	// rights change.
	subsMu sync.Mutex
	subs   map[[sha256.Size]byte]map[*func()]struct{}
}

// New loads the tokens of st.
func New(ctx context.Context, st TokenStore) (*Auth, error) {
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
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	ts, epoch, err := a.st.TokensAndEpoch(ctx)
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
		valid[h] = a.principal(t.Name, apiGrants(t.Grants), h, epoch)
	}
	a.mu.Lock()
	a.epoch = epoch
	var changed [][sha256.Size]byte
	for h, p := range a.valid {
		if q := valid[h]; q == nil || !slices.Equal(q.Grants, p.Grants) {
			changed = append(changed, h)
		}
	}
	a.valid, a.revoked, a.any = valid, revoked, len(ts) > 0
	a.gen.Add(1)
	a.mu.Unlock()
	a.notify(changed)
	return nil
}

// principal returns the principal of a valid token of a's, read from
// tokens of token epoch epoch.
func (a *Auth) principal(name string, grants []api.Grant, hash [sha256.Size]byte, epoch int64) *Principal {
	return &Principal{Name: name, Grants: grants, hash: hash, auth: a, epoch: epoch}
}

// Reload reads the tokens from the store again, and ends the open watches
// of the tokens revoked or narrowed since: the tokens of a replica of a
// configd cluster change on other replicas too (see TokenHook).
func (a *Auth) Reload(ctx context.Context) error { return a.reload(ctx) }

// TokenHook keeps an Auth up to date with a store whose tokens change
// outside it: a replica's, which hears of the other replicas' changes
// (audit.WithTokenHook(h.Changed)). The hook exists before the store
// opens and the Auth after; Attach joins them.
type TokenHook struct {
	mu     sync.Mutex
	ctx    context.Context
	a      *Auth
	logger *slog.Logger
}

// Attach makes h reload a from now on, and reloads it once, for a change
// that came between a's first load and now. A nil a (authentication off)
// leaves h doing nothing.
func (h *TokenHook) Attach(ctx context.Context, a *Auth, logger *slog.Logger) {
	h.mu.Lock()
	h.ctx, h.a, h.logger = context.WithoutCancel(ctx), a, logger
	h.mu.Unlock()
	h.Changed()
}

// Changed reloads the attached Auth's tokens.
func (h *TokenHook) Changed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.a == nil {
		return
	}
	if err := h.a.Reload(h.ctx); err != nil {
		h.logger.Error("reload the tokens another replica changed", "err", err)
	}
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

// unauthenticated counts a request refused for reason and returns its 401.
func (a *Auth) unauthenticated(reason string) *apierror.Error {
	a.deny(reason)
	return apierror.New(api.CodeUnauthenticated, "%s", unauthenticatedMessage(reason))
}

// Authenticate returns the principal of an Authorization value ("Bearer
// cfd_..."), or the 401 unauthenticated that refuses it, counted in
// configd_auth_denied_total.
func (a *Auth) Authenticate(authorization string) (*Principal, error) {
	p, reason := a.authenticate(authorization)
	if p == nil {
		return nil, a.unauthenticated(reason)
	}
	return p, nil
}

// Current returns p as its token is now (its grants may have changed), or
// the 401 unauthenticated, counted, once the token is revoked.
func (a *Auth) Current(p *Principal) (*Principal, error) {
	cur, reason := a.current(p)
	if cur == nil {
		return nil, a.unauthenticated(reason)
	}
	return cur, nil
}

// Collector is configd_auth_denied_total, for a Prometheus registry.
func (a *Auth) Collector() prometheus.Collector { return a.denied }

// unauthenticatedMessage says why a request had no valid token and how to
// send one.
func unauthenticatedMessage(reason string) string {
	switch reason {
	case denyRevoked:
		return "the bearer token has been revoked"
	case denyUnknown:
		return "the bearer token is not known to configd"
	}
	return "authentication required: send a token as 'Authorization: Bearer <token>' (configctl --token or " + api.EnvToken + ")"
}
