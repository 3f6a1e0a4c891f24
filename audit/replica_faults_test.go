package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// waitFor polls cond until it holds or 20 s pass: for a state that no
// event announces (a background loop's status).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 20s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A record changed in etcd behind configd's back is refused: a running
// replica applies nothing of it, reports it and refuses writes; a new
// replica does not open on it.
func (e *replicaEnv) tamperedRecord(t *testing.T) {
	ctx := context.Background()
	cli := e.client(t)
	a := e.replica(t)
	for i := range 3 {
		put(t, a, fmt.Sprintf("app/%d", i), "v1")
	}
	b := e.replica(t)
	// A forged revision 4: revision 3's record with its number changed
	// (field 1, the first byte after its tag), and the head moved to it.
	key3 := prefix(t) + "/log/" + fmt.Sprintf("%020d", 3)
	resp, err := cli.Get(ctx, key3)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v", key3, err)
	}
	forged := bytes.Clone(resp.Kvs[0].Value)
	if forged[0] != 0x08 || forged[1] != 3 {
		t.Fatalf("record 3 starts with % x", forged[:2])
	}
	forged[1] = 4
	if _, err := cli.Put(ctx, prefix(t)+"/log/"+fmt.Sprintf("%020d", 4), string(forged)); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix(t)+"/head", fmt.Sprintf("%020d", 4)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reporting the forged record", func() bool { return errors.Is(b.Replication().Err, ErrDiverged) })
	if b.Rev() != 3 {
		t.Fatalf("the replica applied up to %d, want 3", b.Rev())
	}
	if _, err := b.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put("app/x", []byte("1"), "")}}); !errors.Is(err, ErrDiverged) {
		t.Fatalf("a write on the replica that saw the forged record: %v; want ErrDiverged", err)
	}
	if v, err := b.Verify(ctx); err != nil || !v.OK || v.Head != 3 {
		t.Fatalf("the replica's own chain: %+v, %v", v, err)
	}
	// A value changed inside a record, its length kept: the chain breaks.
	value := resp.Kvs[0].Value
	i := bytes.Index(value, []byte("v1"))
	tampered := bytes.Clone(value)
	tampered[i+1] = '9'
	if _, err := cli.Put(ctx, key3, string(tampered)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "late.db"), WithEtcd(cli, prefix(t))); !errors.Is(err, ErrDiverged) {
		t.Fatalf("a new replica on a tampered log: %v; want ErrDiverged", err)
	}
}

// The leader of etcd killed with SIGKILL in the middle of a storm of
// writes, compare-and-sets and linearizable reads, each on either of two
// replicas: no
// acknowledged write is lost, the revisions have no gap, the replicas end
// identical, and the history the clients saw is linearizable.
func (e *replicaEnv) memberKill(t *testing.T) {
	a, b := e.replica(t), e.replica(t)
	cli := e.client(t)
	const clients, opsEach, keys = 6, 50, 3
	var done atomic.Int64
	killAt, restartAt := make(chan struct{}), make(chan struct{})
	var killOnce, restartOnce sync.Once
	total := int64(clients * opsEach)
	var hist opHistory
	start := time.Now()
	var wg sync.WaitGroup
	replicas := []*Store{a, b}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			lastMod := map[string]int64{}
			var prevKey string // the key of the client's previous operation
			prevOn := 0        // the replica it ran on
			for i := range opsEach {
				key := fmt.Sprintf("lin/%d", rng.IntN(keys))
				on := rng.IntN(len(replicas))
				if prevKey != "" && rng.IntN(2) == 0 {
					// Read-modify-write through a load balancer: what the
					// client learnt on one replica, it asks of the other.
					key, on = prevKey, 1-prevOn
				}
				in := kvInput{key: key}
				switch p := rng.IntN(10); {
				case p < 3:
					in.kind, in.value = opPut, fmt.Sprintf("c%d-%d", c, i)
				case p < 7:
					in.kind, in.value, in.expect = opCAS, fmt.Sprintf("c%d-%d", c, i), lastMod[key]
				default:
					in.kind = opRead
				}
				call := time.Since(start).Nanoseconds()
				out := runOp(replicas[on], in)
				ret := time.Since(start).Nanoseconds()
				if out.modRev > 0 {
					lastMod[key] = out.modRev
				}
				prevKey, prevOn = key, on
				hist.add(c, in, out, call, ret)
				switch n := done.Add(1); {
				case n == total/3:
					killOnce.Do(func() { close(killAt) })
				case n == 2*total/3:
					restartOnce.Do(func() { close(restartAt) })
				}
			}
		}()
	}
	<-killAt
	leader := e.leader(t, cli)
	e.c.Kill(leader)
	t.Logf("killed etcd member %d, the leader, after %d operations", leader, done.Load())
	<-restartAt
	e.c.Start(leader)
	wg.Wait()

	ops, acked := hist.operations()
	t.Logf("%d operations, %d writes acknowledged, %d of unknown outcome, %d refused", len(ops), len(acked), hist.unknown, hist.refused)
	ctx := context.Background()
	head, err := a.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameReplicas(t, head, a, b)
	for _, w := range acked {
		r, err := b.Revision(ctx, w.rev)
		if err != nil || len(r.Changes) != 1 || r.Changes[0].Key != w.key || string(r.Changes[0].New.Value) != w.value {
			t.Fatalf("acknowledged write %s=%s at revision %d: the log holds %+v, %v", w.key, w.value, w.rev, r, err)
		}
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel.ToModel(), ops, time.Minute)
	if res != porcupine.Ok {
		file := filepath.Join(t.TempDir(), "history.html")
		_ = porcupine.VisualizePath(kvModel.ToModel(), info, file)
		t.Fatalf("the clients' history is not linearizable (%s): see %s", res, file)
	}
}

