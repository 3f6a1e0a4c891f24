package etcdapi_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/watcher"
)

// awaitDeletes waits on w for the deletes of keys, in one revision, and
// returns that revision.
func awaitDeletes(t *testing.T, w clientv3.WatchChan, keys ...string) int64 {
	t.Helper()
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	for {
		select {
		case resp, ok := <-w:
			if !ok || resp.Err() != nil {
				t.Fatalf("watch ended: %v", resp.Err())
			}
			var got []string
			for _, ev := range resp.Events {
				if ev.Type != mvccpb.DELETE {
					t.Fatalf("event %v, want only deletes", ev)
				}
				got = append(got, string(ev.Kv.Key))
			}
			if len(got) == 0 {
				continue
			}
			slices.Sort(got)
			if !slices.Equal(got, keys) {
				t.Fatalf("deleted %v in revision %d, want %v in one revision", got, resp.Header.Revision, keys)
			}
			return resp.Events[0].Kv.ModRevision
		case <-timer.C:
			t.Fatalf("no delete of %v", keys)
		}
	}
}

// leased serves a configd and grants a lease of ttl seconds through
// etcd's client of it.
//
// It also returns the time just before the grant: the lease cannot start
// earlier, so the time from then to its expiry is at least its life.
func leased(t *testing.T, ttl int64) (*etcdEnv, *clientv3.Client, context.Context, *clientv3.LeaseGrantResponse, time.Time) {
	t.Helper()
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	granted := time.Now()
	g, err := cli.Grant(ctx, ttl)
	if err != nil {
		t.Fatalf("grant %d: %v", ttl, err)
	}
	return e, cli, ctx, g, granted
}

// TestEtcdLeaseGrantAttachRevoke: etcd's client grants a lease (the TTL
// raised to etcd's minimum), puts keys with it; Range, TimeToLive, Leases
// and a Txn's compare see the lease; a revoke deletes the keys in one
// audited revision by the caller, and the lease is gone.
func TestEtcdLeaseGrantAttachRevoke(t *testing.T) {
	e, cli, ctx, g, _ := leased(t, 1)
	if g.ID <= 0 || g.TTL != 2 {
		t.Fatalf("grant 1: %+v, want an ID and etcd's minimum TTL 2", g)
	}
	if _, err := cli.Lease.Grant(ctx, 5); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"app/a", "app/b"} {
		if _, err := cli.Put(ctx, k, "v", clientv3.WithLease(g.ID)); err != nil {
			t.Fatalf("put %s with lease: %v", k, err)
		}
	}
	got, err := cli.Get(ctx, "app/", clientv3.WithPrefix())
	if err != nil || len(got.Kvs) != 2 || got.Kvs[0].Lease != int64(g.ID) || got.Kvs[1].Lease != int64(g.ID) {
		t.Fatalf("get: %v %v, want both keys on lease %x", got.Kvs, err, g.ID)
	}
	ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.GrantedTTL != 2 || ttl.TTL < 1 || len(ttl.Keys) != 2 || string(ttl.Keys[0]) != "app/a" {
		t.Fatalf("timetolive --keys: %+v %v", ttl, err)
	}
	ls, err := cli.Leases(ctx)
	if err != nil || len(ls.Leases) != 2 || !slices.ContainsFunc(ls.Leases, func(s clientv3.LeaseStatus) bool { return s.ID == g.ID }) {
		t.Fatalf("leases: %+v %v", ls, err)
	}
	txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.LeaseValue("app/a"), "=", g.ID)).Then(clientv3.OpPut("app/c", "1")).Commit()
	if err != nil || !txn.Succeeded {
		t.Fatalf("txn if lease(app/a) = %x: %+v %v", g.ID, txn, err)
	}
	// ignore_lease keeps the key's lease.
	if _, err := cli.Put(ctx, "app/a", "v2", clientv3.WithIgnoreLease()); err != nil {
		t.Fatal(err)
	}
	if got, _ := cli.Get(ctx, "app/a"); got.Kvs[0].Lease != int64(g.ID) || string(got.Kvs[0].Value) != "v2" {
		t.Fatalf("after put --ignore-lease: %v, want lease %x kept", got.Kvs, g.ID)
	}
	w := cli.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(e.c.Store.Rev()+1))
	if _, err := cli.Revoke(ctx, g.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	rev := awaitDeletes(t, w, "app/a", "app/b")
	r, err := e.c.Store.Revision(ctx, rev)
	if err != nil || !strings.HasPrefix(r.Actor, "etcd-api@") || r.Origin != "etcd-api" || r.Reason != fmt.Sprintf("lease %d revoked", g.ID) {
		t.Fatalf("revision %d: %+v %v, want the caller's, reason naming the lease", rev, r, err)
	}
	if _, err := e.c.Store.Get(ctx, keyspace.LeaseKey(int64(g.ID))); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("the lease's record after its revoke: %v, want none", err)
	}
	if got, _ := cli.Get(ctx, "app/c"); len(got.Kvs) != 1 {
		t.Fatal("app/c, put without a lease, is gone")
	}
	if _, err := cli.Revoke(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("second revoke: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if ttl, err := cli.TimeToLive(ctx, g.ID); err != nil || ttl.TTL != -1 {
		t.Fatalf("timetolive of a revoked lease: %+v %v, want TTL -1", ttl, err)
	}
}

