package record

import "context"

// Authorization is the token that allowed a write, as a replica's writer
// checks it again when it commits the write: a token revoked, or its
// grants narrowed, on another replica is known here only once this
// replica's copy of the tokens has it, and a write allowed by the old
// rights must not be recorded after the change was acknowledged
// (docs/ha.md, "A revocation racing a write"). Each copy of the tokens has
// a token epoch, which every revocation and change of grants moves; the
// commit compares it in etcd, in the same transaction that records the
// write. The server implements it (its principal); a store on SQLite
// alone checks nothing of it.
type Authorization interface {
	// TokenEpoch is the token epoch of the rights that allowed the write.
	TokenEpoch() int64
	// Reauthorize decides again, on the newest rights this replica knows,
	// whether the token may make a write that reaches targets (the keys
	// it writes, or a rollback's scope: a key or canonical prefix, ""
	// for every key). It returns the token epoch of those rights, or the
	// error that refuses the write, as its door answers a request made
	// with such a token.
	Reauthorize(targets []string) (epoch int64, err error)
}

type authorizationKey struct{}

// WithAuthorization returns a copy of ctx whose writes (Commit, Rollback)
// were allowed by a.
func WithAuthorization(ctx context.Context, a Authorization) context.Context {
	return context.WithValue(ctx, authorizationKey{}, a)
}

// AuthorizationFrom returns the Authorization of ctx's writes, or nil.
func AuthorizationFrom(ctx context.Context) Authorization {
	a, _ := ctx.Value(authorizationKey{}).(Authorization)
	return a
}
