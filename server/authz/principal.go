package authz

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
)

// Principal is an authenticated token: its name, which becomes the actor
// of its writes, and its grants.
type Principal struct {
	Name   string
	Grants []api.Grant

	// hash is the SHA-256 of the token's secret: a web UI session keeps
	// the principal, not the secret, and checks it again by hash.
	hash [sha256.Size]byte
	// auth is the Auth whose tokens p is one of, and epoch the token
	// epoch of the tokens it read p from (audit.Store.TokensAndEpoch):
	// a replica's writer checks p's writes again with them (Reauthorize).
	auth  *Auth
	epoch int64
}

var _ audit.Authorization = (*Principal)(nil)

// TokenEpoch is the token epoch of the tokens p was read from.
func (p *Principal) TokenEpoch() int64 { return p.epoch }

// Reauthorize checks again, on p's Auth's tokens as they are now, that
// p's token may write every target (a key or canonical prefix): a
// replica's writer calls it for a write whose token changed on another
// replica before the write was recorded (audit.WithAuthorization). It
// returns the token epoch of those tokens, or the refusal a door answers
// (401 unauthenticated once the token is revoked, 403 forbidden once its
// grants no longer cover a target), counted as the door's.
func (p *Principal) Reauthorize(targets []string) (int64, error) {
	cur, err := p.auth.Current(p)
	if err != nil {
		return 0, err
	}
	for _, t := range targets {
		if err := p.auth.Check(cur, api.PermissionWrite, t); err != nil {
			return 0, err
		}
	}
	return cur.epoch, nil
}

// TokenHash returns the SHA-256 of p's token's secret: what Auth.Current
// needs to find the token again (the token table in etcd is keyed by it
// already), for a web UI session that other replicas must resolve.
func (p *Principal) TokenHash() [sha256.Size]byte { return p.hash }

// TokenPrincipal returns a principal that knows only its token's name and
// hash (see TokenHash), without grants: give it to Auth.Current for the
// token as it is now.
func TokenPrincipal(name string, hash [sha256.Size]byte) *Principal {
	return &Principal{Name: name, hash: hash}
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx that carries p, the token that
// authenticated its request (Auth.Identity, the gRPC interceptors, the web
// UI's sessions put it there). The request's writes carry p too
// (audit.WithAuthorization), so that a replica records none that a change
// of p's token on another replica took away its right to.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	if p != nil && p.auth != nil {
		ctx = audit.WithAuthorization(ctx, p)
	}
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

// GrantsString lists grants as configctl takes them (write:app/), sorted.
func GrantsString(gs []api.Grant) string {
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
	return fmt.Sprintf("token %q lacks %s on %s; its grants: %s", p.Name, perm, what, GrantsString(p.Grants))
}

// Check returns nil when p has perm on target (a key or a canonical
// prefix, "" for the whole keyspace), else the refusal, counted in
// configd_auth_denied_total: 401 unauthenticated without a principal
// (authentication is on but nothing authenticated the request), 403
// forbidden saying what p lacks.
func (a *Auth) Check(p *Principal, perm, target string) error {
	if p == nil {
		return a.unauthenticated(denyMissing)
	}
	if p.Allows(perm, target) {
		return nil
	}
	a.deny(denyForbidden)
	return apierror.New(api.CodeForbidden, "%s", forbiddenMessage(p, perm, target))
}

// WatchScope narrows a watch of keys and prefixes to what p may read: a
// key it may read, a prefix it may read whole, or else the prefixes of
// p's grants (read or stronger) under it, each key once. A watch left
// with nothing, or with a key or prefix that does not parse while p may
// not read everything, is refused with 403 forbidden (counted); without a
// principal, 401.
func (a *Auth) WatchScope(p *Principal, keys, prefixes []string) (outKeys, outPrefixes []string, err error) {
	if p == nil {
		return nil, nil, a.unauthenticated(denyMissing)
	}
	outKeys, outPrefixes, ok := readableScope(p, keys, prefixes)
	if !ok || len(outKeys)+len(outPrefixes) == 0 {
		a.deny(denyForbidden)
		return nil, nil, apierror.New(api.CodeForbidden,
			"token %s may read none of the keys this watch asks for; its grants: %s", p.Name, GrantsString(p.Grants))
	}
	return outKeys, outPrefixes, nil
}

// readableScope returns the keys and canonical prefixes of a watch that p
// may read (see WatchScope); ok is false when a key or prefix does not
// parse and p may not read everything.
func readableScope(p *Principal, keys, prefixes []string) (outKeys, outPrefixes []string, ok bool) {
	all := p.Allows(api.PermissionRead, "")
	for _, k := range keys {
		if keyspace.Validate(k) != nil {
			if !all {
				return nil, nil, false
			}
			outKeys = append(outKeys, k)
			continue
		}
		if p.Allows(api.PermissionRead, k) {
			outKeys = append(outKeys, k)
		}
	}
	for _, raw := range prefixes {
		c, err := keyspace.Prefix(raw)
		if err != nil {
			if !all {
				return nil, nil, false
			}
			outPrefixes = append(outPrefixes, raw)
			continue
		}
		if p.Allows(api.PermissionRead, c) {
			outPrefixes = append(outPrefixes, c)
			continue
		}
		for _, g := range p.Grants {
			if permRank[g.Permission] >= permRank[api.PermissionRead] && strings.HasPrefix(g.Prefix, c) {
				outPrefixes = append(outPrefixes, g.Prefix)
			}
		}
	}
	slices.Sort(outPrefixes)
	outPrefixes = slices.Compact(outPrefixes)
	// Drop a prefix that another one covers: each key once.
	kept := outPrefixes[:0]
	for _, pf := range outPrefixes {
		if len(kept) > 0 && strings.HasPrefix(pf, kept[len(kept)-1]) {
			continue
		}
		kept = append(kept, pf)
	}
	return outKeys, kept, true
}