// TestEtcdLeaseExpiryDeletesKeysInOneAuditedRevision: a lease not kept
// alive ends: its keys are deleted in one revision by configd (actor and
// origin etcd-api, the reason naming the lease), which etcd's watch and
// configd's own watch see.
func TestEtcdLeaseExpiryDeletesKeysInOneAuditedRevision(t *testing.T) {
	// The time from the grant, not from the puts and watches below, which
	// take their own while on a loaded machine.
	e, cli, ctx, g, granted := leased(t, 2)
	if _, err := cli.Put(ctx, "other/x", "1"); err != nil {
		t.Fatal(err)
	}
	start := e.c.Store.Rev() + 1
	own, err := e.c.Hub.Watch(ctx, watcher.Filter{Prefixes: []string{"app/"}}, start-1)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	put, err := cli.Txn(ctx).Then(clientv3.OpPut("app/a", "1", clientv3.WithLease(g.ID)), clientv3.OpPut("app/b", "2", clientv3.WithLease(g.ID))).Commit()
	if err != nil {
		t.Fatal(err)
	}
	w := cli.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(put.Header.Revision+1))
	rev := awaitDeletes(t, w, "app/a", "app/b")
	if d := time.Since(granted); d < 2*time.Second-100*time.Millisecond {
		t.Errorf("the lease ended %v after its grant, before its TTL of 2s", d)
	}
	r, err := e.c.Store.Revision(ctx, rev)
	want := fmt.Sprintf("lease %d expired", g.ID)
	if err != nil || r.Actor != "etcd-api" || r.Origin != "etcd-api" || !strings.HasPrefix(r.Reason, want) {
		t.Fatalf("revision %d: %+v %v, want by etcd-api, reason %q", rev, r, err, want)
	}
	for {
		b, err := own.Next(ctx)
		if err != nil {
			t.Fatalf("configd's watch: %v", err)
		}
		if b.Rev == rev {
			if len(b.Events) != 2 || b.Events[0].Type != audit.OpDelete {
				t.Fatalf("configd's watch at %d: %+v, want the two deletes", rev, b.Events)
			}
			break
		}
	}
	if ls, _ := cli.Leases(ctx); len(ls.Leases) != 0 {
		t.Fatalf("leases after the expiry: %v", ls.Leases)
	}
	if _, err := cli.KeepAliveOnce(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of an expired lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
}