// leader returns the index of the member that leads the cluster.
func (e *replicaEnv) leader(t *testing.T, cli *clientv3.Client) int {
	t.Helper()
	for i, ep := range e.c.Endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no member leads the cluster")
	return -1
}

// Quorum lost (two of three members down): writes (and new tokens) fail
// with ErrStoreUnavailable, reads (and the tokens) go on from the local
// state, and writes
// resume by themselves once the members are back.
func (e *replicaEnv) quorumLost(t *testing.T) {
	ctx := context.Background()
	a, b := e.replica(t), e.replica(t)
	put(t, a, "app/k", "before")
	if err := b.WaitRev(ctx, 1); err != nil {
		t.Fatal(err)
	}
	e.c.Kill(1)
	e.c.Kill(2)
	_, err := a.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put("app/k", []byte("during"), "")}})
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("a write without quorum: %v; want ErrStoreUnavailable", err)
	}
	for _, s := range []*Store{a, b} {
		if kv, err := s.Get(ctx, "app/k"); err != nil || string(kv.Value) != "before" {
			t.Fatalf("a read without quorum: %+v, %v", kv, err)
		}
		if h, err := s.History(ctx, HistoryQuery{Scope: Scope{Key: "app/k"}}); err != nil || len(h.Revisions) != 1 {
			t.Fatalf("history without quorum: %+v, %v", h, err)
		}
	}
	if _, err := b.Tokens(ctx); err != nil {
		t.Fatalf("the tokens without quorum: %v", err)
	}
	if err := a.CreateToken(ctx, Token{Name: "t", Hash: []byte("h")}); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("a token created without quorum: %v; want ErrStoreUnavailable", err)
	}
	if _, err := b.Sync(ctx); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("a linearizable read without quorum: %v; want ErrStoreUnavailable", err)
	}
	waitFor(t, "reporting etcd unavailable", func() bool { return errors.Is(b.Replication().Err, ErrStoreUnavailable) })
	// A replica that joined before opens without etcd, and serves reads.
	path := b.Path()
	b.Close()
	b = openReplica(t, path, WithEtcd(e.client(t), prefix(t)), WithEtcdTimeout(time.Second))
	if kv, err := b.Get(ctx, "app/k"); err != nil || string(kv.Value) != "before" || !errors.Is(b.Replication().Err, ErrStoreUnavailable) {
		t.Fatalf("a replica opened without quorum: %+v, %v, %+v", kv, err, b.Replication())
	}
	e.c.StartAll(1, 2)
	var r Revision
	waitFor(t, "taking writes again", func() bool {
		r, err = a.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put("app/k", []byte("after"), "")}})
		return err == nil
	})
	if err := b.WaitRev(ctx, r.Rev); err != nil {
		t.Fatal(err)
	}
	if kv, err := b.Get(ctx, "app/k"); err != nil || string(kv.Value) != "after" {
		t.Fatalf("after quorum is back, on b: %+v, %v", kv, err)
	}
	waitFor(t, "following the log again", func() bool { return b.Replication().Err == nil })
	sameReplicas(t, r.Rev, a, b)
}
