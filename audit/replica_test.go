package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/internal/testserver"
)

// The replicas' tests share one 3-member etcd cluster (separate
// processes): each subtest keeps its replicas under a prefix of its own,
// and leaves every member running when it ends.
func TestReplicasOnEtcd(t *testing.T) {
	c := testserver.EtcdCluster3(t)
	env := &replicaEnv{c: c}
	t.Run("InterleavedWritesGiveIdenticalReplicas", env.interleavedWrites)
	t.Run("ALateReplicaCatchesUp", env.lateReplica)
	t.Run("SchemasAreEnforcedOnEveryReplica", env.schemas)
	t.Run("DataDirOfAnotherModeIsRefused", env.otherMode)
	t.Run("SecretsAreSharedAcrossReplicas", env.sharedSecrets)
	t.Run("TokensAreSharedAcrossReplicas", env.sharedTokens)
	t.Run("SourceEventsAreSharedAcrossReplicas", env.sharedEvents)
	t.Run("SourceEventsRecordedWhileCutOffAreSharedWhenHealed", env.eventsWhileCutOff)
	t.Run("TamperedRecordIsRefused", env.tamperedRecord)
	t.Run("MemberKilledDuringAStormLosesNothing", env.memberKill)
	t.Run("QuorumLostRefusesWritesKeepsReads", env.quorumLost)
	t.Run("AReplicaCutOffFromEtcdHeals", env.partition)
	t.Run("RetentionCompactsEveryReplicaAndEtcd", env.retention)
	t.Run("AReplicaCutOffDuringACompactionIsRefused", env.cutOffDuringCompaction)
	t.Run("ACompactionWaitsForAReplicaBehind", env.horizonFloor)
	t.Run("AFencedSnapshotNeedsItsKey", env.fencedSnapshot)
	t.Run("AWriteByATokenRevokedElsewhereIsNotRecorded", env.revokedTokenWrite)
	t.Run("AReplicaOfAnotherLogFormatIsRefused", env.logFormats)
	t.Run("ADataDirOfAnotherLogFormatIsRefusedWithoutEtcd", env.dataDirFormats)
}

type replicaEnv struct {
	c *testserver.EtcdCluster
}

// client returns a client of the whole cluster, closed when the test ends.
func (e *replicaEnv) client(t *testing.T) *clientv3.Client { return etcdClient(t, e.c) }

