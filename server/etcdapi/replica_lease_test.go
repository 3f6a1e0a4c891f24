package etcdapi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/watcher"
)

// keptAlive reads ka until its answers, all with ttl, span more than
// span, and fails if w sees any event meanwhile. It returns the member
// IDs that answered.
func keptAlive(t *testing.T, ka <-chan *clientv3.LeaseKeepAliveResponse, w clientv3.WatchChan, ttl int64, span time.Duration) map[uint64]bool {
	t.Helper()
	members := map[uint64]bool{}
	var first time.Time
	timer := time.NewTimer(span + 15*time.Second)
	defer timer.Stop()
	for {
		select {
		case r := <-ka:
			if r == nil || r.TTL != ttl {
				t.Fatalf("keep-alive answer %+v, want TTL %d", r, ttl)
			}
			members[r.MemberId] = true
			if first.IsZero() {
				first = time.Now()
			} else if time.Since(first) > span {
				return members
			}
		case resp := <-w:
			t.Fatalf("while kept alive: %v %v", resp.Events, resp.Err())
		case <-timer.C:
			t.Fatalf("keep-alive answers stopped")
		}
	}
}

// TestEtcdReplicasShareLeases: a lease granted on one replica takes a key
// put through another and is kept alive through a third beyond its TTL;
// every replica lists it and its key. Once not kept alive, its key is
// deleted in exactly one audited revision by etcd-api, which the watches
// of every replica see.
func TestEtcdReplicasShareLeases(t *testing.T) {
	rs, _ := replicas(t, 3)
	a, b, c := rs[0].cli, rs[1].cli, rs[2].cli
	ctx := timeout(t)
	g, err := a.Grant(ctx, 2)
	if err != nil || g.TTL != 2 {
		t.Fatalf("grant on replica A: %+v %v", g, err)
	}
	put, err := b.Put(ctx, "app/a", "1", clientv3.WithLease(g.ID))
	if err != nil {
		t.Fatalf("put with the lease on replica B: %v", err)
	}
	var ws []clientv3.WatchChan
	for _, r := range rs {
		ws = append(ws, r.cli.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(put.Header.Revision+1)))
	}
	kctx, cut := context.WithCancel(ctx)
	ka, err := c.KeepAlive(kctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	keptAlive(t, ka, ws[0], 2, 3*time.Second)
	for i, r := range rs {
		got, err := r.cli.Get(ctx, "app/a")
		if err != nil || len(got.Kvs) != 1 {
			t.Fatalf("replica %d, after twice the TTL kept alive: %v %v", i, got, err)
		}
		ttl, err := r.cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
		if err != nil || ttl.GrantedTTL != 2 || ttl.TTL <= 0 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "app/a" {
			t.Fatalf("replica %d: time to live %+v %v, want TTL 2 and the key", i, ttl, err)
		}
		ls, err := r.cli.Leases(ctx)
		if err != nil || len(ls.Leases) != 1 || ls.Leases[0].ID != g.ID {
			t.Fatalf("replica %d: leases %+v %v", i, ls, err)
		}
	}
	if got := rs[0].env.Store.Rev(); got != put.Header.Revision {
		t.Fatalf("revision %d after the keep-alives, want %d: a keep-alive writes nothing", got, put.Header.Revision)
	}
	cut()
	var rev int64
	for i, w := range ws {
		got := awaitDeletes(t, w, "app/a")
		if i > 0 && got != rev {
			t.Fatalf("replica %d saw the delete at %d, another at %d", i, got, rev)
		}
		rev = got
	}
	r, err := rs[1].env.Store.Revision(ctx, rev)
	want := fmt.Sprintf("lease %d expired (TTL 2s", g.ID)
	if err != nil || r.Actor != "etcd-api" || r.Origin != "etcd-api" || !strings.HasPrefix(r.Reason, want) {
		t.Fatalf("revision %d: %+v %v, want by etcd-api, reason %q", rev, r, err, want)
	}
	// Exactly one revision: the next write is the next revision, after
	// every replica has heard of the lease's end.
	for i, r := range rs {
		if ls, err := r.cli.Leases(ctx); err != nil || len(ls.Leases) != 0 {
			t.Fatalf("replica %d: leases after the expiry %+v %v", i, ls, err)
		}
	}
	next, err := c.Put(ctx, "other/x", "1")
	if err != nil || next.Header.Revision != rev+1 {
		t.Fatalf("put after the expiry: %v %v, want revision %d (one revision ended the lease)", next, err, rev+1)
	}
	if _, err := a.KeepAliveOnce(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of the expired lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
}

// TestEtcdReplicaRevokesAndGuardsTheClustersLeases: a replica reads,
// compares and keeps the lease of keys attached through another; a revoke
// on one replica deletes the keys of a lease granted on another, as the
// caller;
// a lease of the cluster's etcd that is not a configd lease (a replica's
// registration) is not found by any lease RPC nor a put, and lives on.
func TestEtcdReplicaRevokesAndGuardsTheClustersLeases(t *testing.T) {
	rs, ecli := replicas(t, 2)
	a, b := rs[0].cli, rs[1].cli
	ctx := timeout(t)
	g, err := a.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Txn(ctx).Then(clientv3.OpPut("app/a", "1", clientv3.WithLease(g.ID)), clientv3.OpPut("app/b", "2", clientv3.WithLease(g.ID))).Commit(); err != nil {
		t.Fatal(err)
	}
	// The other replica knows the keys' lease: in a read, a compare, and
	// a put that keeps it.
	got, err := b.Get(ctx, "app/a")
	if err != nil || len(got.Kvs) != 1 || clientv3.LeaseID(got.Kvs[0].Lease) != g.ID {
		t.Fatalf("get on replica B: %v %v, want the key with lease %d", got, err, g.ID)
	}
	cmp, err := b.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue("app/b"), "=", g.ID)).
		Then(clientv3.OpPut("app/b", "3", clientv3.WithIgnoreLease())).Commit()
	if err != nil || !cmp.Succeeded {
		t.Fatalf("compare on the lease and put keeping it, on replica B: %+v %v", cmp, err)
	}
	w := a.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(cmp.Header.Revision+1))
	if _, err := b.Revoke(ctx, g.ID); err != nil {
		t.Fatalf("revoke on replica B: %v", err)
	}
	rev := awaitDeletes(t, w, "app/a", "app/b")
	r, err := rs[0].env.Store.Revision(ctx, rev)
	if err != nil || r.Origin != "etcd-api" || r.Reason != fmt.Sprintf("lease %d revoked", g.ID) {
		t.Fatalf("revision %d: %+v %v, want the revoke", rev, r, err)
	}
	if _, err := a.Revoke(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("second revoke: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}

	own, err := ecli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "app/c", "1", clientv3.WithLease(own.ID)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("put with an etcd lease not configd's: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := b.KeepAliveOnce(ctx, own.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("keep-alive of an etcd lease not configd's: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if ttl, err := b.TimeToLive(ctx, own.ID); err != nil || ttl.TTL != -1 {
		t.Errorf("time to live of an etcd lease not configd's: %+v %v, want TTL -1", ttl, err)
	}
	if _, err := b.Revoke(ctx, own.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("revoke of an etcd lease not configd's: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if ls, err := a.Leases(ctx); err != nil || len(ls.Leases) != 0 {
		t.Errorf("leases: %+v %v, want none", ls, err)
	}
	if _, err := a.Grant(ctx, 0); err == nil {
		t.Errorf("grant of TTL 0: accepted")
	}
	if ttl, err := ecli.TimeToLive(ctx, own.ID); err != nil || ttl.TTL <= 0 {
		t.Fatalf("the cluster's own lease after the refusals: %+v %v, want it alive", ttl, err)
	}

	// A replica served without the cluster's etcd client refuses leases,
	// saying why.
	env := configdtest.NewEnv(t, configdtest.WithReplicaOf(ecli, "/"+t.Name()))
	bare := client(t, configdtest.Serve(t, &core.Core{Store: env.Store, Hub: env.Hub}, server.APIConfig{}).Addr)
	if _, err := bare.Grant(ctx, 5); status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "WithCluster") {
		t.Fatalf("grant on a replica without the cluster's etcd client: %v, want Unimplemented naming WithCluster", err)
	}
}

// TestEtcdReplicaLeaseKeepAliveMovesWhenAReplicaStops: etcd's client,
// given two replicas, keeps a lease alive through one; that replica
// stops; the keep-alives go on through the other and the lease's key
// outlives the TTL.
func TestEtcdReplicaLeaseKeepAliveMovesWhenAReplicaStops(t *testing.T) {
	rs, _ := replicas(t, 2)
	ctx := timeout(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{rs[0].srv.Addr, rs[1].srv.Addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	g, err := cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	put, err := cli.Put(ctx, "app/a", "1", clientv3.WithLease(g.ID))
	if err != nil {
		t.Fatal(err)
	}
	ka, err := cli.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	first := <-ka
	if first == nil {
		t.Fatal("no keep-alive answer")
	}
	members := map[uint64]int{}
	for i, r := range rs {
		got, err := r.cli.Get(ctx, "none")
		if err != nil {
			t.Fatal(err)
		}
		members[got.Header.MemberId] = i
	}
	holder, ok := members[first.MemberId]
	if !ok {
		t.Fatalf("keep-alive answered by member %x, not a replica's", first.MemberId)
	}
	other := rs[1-holder]
	w := other.cli.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(put.Header.Revision+1))
	rs[holder].srv.Stop()
	for id := range keptAlive(t, ka, w, 2, 3*time.Second) {
		if i, ok := members[id]; ok && i == holder {
			t.Fatalf("keep-alive answered by the stopped replica")
		}
	}
	if got, err := other.cli.Get(ctx, "app/a"); err != nil || len(got.Kvs) != 1 {
		t.Fatalf("the lease's key after the replica stopped: %v %v", got, err)
	}
}

// TestEtcdReplicaEndsTheLeasesThatExpiredWhileItWasDown: the only replica
// stops; its lease expires in etcd meanwhile, and the key stays (no
// replica ends it); once it serves again, it ends the lease: the key is
// deleted by etcd-api.
func TestEtcdReplicaEndsTheLeasesThatExpiredWhileItWasDown(t *testing.T) {
	rs, ecli := replicas(t, 1)
	r := rs[0]
	ctx := timeout(t)
	g, err := r.cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	put, err := r.cli.Put(ctx, "app/a", "1", clientv3.WithLease(g.ID))
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("/%s/leases/%d", t.Name(), g.ID)
	m, err := ecli.Get(ctx, marker)
	if err != nil || len(m.Kvs) != 1 {
		t.Fatalf("the lease's marker %s: %v %v", marker, m, err)
	}
	mw := ecli.Watch(ctx, marker, clientv3.WithRev(m.Kvs[0].ModRevision+1))
	own, err := r.env.Hub.Watch(ctx, watcher.Filter{Prefixes: []string{"app/"}}, put.Header.Revision)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	r.srv.Stop()
	if ev := <-mw; ev.Err() != nil || len(ev.Events) != 1 || ev.Events[0].Type != clientv3.EventTypeDelete {
		t.Fatalf("the marker's watch: %+v %v, want its delete at the lease's expiry", ev.Events, ev.Err())
	}
	if _, err := r.env.Store.Get(ctx, "app/a"); err != nil {
		t.Fatalf("the key while no replica serves: %v, want it kept", err)
	}
	r.srv.Restart(&core.Core{Store: r.env.Store, Hub: r.env.Hub}, r.cfg)
	b, err := own.Next(ctx)
	if err != nil || len(b.Events) != 1 || b.Events[0].Type != audit.OpDelete {
		t.Fatalf("after the restart: %+v %v, want the key deleted", b, err)
	}
	rev, err := r.env.Store.Revision(ctx, b.Rev)
	if err != nil || rev.Actor != "etcd-api" || !strings.HasPrefix(rev.Reason, fmt.Sprintf("lease %d expired", g.ID)) {
		t.Fatalf("revision %d: %+v %v, want the lease's expiry", b.Rev, rev, err)
	}
}

// TestEtcdReplicaRevokeRacingPutsLeavesNoKey: puts with a lease through
// two replicas racing its revoke through one either fail (lease not
// found) or have their key deleted with the lease: none outlives it.
func TestEtcdReplicaRevokeRacingPutsLeavesNoKey(t *testing.T) {
	rs, _ := replicas(t, 2)
	ctx := timeout(t)
	for round := range 5 {
		g, err := rs[0].cli.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		wait := racingPuts(ctx, []*clientv3.Client{rs[0].cli, rs[1].cli}, round, g.ID)
		if _, err := rs[1].cli.Revoke(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		awaitRecordGone(t, ctx, rs[0].env.Store, rs[0].env.Hub, g.ID)
		if got, err := rs[1].cli.Get(ctx, fmt.Sprintf("app/%d/", round), clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || got.Count != 0 {
			t.Fatalf("round %d: %v keys outlive the revoked lease (%v)", round, got.Count, err)
		}
	}
}
