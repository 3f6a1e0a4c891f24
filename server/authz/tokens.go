package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
)

// TokenPrefix starts every token configd generates.
const TokenPrefix = "cfd_"

// BootstrapTokenName names the admin token configd creates when it starts
// with authentication on and no token at all.
const BootstrapTokenName = "admin"

// MinBootstrapTokenLen is the shortest CONFIGD_BOOTSTRAP_TOKEN accepted.
const MinBootstrapTokenLen = 16

// Bootstrap makes sure an admin can get in: when the token table is empty
// it creates the token BootstrapTokenName with admin on every key, whose
// secret is secret or, when secret is empty, a generated one. It returns
// the secret it stored, or "" when the table already had tokens (secret is
// then ignored). from names where secret came from (an environment
// variable), for the error that refuses it (CheckBootstrapSecret).
func (a *Auth) Bootstrap(ctx context.Context, secret, from string) (string, error) {
	a.mu.RLock()
	any := a.any
	a.mu.RUnlock()
	if any {
		return "", nil
	}
	if secret == "" {
		secret = newToken()
	} else if err := CheckBootstrapSecret(secret); err != nil {
		return "", fmt.Errorf("%s: %w", from, err)
	}
	grants := []api.Grant{{Permission: api.PermissionAdmin, Prefix: ""}}
	err := a.store(ctx, BootstrapTokenName, secret, grants)
	if errors.Is(err, audit.ErrTokenExists) {
		// Another replica of the cluster, starting at the same time, made
		// it first.
		return "", a.reload(ctx)
	}
	if err != nil {
		return "", err
	}
	return secret, nil
}

// CheckBootstrapSecret says what is wrong with a bootstrap token given by
// the operator, or returns nil.
func CheckBootstrapSecret(secret string) error {
	if len(secret) < MinBootstrapTokenLen || strings.ContainsFunc(secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("want at least %d characters, without spaces or control characters", MinBootstrapTokenLen)
	}
	return nil
}

// ReadBootstrapTokenFile reads the bootstrap token from the file at path
// (--bootstrap-token-file): its content without surrounding white space,
// checked as a bootstrap token given in the environment is.
func ReadBootstrapTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("bootstrap token file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("bootstrap token file %s is empty", path)
	}
	if err := CheckBootstrapSecret(secret); err != nil {
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
	// The token epoch stays the last read's: a new token takes no right
	// away, and the next reload reads the epoch with the new token.
	a.valid[h] = a.principal(name, grants, h, a.epoch)
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
			// With the last read's token epoch, older than the one
			// the change moved to: on a replica, its writes are allowed
			// again once the tokens are read again (Reauthorize).
			a.valid[h] = a.principal(name, canon, h, a.epoch)
			changed = append(changed, h)
		}
	}
	a.gen.Add(1)
	a.mu.Unlock()
	a.notify(changed)
	return canon, nil
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