// TestEtcdLeaseKeepAliveKeepsKeysUntilTheStreamIsCut: while etcd's
// client keeps the lease alive its key stays beyond the TTL; a keep-alive
// writes no revision; once the stream is cut, the lease expires.
func TestEtcdLeaseKeepAliveKeepsKeysUntilTheStreamIsCut(t *testing.T) {
	e, cli, ctx, g, _ := leased(t, 2)
	if _, err := cli.Put(ctx, "app/a", "1", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	rev := e.c.Store.Rev()
	once, err := cli.KeepAliveOnce(ctx, g.ID)
	if err != nil || once.TTL != 2 || once.ID != g.ID {
		t.Fatalf("keep-alive once: %+v %v", once, err)
	}
	kctx, cut := context.WithCancel(ctx)
	ka, err := cli.KeepAlive(kctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	w := cli.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	// Twice the TTL, kept alive: no delete.
	beyond := time.After(4 * time.Second)
	answers := 0
	for waiting := true; waiting; {
		select {
		case r := <-ka:
			if r == nil || r.TTL != 2 {
				t.Fatalf("keep-alive answer %+v", r)
			}
			answers++
		case resp := <-w:
			t.Fatalf("while kept alive: %v", resp.Events)
		case <-beyond:
			waiting = false
		}
	}
	if answers < 3 {
		t.Fatalf("%d keep-alive answers in 4s", answers)
	}
	if got := e.c.Store.Rev(); got != rev {
		t.Fatalf("revision %d after keep-alives, want %d: a keep-alive writes nothing", got, rev)
	}
	cut()
	cutAt := time.Now()
	awaitDeletes(t, w, "app/a")
	if d := time.Since(cutAt); d > 4*time.Second {
		t.Errorf("the lease ended %v after its last keep-alive, TTL 2s", d)
	}
}

// TestEtcdLeaseDetachedByAPutWithoutIt: a put without the lease (through
// etcd's API or configd's own) detaches the key, as in etcd: the lease's
// end leaves it.
func TestEtcdLeaseDetachedByAPutWithoutIt(t *testing.T) {
	e, cli, ctx, g, _ := leased(t, 60)
	for _, k := range []string{"app/a", "app/b", "app/c"} {
		if _, err := cli.Put(ctx, k, "1", clientv3.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, "app/a", "1"); err != nil { // same value, no lease
		t.Fatal(err)
	}
	if _, err := e.c.Store.Commit(ctx, audit.Txn{Actor: "t", Ops: []audit.Op{audit.Put("app/b", []byte("2"), "")}}); err != nil {
		t.Fatal(err)
	}
	got, err := cli.Get(ctx, "app/", clientv3.WithPrefix())
	if err != nil || len(got.Kvs) != 3 || got.Kvs[0].Lease != 0 || got.Kvs[1].Lease != 0 || got.Kvs[2].Lease != int64(g.ID) {
		t.Fatalf("get: %v %v, want only app/c on the lease", got.Kvs, err)
	}
	if ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys()); err != nil || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "app/c" {
		t.Fatalf("timetolive --keys: %+v %v, want app/c", ttl, err)
	}
	w := cli.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(e.c.Store.Rev()+1))
	if _, err := cli.Revoke(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	awaitDeletes(t, w, "app/c")
	if got, _ := cli.Get(ctx, "app/", clientv3.WithPrefix()); len(got.Kvs) != 2 {
		t.Fatalf("after the revoke: %v, want app/a and app/b", got.Kvs)
	}
}

// TestEtcdLeaseBadInputIsRefusedAndChangesNothing: a TTL that is not
// positive or too large, a negative or taken ID, an unknown lease on a
// put, revoke or keep-alive, a lease on configd's own or reserved keys:
// each refused, nothing written.
func TestEtcdLeaseBadInputIsRefusedAndChangesNothing(t *testing.T) {
	e, cli, ctx, g, _ := leased(t, 60)
	if _, err := cli.Put(ctx, "app/a", "1"); err != nil {
		t.Fatal(err)
	}
	rev := e.c.Store.Rev()
	for _, ttl := range []int64{0, -1} {
		if _, err := cli.Grant(ctx, ttl); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "TTL") {
			t.Errorf("grant %d: %v, want InvalidArgument naming the TTL", ttl, err)
		}
	}
	if _, err := cli.Grant(ctx, 9_000_000_001); !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
		t.Errorf("grant of a huge TTL: %v, want %v", err, rpctypes.ErrLeaseTTLTooLarge)
	}
	// An ID given (the client's Grant chooses none, as etcdctl's).
	lc := pb.NewLeaseClient(cli.ActiveConnection())
	if r, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 42, TTL: 60}); err != nil || r.ID != 42 {
		t.Fatalf("grant ID 42: %+v %v", r, err)
	}
	if _, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 42, TTL: 60}); !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseExist) {
		t.Errorf("grant of a taken ID: %v, want %v", err, rpctypes.ErrLeaseExist)
	}
	if _, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: -1, TTL: 60}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("grant of ID -1: %v, want InvalidArgument", err)
	}
	const unknown = clientv3.LeaseID(0x7777)
	if _, err := cli.Put(ctx, "app/a", "2", clientv3.WithLease(unknown)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("put with an unknown lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := cli.Revoke(ctx, unknown); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("revoke of an unknown lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := cli.KeepAliveOnce(ctx, unknown); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Errorf("keep-alive of an unknown lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := cli.Put(ctx, "/app/a", "2", clientv3.WithLease(g.ID)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("put of a reserved key with a lease: %v, want InvalidArgument", err)
	}
	for _, k := range []string{keyspace.LeaseKey(int64(g.ID)), ".configd/x"} {
		if _, err := cli.Put(ctx, k, "{}", clientv3.WithLease(g.ID)); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "configd's own keys") {
			t.Errorf("put of configd's own key %s with a lease: %v, want PermissionDenied", k, err)
		}
	}
	if _, err := cli.Put(ctx, "app/a", "2", clientv3.WithLease(g.ID), clientv3.WithIgnoreLease()); !errors.Is(err, rpctypes.ErrLeaseProvided) {
		t.Errorf("put with a lease and ignore_lease: %v, want %v", err, rpctypes.ErrLeaseProvided)
	}
	if got := e.c.Store.Rev(); got != rev {
		t.Fatalf("revision %d after the refusals, want %d", got, rev)
	}
	if got, _ := cli.Get(ctx, "app/a"); string(got.Kvs[0].Value) != "1" || got.Kvs[0].Lease != 0 {
		t.Fatalf("app/a: %v, want 1 with no lease", got.Kvs)
	}
	if ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys()); err != nil || ttl.GrantedTTL != 60 || len(ttl.Keys) != 0 {
		t.Fatalf("the lease after the refusals: %+v %v", ttl, err)
	}
}

