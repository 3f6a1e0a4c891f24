package audit

import (
	"context"
	"fmt"
	"sync"

	"github.com/configd/configd/audit/internal/etcdlog"
	"github.com/configd/configd/audit/internal/tokens"
	"github.com/configd/configd/audit/record"
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
// cluster's tokens changed because of another replica (or etcd came back),
// or was brought up to date because a write's token must be allowed again
// (docs/ha.md, "A revocation racing a write"): whoever keeps the tokens in
// memory reads them again (TokensAndEpoch) before fn returns. It is called
// from the store's goroutines: the one that follows the tokens, and the
// writer, maybe at once.
func WithTokenHook(fn func()) Option { return func(o *options) { o.onTokens = append(o.onTokens, fn) } }

// An Authorization is the token that allowed a write: a replica checks it
// again when it commits the write (WithAuthorization).
type Authorization = record.Authorization

// WithAuthorization returns a copy of ctx whose writes (Commit, Rollback)
// a allowed. A replica (WithEtcd) records such a write only while the
// cluster's token epoch is the one its rights were allowed at, compared in
// the etcd transaction that records it; when a token was revoked or its
// grants changed since, the replica brings its copy of the tokens up to
// date and asks a again (Authorization.Reauthorize): a write its token no
// longer allows fails with a's refusal, and nothing of it is recorded. A
// store on SQLite alone ignores a: its tokens change in this process.
func WithAuthorization(ctx context.Context, a Authorization) context.Context {
	return record.WithAuthorization(ctx, a)
}

// TokensAndEpoch returns every token, as Tokens does, and the token epoch
// of that copy: the etcd revision of the cluster's newest revocation or
// change of grants that the copy holds. A store on SQLite alone has no
// epoch (0).
func (s *Store) TokensAndEpoch(ctx context.Context) ([]Token, int64, error) {
	s.tokenCopy.mu.RLock()
	defer s.tokenCopy.mu.RUnlock()
	ts, err := tokens.List(ctx, s.rdb)
	return ts, s.tokenCopy.epoch, err
}

// tokenCopy is what a replica's copy of the tokens reflects: the etcd
// revision it was read at, and its token epoch. mu orders the copy's
// changes with the reads of its epoch.
type tokenCopy struct {
	mu         sync.RWMutex
	rev, epoch int64
}

// copyTokens makes set the replica's copy of the tokens, unless the copy
// is of a newer read already: reads of etcd that overtake one another do
// not take the copy back.
func (s *Store) copyTokens(ctx context.Context, set etcdlog.TokenSet) error {
	c := &s.tokenCopy
	c.mu.Lock()
	defer c.mu.Unlock()
	if set.Rev < c.rev {
		return nil
	}
	if err := tokens.Replace(ctx, s.wdb, set.Tokens); err != nil {
		return err
	}
	c.rev, c.epoch = set.Rev, set.Epoch
	return nil
}

// tokensChanged brings a replica's copy of the tokens up to date after its
// own change, so that Tokens sees it when the change returns; err is the
// change's outcome.
func (s *Store) tokensChanged(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	set, err := s.elog.Tokens(ctx)
	if err != nil {
		return err
	}
	return s.copyTokens(ctx, set)
}

// mirrorTokens makes set, the tokens the cluster shares, the replica's
// copy, and tells the token hooks.
func (s *Store) mirrorTokens(ctx context.Context, set etcdlog.TokenSet) error {
	if err := s.copyTokens(ctx, set); err != nil {
		return err
	}
	for _, fn := range s.opts.onTokens {
		fn()
	}
	return nil
}

// refreshTokensHook is the writer's commit.Config.RefreshTokens: a
// replica reads the cluster's tokens from etcd, makes them its copy, has
// the token hooks reload them and returns their epoch.
func (s *Store) refreshTokensHook() func(ctx context.Context) (int64, error) {
	if s.elog == nil {
		return nil
	}
	return func(ctx context.Context) (int64, error) {
		set, err := s.elog.Tokens(ctx)
		if err == nil {
			err = s.mirrorTokens(ctx, set)
		}
		if err != nil {
			return 0, fmt.Errorf("audit: read the tokens again to check a write's token: %w", err)
		}
		return set.Epoch, nil
	}
}
