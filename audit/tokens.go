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
// token already has t's name.
func (s *Store) CreateToken(ctx context.Context, t Token) error { return tokens.Create(ctx, s.wdb, t) }

// RevokeToken marks the valid token named name as revoked. It fails with
// ErrNotFound when no valid token has that name.
func (s *Store) RevokeToken(ctx context.Context, name string) error {
	return tokens.Revoke(ctx, s.wdb, name)
}

// Tokens returns every token, the revoked ones included, by name then
// creation time.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) { return tokens.List(ctx, s.rdb) }

// SetTokenGrants replaces the grants of the valid token named name. It
// fails with ErrNotFound when no valid token has that name.
func (s *Store) SetTokenGrants(ctx context.Context, name string, grants []Grant) error {
	return tokens.SetGrants(ctx, s.wdb, name, grants)
}