// TestEtcdLeaseSurvivesARestartWithItsFullTTL: a lease's keys and TTL are
// in the store: after a restart the key is still on its lease, which has
// its full TTL again (etcd's rule after a leader change), and expires that
// long after unless kept alive.
func TestEtcdLeaseSurvivesARestartWithItsFullTTL(t *testing.T) {
	e, cli, ctx, g, _ := leased(t, 3)
	if _, err := cli.Put(ctx, "app/a", "1", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	// Let most of the TTL pass: the deadline before the restart would
	// end the lease one second after it.
	<-time.After(2 * time.Second)
	e.restart()
	restarted := time.Now()
	cli = client(t, e.Addr)
	ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.GrantedTTL != 3 || ttl.TTL < 2 || len(ttl.Keys) != 1 {
		t.Fatalf("timetolive after the restart: %+v %v, want the full TTL 3 and app/a", ttl, err)
	}
	got, err := cli.Get(ctx, "app/a")
	if err != nil || len(got.Kvs) != 1 || got.Kvs[0].Lease != int64(g.ID) {
		t.Fatalf("app/a after the restart: %v %v, want it on lease %x", got, err, g.ID)
	}
	w := cli.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(e.c.Store.Rev()+1))
	rev := awaitDeletes(t, w, "app/a")
	if d := time.Since(restarted); d < 2*time.Second {
		t.Errorf("the lease ended %v after the restart, before its full TTL of 3s", d)
	}
	if r, err := e.c.Store.Revision(ctx, rev); err != nil || !strings.Contains(r.Reason, fmt.Sprintf("lease %d expired", g.ID)) {
		t.Fatalf("revision %d: %+v %v", rev, r, err)
	}
}