// etcdClient returns a client of every member of c, closed when the test
// ends.
func etcdClient(t testing.TB, c *testserver.EtcdCluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// prefix is the test's etcd prefix.
func prefix(t *testing.T) string { return "/configd-test/" + t.Name() }

// replica opens a replica of the log under the test's prefix on a new
// data dir of its own.
func (e *replicaEnv) replica(t *testing.T, opts ...Option) *Store {
	t.Helper()
	return openReplica(t, filepath.Join(t.TempDir(), "configd.db"), append([]Option{WithEtcd(e.client(t), prefix(t)), WithEtcdTimeout(2 * time.Second)}, opts...)...)
}

func openReplica(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open replica: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sameReplicas checks that every store holds rev, the same audit chain
// (its head hash covers the history and each revision's state digest), a
// state that matches it, the same history from the same horizon, and the
// same compaction records.
func sameReplicas(t *testing.T, rev int64, stores ...*Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var first VerifyResult
	var firstHist []Revision
	for i, s := range stores {
		if err := s.WaitRev(ctx, rev); err != nil {
			t.Fatalf("replica %d: at revision %d, waiting for %d: %v (%+v)", i, s.Rev(), rev, err, s.Replication())
		}
		v, err := s.Verify(ctx)
		if err != nil || !v.OK || v.StateMismatch || v.Head != rev {
			t.Fatalf("replica %d: Verify = %+v, %v; want OK at head %d", i, v, err, rev)
		}
		since := s.Horizon() // RevisionsAfter reads no further back
		hist, err := s.RevisionsAfter(ctx, since, int(rev)+1)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range hist {
			if r.Rev != since+int64(j+1) {
				t.Fatalf("replica %d: revision %d at position %d: a gap", i, r.Rev, j)
			}
		}
		if i == 0 {
			first, firstHist = v, hist
			continue
		}
		if v.HeadHash != first.HeadHash {
			t.Fatalf("replica %d: head hash %s, replica 0: %s", i, v.HeadHash, first.HeadHash)
		}
		if !reflect.DeepEqual(hist, firstHist) {
			t.Fatalf("replica %d's history differs from replica 0's", i)
		}
	}
	sameCompactions(t, stores...)
}

// Writes on two replicas at once, interleaved: every revision number is
// given once, with no gap, and every replica ends with the same history
// and audit chain.
func (e *replicaEnv) interleavedWrites(t *testing.T) {
	a, b := e.replica(t), e.replica(t)
	const perWriter, writers = 40, 4
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	revs := make(chan int64, 2*writers*perWriter)
	for w := range 2 * writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				r, err := s.Commit(context.Background(), Txn{Actor: fmt.Sprintf("w%d", w), Ops: []Op{
					Put(fmt.Sprintf("app/%d", i%7), []byte(fmt.Sprintf("w%d-%d", w, i)), ""),
				}})
				if err != nil {
					errs <- err
					return
				}
				revs <- r.Rev
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(revs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for r := range revs {
		if seen[r] {
			t.Fatalf("revision %d given twice", r)
		}
		seen[r] = true
	}
	n := int64(2 * writers * perWriter)
	if int64(len(seen)) != n {
		t.Fatalf("%d revisions, want %d", len(seen), n)
	}
	sameReplicas(t, n, a, b)
	// Read your writes on the replica that took the write; the other
	// serves it once it applied that revision.
	r, err := b.Commit(context.Background(), Txn{Actor: "t", Ops: []Op{Put("app/ryw", []byte("1"), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if kv, err := b.Get(context.Background(), "app/ryw"); err != nil || string(kv.Value) != "1" {
		t.Fatalf("read your write on b: %+v, %v", kv, err)
	}
	if head, err := a.Sync(context.Background()); err != nil || head < r.Rev {
		t.Fatalf("Sync on a: %d, %v; want at least %d", head, err, r.Rev)
	}
	if kv, err := a.Get(context.Background(), "app/ryw"); err != nil || string(kv.Value) != "1" {
		t.Fatalf("a linearizable read on a: %+v, %v", kv, err)
	}
}

// A replica opened late, on an empty data dir, has caught up with the
// whole log when Open returns.
func (e *replicaEnv) lateReplica(t *testing.T) {
	a := e.replica(t)
	for i := range 30 {
		put(t, a, fmt.Sprintf("app/%d", i%5), fmt.Sprint(i))
	}
	late := e.replica(t)
	if late.Rev() != 30 {
		t.Fatalf("the late replica opened at revision %d, want 30", late.Rev())
	}
	put(t, late, "app/late", "1")
	sameReplicas(t, 31, a, late)
	// Closed, it misses revisions; opened again on its data dir, it
	// catches up from where it was.
	path := late.Path()
	late.Close()
	for i := range 5 {
		put(t, a, fmt.Sprintf("app/%d", i), "again")
	}
	again := openReplica(t, path, WithEtcd(e.client(t), prefix(t)))
	if again.Rev() != 36 {
		t.Fatalf("the replica reopened at revision %d, want 36", again.Rev())
	}
	sameReplicas(t, 36, a, again)
}

// A data dir of the SQLite-only mode is refused as a replica, and a
// replica's data dir is refused by the SQLite-only mode and by a log of
// another cluster; a prefix that holds other keys is refused.
func (e *replicaEnv) otherMode(t *testing.T) {
	ctx := context.Background()
	cli := e.client(t)
	dir := t.TempDir()
	solo := filepath.Join(dir, "solo.db")
	s, err := Open(ctx, solo)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "a", "1")
	s.Close()
	if _, err := Open(ctx, solo, WithEtcd(cli, prefix(t))); !errors.Is(err, ErrReplicaMode) {
		t.Fatalf("a SQLite-only data dir opened as a replica: %v; want ErrReplicaMode", err)
	}
	rep := filepath.Join(dir, "replica.db")
	s, err = Open(ctx, rep, WithEtcd(cli, prefix(t)))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, rep); !errors.Is(err, ErrReplicaMode) {
		t.Fatalf("a replica's data dir opened SQLite-only: %v; want ErrReplicaMode", err)
	}
	if _, err := Open(ctx, rep, WithEtcd(cli, prefix(t)+"-other")); !errors.Is(err, ErrReplicaMode) {
		t.Fatalf("a replica's data dir opened on another cluster: %v; want ErrReplicaMode", err)
	}
	if _, err := cli.Put(ctx, prefix(t)+"-foreign/x", "y"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, filepath.Join(dir, "new.db"), WithEtcd(cli, prefix(t)+"-foreign")); !errors.Is(err, ErrNotALog) {
		t.Fatalf("a prefix holding other keys: %v; want ErrNotALog", err)
	}
}

// Secrets on replicas: the data keys are shared through etcd, so a secret
// written on one replica opens on another, which seals with the same key;
// a replica whose master key is not the cluster's, or that has none, is
// refused at Open.
func (e *replicaEnv) sharedSecrets(t *testing.T) {
	ctx := context.Background()
	mk := masterKey(t)
	a, b := e.replica(t, WithMasterKey(mk)), e.replica(t, WithMasterKey(mk))
	r := putSecret(t, a, "app/password", "s3cret")
	if err := b.WaitRev(ctx, r.Rev); err != nil {
		t.Fatal(err)
	}
	if kv, err := b.Get(ctx, "app/password"); err != nil || string(kv.Value) != "s3cret" {
		t.Fatalf("the secret on the other replica: %+v, %v", kv, err)
	}
	r = putSecret(t, b, "app/token", "t0ken")
	if err := a.WaitRev(ctx, r.Rev); err != nil {
		t.Fatal(err)
	}
	if kv, err := a.Get(ctx, "app/token"); err != nil || string(kv.Value) != "t0ken" {
		t.Fatalf("b's secret on a: %+v, %v", kv, err)
	}
	if ka, kb := a.keys.IDs(), b.keys.IDs(); len(ka) != 1 || fmt.Sprint(ka) != fmt.Sprint(kb) {
		t.Fatalf("data keys: a %v, b %v; want the same one", ka, kb)
	}
	if _, err := b.RotateDataKeys(ctx, "app/"); err != nil {
		t.Fatal(err)
	}
	r = putSecret(t, b, "app/password", "n3w")
	if err := a.WaitRev(ctx, r.Rev); err != nil {
		t.Fatal(err)
	}
	if kv, err := a.Get(ctx, "app/password"); err != nil || string(kv.Value) != "n3w" {
		t.Fatalf("a secret sealed with the rotated key, on a: %+v, %v", kv, err)
	}
	sameReplicas(t, r.Rev, a, b)
	cli := e.client(t)
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), WithEtcd(cli, prefix(t)), WithMasterKey(masterKey(t))); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("a replica with another master key: %v; want ErrWrongMasterKey", err)
	}
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "d.db"), WithEtcd(cli, prefix(t))); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("a replica without a master key: %v; want ErrNoMasterKey", err)
	}
}

