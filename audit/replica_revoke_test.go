package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/configd/configd/audit/internal/commit"
)

// The refusals of tokenRights, as a door's 401 and 403.
var (
	errTestRevoked   = errors.New("the token was revoked")
	errTestForbidden = errors.New("the token may not write there")
)

// tokenRights is a write's Authorization as the server's principal is
// one: the token named name, whose rights allowed the write at token
// epoch epoch; Reauthorize reads s's copy of the tokens as it is then.
type tokenRights struct {
	s     *Store
	name  string
	epoch int64
	asked *atomic.Int32 // counts the calls of Reauthorize
}

func (r tokenRights) TokenEpoch() int64 { return r.epoch }

func (r tokenRights) Reauthorize(targets []string) (int64, error) {
	r.asked.Add(1)
	ts, epoch, err := r.s.TokensAndEpoch(context.Background())
	if err != nil {
		return 0, err
	}
	for _, t := range ts {
		if t.Name != r.name || !t.RevokedAt.IsZero() {
			continue
		}
		for _, target := range targets {
			allowed := false
			for _, g := range t.Grants {
				allowed = allowed || g.Permission == "write" && strings.HasPrefix(target, g.Prefix)
			}
			if !allowed {
				return 0, errTestForbidden
			}
		}
		return epoch, nil
	}
	return 0, errTestRevoked
}

// A token revoked, or its grants narrowed, on one replica while another
// replica's copy of the tokens does not have it yet: a write that the old
// rights allowed on the other replica is not recorded once the change is
// acknowledged. Its commit compares the token epoch in etcd, fails, reads
// the tokens again and allows each write of the batch again: those no
// longer allowed fail with their token's refusal, the others of the same
// batch are recorded, with no revision number used or skipped. A write
// allowed at the current epoch is recorded without asking its token again.
func (e *replicaEnv) revokedTokenWrite(t *testing.T) {
	ctx := context.Background()
	changed := make(chan struct{}, 16)
	a := e.replica(t)
	b := e.replica(t, WithTokenHook(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}))
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	for _, name := range []string{"ci", "ops"} {
		if err := a.CreateToken(ctx, Token{Name: name, Hash: hash(name), Grants: []Grant{{Permission: "write", Prefix: ""}}}); err != nil {
			t.Fatal(err)
		}
	}
	// b's copy has both tokens: its epoch is what b's server would have
	// allowed writes at.
	var before int64
	for deadline := time.After(20 * time.Second); ; {
		ts, epoch, err := b.TokensAndEpoch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 2 {
			before = epoch
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("b never got the tokens: %+v", ts)
		}
	}

	if err := a.RevokeToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetTokenGrants(ctx, "ops", []Grant{{Permission: "write", Prefix: "db/"}}); err != nil {
		t.Fatal(err)
	}
	_, after, err := a.TokensAndEpoch(ctx)
	if err != nil || after <= before {
		t.Fatalf("a's token epoch after a revocation and new grants: %d, %v; want more than %d", after, err, before)
	}

	// Four writes in one batch on b, three allowed by the rights b knew
	// before the changes (whether or not its copy has them by now), one
	// without a token: b's writer is held while they are queued.
	var asked atomic.Int32
	rights := func(name string) context.Context {
		return WithAuthorization(ctx, tokenRights{s: b, name: name, epoch: before, asked: &asked})
	}
	release := holdWriter(b)
	queue := func(ctx context.Context, key string) commit.Pending {
		t.Helper()
		p, err := b.w.QueueCommit(ctx, Txn{Actor: "t", Ops: []Op{Put(key, []byte(key), "")}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	revoked := queue(rights("ci"), "app/revoked")
	narrowed := queue(rights("ops"), "app/narrowed")
	allowed := queue(rights("ops"), "db/allowed")
	untokened := queue(ctx, "app/untokened")
	close(release)
	if _, err := revoked.Wait(); !errors.Is(err, errTestRevoked) {
		t.Fatalf("a write by a token revoked on the other replica: %v; want its refusal", err)
	}
	if _, err := narrowed.Wait(); !errors.Is(err, errTestForbidden) {
		t.Fatalf("a write its token's new grants do not cover: %v; want its refusal", err)
	}
	if r, err := allowed.Wait(); err != nil || r.Rev != 1 {
		t.Fatalf("a write its token's new grants cover: rev %d, %v; want rev 1", r.Rev, err)
	}
	if r, err := untokened.Wait(); err != nil || r.Rev != 2 {
		t.Fatalf("a write without a token in the same batch: rev %d, %v; want rev 2", r.Rev, err)
	}
	if asked.Load() == 0 {
		t.Fatal("no write was allowed again")
	}

	// b now knows the newest epoch: a write allowed at it is recorded
	// without asking its token again.
	_, now, err := b.TokensAndEpoch(ctx)
	if err != nil || now < after {
		t.Fatalf("b's token epoch after the refused batch: %d, %v; want at least %d", now, err, after)
	}
	asked.Store(0)
	r, err := b.Commit(WithAuthorization(ctx, tokenRights{s: b, name: "ops", epoch: now, asked: &asked}),
		Txn{Actor: "t", Ops: []Op{Put("db/again", []byte("x"), "")}})
	if err != nil || r.Rev != 3 || asked.Load() != 0 {
		t.Fatalf("a write allowed at the current epoch: rev %d, %v, asked again %d times; want rev 3, not asked", r.Rev, err, asked.Load())
	}

	sameReplicas(t, 3, a, b)
	for _, s := range []*Store{a, b} {
		for _, key := range []string{"app/revoked", "app/narrowed"} {
			if _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: %v; want it never recorded", key, err)
			}
		}
	}
}