// TestEtcdLeaseGrantsApply: with authentication on, a put with a lease
// needs the write of its key; a revoke needs the write of every key of
// the lease; TimeToLive lists only the keys the token may read.
func TestEtcdLeaseGrantsApply(t *testing.T) {
	env, addr := authConfigd(t)
	ctx := timeout(t)
	writer := client(t, addr, clientv3.Config{Username: "writer-app", Password: env.Secrets["writer-app"]})
	reader := client(t, addr, clientv3.Config{Username: "reader-db", Password: env.Secrets["reader-db"]})
	g, err := writer.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	rev := env.Store.Rev()
	if _, err := writer.Put(ctx, "db/x", "2", clientv3.WithLease(g.ID)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("put of db/x with a lease by writer-app: %v, want PermissionDenied", err)
	}
	if env.Store.Rev() != rev {
		t.Fatal("a refused put wrote")
	}
	if _, err := writer.Put(ctx, "app/y", "1", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Revoke(ctx, g.ID); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("revoke by reader-db: %v, want PermissionDenied", err)
	}
	if ttl, err := reader.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys()); err != nil || ttl.TTL <= 0 || len(ttl.Keys) != 0 {
		t.Fatalf("timetolive by reader-db: %+v %v, want the lease alive and no key it may not read", ttl, err)
	}
	if _, err := writer.Revoke(ctx, g.ID); err != nil {
		t.Fatalf("revoke by writer-app: %v", err)
	}
	r, err := env.Store.Revision(ctx, env.Store.Rev())
	if err != nil || r.Actor != "writer-app" || !slices.ContainsFunc(r.Changes, func(c audit.Change) bool { return c.Key == "app/y" && c.Type == audit.OpDelete }) {
		t.Fatalf("the revoke's revision: %+v %v", r, err)
	}
}

// TestEtcdConcurrencyMutexPassesWhenTheHolderEnds: etcd's concurrency
// package (a session on a kept-alive lease, a mutex of leased keys) works
// over configd: the lock passes to the waiter when the holder closes its
// session (a revoke), and when the holder dies (its keep-alives stop and
// its lease expires).
func TestEtcdConcurrencyMutexPassesWhenTheHolderEnds(t *testing.T) {
	e := startConfigd(t)
	ctx := timeout(t)
	lock := func(cli *clientv3.Client) (*concurrency.Session, *concurrency.Mutex) {
		t.Helper()
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(2))
		if err != nil {
			t.Fatal(err)
		}
		m := concurrency.NewMutex(s, "locks/job")
		if err := m.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		return s, m
	}
	waitLock := func(cli *clientv3.Client) <-chan *concurrency.Session {
		got := make(chan *concurrency.Session, 1)
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(2))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			if err := concurrency.NewMutex(s, "locks/job").Lock(ctx); err != nil {
				t.Error(err)
			}
			got <- s
		}()
		return got
	}
	holder, _ := lock(client(t, e.Addr))
	waiter := waitLock(client(t, e.Addr))
	if err := holder.Close(); err != nil { // revokes its lease
		t.Fatal(err)
	}
	next := <-waiter
	// The new holder dies: its client closes, its keep-alives stop.
	dying := next.Client()
	waiter = waitLock(client(t, e.Addr))
	dying.Close()
	if s := <-waiter; s == nil {
		t.Fatal("no lock")
	}
}