// Tokens are shared: one created on a replica authenticates on the other,
// a name is one valid token across the cluster, a revocation or new grants
// on one replica reach the other (whose token hook is told), and a replica
// answers from its copy when etcd does not.
func (e *replicaEnv) sharedTokens(t *testing.T) {
	ctx := context.Background()
	changed := make(chan struct{}, 16)
	a := e.replica(t)
	b := e.replica(t, WithTokenHook(func() { changed <- struct{}{} }))
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	// waitB waits until b's copy of the tokens satisfies ok.
	waitB := func(what string, ok func([]Token) bool) {
		t.Helper()
		for {
			ts, err := b.Tokens(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok(ts) {
				return
			}
			select {
			case <-changed:
			case <-time.After(20 * time.Second):
				t.Fatalf("b's tokens never %s: %+v", what, ts)
			}
		}
	}
	if err := a.CreateToken(ctx, Token{Name: "ci", Hash: hash("s1"), Grants: []Grant{{Permission: "read", Prefix: "app/"}}}); err != nil {
		t.Fatal(err)
	}
	if ts, err := a.Tokens(ctx); err != nil || len(ts) != 1 || ts[0].Name != "ci" {
		t.Fatalf("a's tokens after its own create: %+v, %v", ts, err)
	}
	waitB("got the token", func(ts []Token) bool { return len(ts) == 1 && len(ts[0].Grants) == 1 })
	if err := b.CreateToken(ctx, Token{Name: "ci", Hash: hash("s2")}); !errors.Is(err, ErrTokenExists) {
		t.Fatalf("the same name on the other replica: %v; want ErrTokenExists", err)
	}
	if err := b.SetTokenGrants(ctx, "ci", []Grant{{Permission: "write", Prefix: ""}}); err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeToken(ctx, "ci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking a revoked token on the other replica: %v; want ErrNotFound", err)
	}
	if err := a.CreateToken(ctx, Token{Name: "ci", Hash: hash("s3")}); err != nil {
		t.Fatalf("the name of a revoked token, again: %v", err)
	}
	waitB("saw the revocation and the new token", func(ts []Token) bool {
		return len(ts) == 2 && !ts[0].RevokedAt.IsZero() && ts[0].Grants[0].Permission == "write" && ts[1].RevokedAt.IsZero()
	})
}
