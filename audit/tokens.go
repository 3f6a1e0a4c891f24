package audit

import (
	"context"

	"github.com/configd/configd/audit/internal/tokens"
)

// ErrTokenExists: a token that is not revoked already has this name.
var ErrTokenExists = tokens.ErrExists

// Grant is one right of a token: Permission ("read", "write" or "admin")
// on the keys under Prefix ("" is every key). The store keeps grants as
// given; what they allow is the server's business.
type Grant = tokens.Grant

// Token is a stored bearer token: its name, the SHA-256 hash of its secret
// (the secret itself is never stored) and its grants.
type Token = tokens.Token

// CreateToken stores a new token. It fails with ErrTokenExists when a valid
// token already has t's name. A replica (WithEtcd) shares it with the
// cluster through etcd, whose answer it waits for (ErrStoreUnavailable),
// and has it in its own copy when it returns.
func (s *Store) CreateToken(ctx context.Context, t Token) error {
	if s.elog == nil {
		return tokens.Create(ctx, s.wdb, t)
	}
	t, err := tokens.Prepare(t, s.opts.now())
	if err == nil {
		err = s.elog.CreateToken(ctx, t)
	}
	return s.tokensChanged(ctx, err)
}

// RevokeToken marks the valid token named name as revoked. It fails with
// ErrNotFound when no valid token has that name.
func (s *Store) RevokeToken(ctx context.Context, name string) error {
	if s.elog == nil {
		return tokens.Revoke(ctx, s.wdb, name)
	}
	now := s.opts.now()
	return s.tokensChanged(ctx, s.elog.UpdateToken(ctx, name, true, func(t *Token) { t.RevokedAt = now }))
}

// Tokens returns every token, the revoked ones included, by name then
// creation time. A replica answers from its copy of the cluster's tokens,
// also when etcd does not answer.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) { return tokens.List(ctx, s.rdb) }

// SetTokenGrants replaces the grants of the valid token named name. It
// fails with ErrNotFound when no valid token has that name.
func (s *Store) SetTokenGrants(ctx context.Context, name string, grants []Grant) error {
	if s.elog == nil {
		return tokens.SetGrants(ctx, s.wdb, name, grants)
	}
	return s.tokensChanged(ctx, s.elog.UpdateToken(ctx, name, false, func(t *Token) { t.Grants = grants }))
}

// WithTokenHook registers fn to be called when a replica's copy of the
// cluster's tokens changed because of another replica (or etcd came back):
// whoever keeps the tokens in memory reads them again (Tokens). It is
// called from a goroutine of the store's, one call at a time.
func WithTokenHook(fn func()) Option { return func(o *options) { o.onTokens = append(o.onTokens, fn) } }

// tokensChanged brings a replica's copy of the tokens up to date after its
// own change, so that Tokens sees it when the change returns; err is the
// change's outcome.
func (s *Store) tokensChanged(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	ts, _, err := s.elog.Tokens(ctx)
	if err != nil {
		return err
	}
	return tokens.Replace(ctx, s.wdb, ts)
}

// mirrorTokens replaces a replica's copy of the tokens with ts, those the
// cluster shares, and tells the token hooks.
func (s *Store) mirrorTokens(ctx context.Context, ts []Token) error {
	if err := tokens.Replace(ctx, s.wdb, ts); err != nil {
		return err
	}
	for _, fn := range s.opts.onTokens {
		fn()
	}
	return nil
}
