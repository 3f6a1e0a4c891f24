package etcdlog

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit/internal/tokens"
)

// The API's tokens are shared through etcd, so that a token works on every
// replica: P/tokens/<hex of the token's hash> holds a token (its name,
// hash, grants, creation and revocation times), and P/tokennames/<name>
// the hash of the valid token that has the name, which keeps a name to one
// valid token across replicas. Each replica keeps a copy in its own tokens
// table (Store's token mirror), so that authentication goes on when etcd
// does not answer.
//
// P/tokenepoch is put by every transaction that revokes a token or changes
// its grants (creating one needs not: it takes no right away): its mod
// revision is the token epoch, which a batch of writes allowed by tokens
// compares (batch.FenceTokens), so that a write allowed by rights taken
// away on another replica is not recorded after that change was
// acknowledged. It lies outside P/tokens/, which a replica of an older
// release reads as tokens only.

func (l *Log) tokensDir() string         { return l.prefix + "/tokens/" }
func (l *Log) tokenName(n string) string { return l.prefix + "/tokennames/" + n }
func (l *Log) tokenEpochKey() string     { return l.prefix + "/tokenepoch" }

// TokensDir returns the prefix of the tokens' keys, to watch.
func (l *Log) TokensDir() string { return l.tokensDir() }

type tokenJSON struct {
	Name      string         `json:"name"`
	Hash      []byte         `json:"hash"`
	Grants    []tokens.Grant `json:"grants,omitempty"`
	CreatedAt int64          `json:"created_at"`
	RevokedAt int64          `json:"revoked_at,omitempty"`
}

func (l *Log) tokenKey(hash []byte) string { return l.tokensDir() + hex.EncodeToString(hash) }

func encodeToken(t tokens.Token) string {
	j := tokenJSON{Name: t.Name, Hash: t.Hash, Grants: t.Grants, CreatedAt: t.CreatedAt.UnixNano()}
	if !t.RevokedAt.IsZero() {
		j.RevokedAt = t.RevokedAt.UnixNano()
	}
	b, _ := json.Marshal(j)
	return string(b)
}

func decodeToken(key, v []byte) (tokens.Token, error) {
	var j tokenJSON
	if err := json.Unmarshal(v, &j); err != nil {
		return tokens.Token{}, fmt.Errorf("audit: %w: %s: %w", ErrNotALog, key, err)
	}
	t := tokens.Token{Name: j.Name, Hash: j.Hash, Grants: j.Grants, CreatedAt: time.Unix(0, j.CreatedAt).UTC()}
	if j.RevokedAt != 0 {
		t.RevokedAt = time.Unix(0, j.RevokedAt).UTC()
	}
	return t, nil
}

// TokenSet is the cluster's tokens as one read of etcd saw them.
type TokenSet struct {
	Tokens []tokens.Token
	// Rev is the etcd revision of the read.
	Rev int64
	// Epoch is the token epoch: the etcd revision of the newest
	// revocation or change of grants (0: there was none).
	Epoch int64
}

// Tokens returns every token the cluster shares, with the token epoch, as
// of one etcd revision.
func (l *Log) Tokens(ctx context.Context) (TokenSet, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.cli.Txn(ctx).Then(clientv3.OpGet(l.tokensDir(), clientv3.WithPrefix()), clientv3.OpGet(l.tokenEpochKey())).Commit()
	if err != nil {
		return TokenSet{}, unavailable("read the tokens", err)
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	set := TokenSet{Tokens: make([]tokens.Token, 0, len(kvs)), Rev: resp.Header.Revision}
	for _, kv := range kvs {
		t, err := decodeToken(kv.Key, kv.Value)
		if err != nil {
			return TokenSet{}, err
		}
		set.Tokens = append(set.Tokens, t)
	}
	if e := resp.Responses[1].GetResponseRange().GetKvs(); len(e) == 1 {
		set.Epoch = e[0].ModRevision
	}
	return set, nil
}

// readDir reads every key under dir, decoded by decode, and returns them
// in key order with the etcd revision they were read at; what names them
// in an error.
func readDir[T any](ctx context.Context, l *Log, dir, what string, decode func(*mvccpb.KeyValue) (T, error)) ([]T, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	resp, err := l.cli.Get(ctx, dir, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, unavailable("read "+what, err)
	}
	out := make([]T, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		v, err := decode(kv)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, v)
	}
	return out, resp.Header.Revision, nil
}

// CreateToken shares a new token, checked (tokens.Prepare). It fails with
// tokens.ErrExists when a valid token already has its name.
func (l *Log) CreateToken(ctx context.Context, t tokens.Token) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	name, key := l.tokenName(t.Name), l.tokenKey(t.Hash)
	resp, err := l.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(name), "=", 0), clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(name, hex.EncodeToString(t.Hash)), clientv3.OpPut(key, encodeToken(t))).Commit()
	if err != nil {
		return unavailable("create the token", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %q", tokens.ErrExists, t.Name)
	}
	return nil
}

// UpdateToken changes the valid token named name with change, which gets
// it as it is: revoke (the name is free again) or replace its grants, and
// moves the token epoch in the same transaction. It fails with
// record.ErrNotFound when no valid token has that name.
func (l *Log) UpdateToken(ctx context.Context, name string, revoke bool, change func(*tokens.Token)) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	nameKey := l.tokenName(name)
	for range 8 {
		n, err := l.cli.Get(ctx, nameKey)
		if err != nil {
			return unavailable("read the token", err)
		}
		if len(n.Kvs) == 0 {
			return tokens.NotValid(name)
		}
		hash, err := hex.DecodeString(string(n.Kvs[0].Value))
		if err != nil {
			return fmt.Errorf("audit: %w: %s is %q", ErrNotALog, nameKey, n.Kvs[0].Value)
		}
		key := l.tokenKey(hash)
		tk, err := l.cli.Get(ctx, key)
		if err != nil {
			return unavailable("read the token", err)
		}
		if len(tk.Kvs) == 0 {
			return fmt.Errorf("audit: %w: %s names a token that %s lacks", ErrNotALog, nameKey, l.tokensDir())
		}
		t, err := decodeToken(tk.Kvs[0].Key, tk.Kvs[0].Value)
		if err != nil {
			return err
		}
		change(&t)
		ops := []clientv3.Op{clientv3.OpPut(key, encodeToken(t)), clientv3.OpPut(l.tokenEpochKey(), name)}
		if revoke {
			ops = append(ops, clientv3.OpDelete(nameKey))
		}
		resp, err := l.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(nameKey), "=", n.Kvs[0].ModRevision),
			clientv3.Compare(clientv3.ModRevision(key), "=", tk.Kvs[0].ModRevision),
		).Then(ops...).Commit()
		if err != nil {
			return unavailable("change the token", err)
		}
		if resp.Succeeded {
			return nil
		}
	}
	return fmt.Errorf("audit: token %q: other replicas kept changing it; try again", name)
}