// racingPuts puts keys app/<round>/<p>/<n> with lease id through clis
// from 4 goroutines until the lease is not found, and returns what waits
// for them.
func racingPuts(ctx context.Context, clis []*clientv3.Client, round int, id clientv3.LeaseID) (wait func() error) {
	done := make(chan error, 4)
	for p := range 4 {
		go func() {
			for n := 0; ; n++ {
				_, err := clis[p%len(clis)].Put(ctx, fmt.Sprintf("app/%d/%d/%d", round, p, n), "1", clientv3.WithLease(id))
				if errors.Is(err, rpctypes.ErrLeaseNotFound) {
					done <- nil
					return
				}
				if err != nil {
					done <- err
					return
				}
			}
		}()
	}
	return func() error {
		var first error
		for range 4 {
			if err := <-done; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

// awaitRecordGone waits until lease id's record is gone from st (as new
// as its cluster's log): a key committed as the lease ended is deleted
// after it.
func awaitRecordGone(t *testing.T, ctx context.Context, st *audit.Store, hub *watcher.Hub, id clientv3.LeaseID) {
	t.Helper()
	w, err := hub.Watch(ctx, watcher.Filter{Keys: []string{keyspace.LeaseKey(int64(id))}}, hub.Rev())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for {
		if _, err := st.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, keyspace.LeaseKey(int64(id))); errors.Is(err, audit.ErrNotFound) {
			return
		}
		if _, err := w.Next(ctx); err != nil {
			t.Fatalf("lease %d's record stays: %v", id, err)
		}
	}
}

// TestEtcdLeaseRevokeRacingPutsLeavesNoKey: puts with a lease racing its
// revoke either fail (lease not found) or have their key deleted with
// the lease: none outlives it.
func TestEtcdLeaseRevokeRacingPutsLeavesNoKey(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	for round := range 10 {
		g, err := cli.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		wait := racingPuts(ctx, []*clientv3.Client{cli}, round, g.ID)
		if _, err := cli.Revoke(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		awaitRecordGone(t, ctx, e.c.Store, e.c.Hub, g.ID)
		if got, err := cli.Get(ctx, fmt.Sprintf("app/%d/", round), clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || got.Count != 0 {
			t.Fatalf("round %d: %v keys outlive the revoked lease (%v)", round, got.Count, err)
		}
	}
}

// TestEtcdLeaseWithTooManyKeysIsRefusedNamingIt: a lease's record holds
// its keys: a put that would take it over the value limit is refused,
// naming the lease, and writes nothing.
func TestEtcdLeaseWithTooManyKeysIsRefusedNamingIt(t *testing.T) {
	e := startConfigd(t, audit.WithMaxValueSize(100))
	cli := client(t, e.Addr)
	ctx := timeout(t)
	g, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	var refused error
	n := 0
	for ; refused == nil && n < 20; n++ {
		_, refused = cli.Put(ctx, fmt.Sprintf("app/k%d", n), "v", clientv3.WithLease(g.ID))
	}
	want := fmt.Sprintf("lease %d holds too many keys", g.ID)
	if status.Code(refused) != codes.InvalidArgument || !strings.Contains(fmt.Sprint(refused), want) {
		t.Fatalf("put %d with the lease: %v, want a refusal saying %q", n, refused, want)
	}
	if got, _ := cli.Get(ctx, fmt.Sprintf("app/k%d", n-1)); len(got.Kvs) != 0 {
		t.Fatal("the refused put wrote its key")
	}
	if ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys()); err != nil || len(ttl.Keys) != n-1 {
		t.Fatalf("timetolive --keys: %+v %v, want the %d keys put before", ttl, err, n-1)
	}
}
