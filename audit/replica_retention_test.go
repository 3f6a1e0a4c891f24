package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// withCompactHook makes the store tell fn of each compaction it runs in
// the background or applies from its cluster.
func withCompactHook(fn func(CompactResult, error)) Option {
	return func(o *options) { o.onCompact = fn }
}

// Retention on replicas: a compaction decided by one replica is applied
// by every replica with the same record, the log's records below the
// horizon leave etcd and etcd's history is compacted; a replica started
// on an empty data dir afterwards starts from the cluster's snapshot at
// the horizon and verifies; one that stopped below the horizon is refused
// with a message that says what to do; writes go on without a gap; a
// forged compaction record is refused.
func (e *replicaEnv) retention(t *testing.T) {
	ctx := context.Background()
	mk := masterKey(t)
	type outcome struct {
		res CompactResult
		err error
	}
	compacted := make(chan outcome, 16)
	opts := func(hook bool) []Option {
		o := []Option{WithMasterKey(mk), WithLayers("file", StoreLayer), WithRetention(100, 0), WithCompactInterval(-1)}
		if hook {
			o = append(o, withCompactHook(func(res CompactResult, err error) {
				select {
				case compacted <- outcome{res, err}:
				default:
				}
			}))
		}
		return o
	}
	a, b := e.replica(t, opts(false)...), e.replica(t, opts(true)...)
	// waitB waits until b has applied the compaction that res reports.
	waitB := func(res CompactResult) {
		t.Helper()
		select {
		case got := <-compacted:
			if got.err != nil || got.res.Horizon != res.Horizon || got.res.ID != res.ID {
				t.Fatalf("b applied %+v, %v; the cluster decided %+v", got.res, got.err, res)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("b never applied compaction %d (its horizon is %d)", res.ID, b.Horizon())
		}
	}

	// A replica that stops at revision 100, long before the horizon.
	stale := e.replica(t, opts(false)...)
	for i := range 100 {
		put(t, a, fmt.Sprintf("app/%d", i%23), fmt.Sprint(i))
	}
	sameReplicas(t, 100, a, b, stale)
	stalePath := stale.Path()
	stale.Close()

	// 500 revisions from both replicas in turn (their races are another
	// test's): puts, deletes, secrets and a source's layer, so that the
	// state at the horizon has all of them.
	for i := 0; a.Rev() < 460; i++ {
		s := []*Store{a, b}[i%2]
		key := fmt.Sprintf("app/%d", i%23)
		var err error
		switch {
		case i%5 == 4:
			snap := map[string]LayerValue{fmt.Sprintf("app/%d", i%5): text(fmt.Sprint(i))}
			if i%3 == 0 {
				snap["app/file-only"] = text("f")
			}
			_, err = a.ApplySource(ctx, "file", snap)
		case i%11 == 5:
			_, err = s.Commit(ctx, Txn{Actor: "t", Ops: []Op{Delete(key)}})
		case i%7 == 3:
			_, err = s.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put(fmt.Sprintf("app/secret/%d", i%3), []byte(fmt.Sprint(i)), "").AsSecret()}})
		default:
			_, err = s.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put(key, []byte(fmt.Sprint(i)), "")}})
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	for a.Rev() < 500 {
		put(t, b, "app/fill", fmt.Sprint(a.Rev()))
	}
	head, err := b.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head != 500 {
		t.Fatalf("head %d, want 500", head)
	}
	sameReplicas(t, head, a, b)

	res, err := a.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := head - 100 + 1; res.Horizon != want || res.Revisions != want-1 || res.ID != 1 {
		t.Fatalf("Compact on a = %+v; want compaction 1 to horizon %d", res, want)
	}
	waitB(res)
	sameReplicas(t, head, a, b)

	// etcd keeps the newest 100 records and no history of what it removed.
	cli := e.client(t)
	l := a.elog
	n, err := cli.Get(ctx, l.LogKey(0), clientv3.WithRange(l.LogKey(1<<62)), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if n.Count != 100 {
		t.Fatalf("etcd holds %d records of the log after the compaction; want 100", n.Count)
	}
	if _, err := cli.Get(ctx, l.LogKey(1), clientv3.WithRev(2)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("a read of etcd's history before the compaction: %v; want ErrCompacted", err)
	}

	// A new replica starts from the snapshot at the horizon.
	c := e.replica(t, opts(false)...)
	if c.Rev() != head || c.Horizon() != res.Horizon {
		t.Fatalf("the new replica opened at revision %d, horizon %d; want %d, %d", c.Rev(), c.Horizon(), head, res.Horizon)
	}
	sameReplicas(t, head, a, b, c)
	if kv, err := c.Get(ctx, "app/secret/0"); err != nil || kv.Value == nil {
		t.Fatalf("a secret on the new replica: %+v, %v", kv, err)
	}

	// A replica that stopped below the horizon cannot catch up from the
	// log: it is refused, with what to do.
	if _, err := Open(ctx, stalePath, WithEtcd(cli, prefix(t)), WithMasterKey(mk), WithLayers("file", StoreLayer)); !errors.Is(err, ErrBehindHorizon) {
		t.Fatalf("a replica behind the horizon: %v; want ErrBehindHorizon", err)
	}

	// Writes go on, on every replica, without a gap; the new replica
	// decides the next compaction and the others apply it.
	for i := range 30 {
		put(t, []*Store{a, b, c}[i%3], fmt.Sprintf("app/%d", i%4), fmt.Sprint(i))
	}
	head += 30
	res2, err := c.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res2.ID != 2 || res2.From != res.Horizon || res2.Horizon != head-100+1 {
		t.Fatalf("Compact on the new replica = %+v; want compaction 2 from %d to %d", res2, res.Horizon, head-100+1)
	}
	waitB(res2)
	put(t, b, "app/last", "1")
	sameReplicas(t, head+1, a, b, c)

	// A compaction record forged in etcd (compaction 2's, under the next
	// ID, to a newer horizon) is refused: every replica removes nothing,
	// reports it and refuses writes.
	two, err := cli.Get(ctx, prefix(t)+"/log/compaction/"+fmt.Sprintf("%020d", 2))
	if err != nil || len(two.Kvs) != 1 {
		t.Fatalf("compaction 2 in etcd: %v", err)
	}
	var forged map[string]any
	if err := json.Unmarshal(two.Kvs[0].Value, &forged); err != nil {
		t.Fatal(err)
	}
	forged["id"], forged["from"], forged["horizon"] = 3, res2.Horizon, res2.Horizon+10
	v, _ := json.Marshal(forged)
	if _, err := cli.Put(ctx, prefix(t)+"/log/compaction/"+fmt.Sprintf("%020d", 3), string(v)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b, c} {
		waitFor(t, "refusing the forged compaction", func() bool { return errors.Is(s.Replication().Err, ErrDiverged) })
		if s.Horizon() != res2.Horizon {
			t.Fatalf("a replica compacted to %d after the forged record; want %d", s.Horizon(), res2.Horizon)
		}
		if _, err := s.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put("app/x", []byte("1"), "")}}); !errors.Is(err, ErrDiverged) {
			t.Fatalf("a write on a replica that met the forged compaction: %v; want ErrDiverged", err)
		}
	}
}

// A replica cut off from etcd (its only member stopped) while the others
// write and compact past it cannot catch up when etcd is back: it reports
// ErrBehindHorizon and refuses writes with it, and goes on serving reads.
// The other replicas' client avoids that member.
func (e *replicaEnv) cutOffDuringCompaction(t *testing.T) {
	ctx := context.Background()
	newClient := func(endpoints ...string) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	opts := func(cli *clientv3.Client) []Option {
		return []Option{WithEtcd(cli, prefix(t)), WithEtcdTimeout(2 * time.Second), WithRetention(100, 0), WithCompactInterval(-1)}
	}
	w := openReplica(t, filepath.Join(t.TempDir(), "w.db"), opts(newClient(e.c.Endpoints[0], e.c.Endpoints[1]))...)
	lag := openReplica(t, filepath.Join(t.TempDir(), "lag.db"), opts(newClient(e.c.Endpoints[2]))...)
	for i := range 20 {
		put(t, w, fmt.Sprintf("app/%d", i%5), fmt.Sprint(i))
	}
	if err := lag.WaitRev(ctx, 20); err != nil {
		t.Fatal(err)
	}
	e.c.Stop(2)
	for i := 0; w.Rev() < 220; i++ {
		// Writes go on on the two other members (after an election if
		// the stopped one led).
		_, err := w.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put(fmt.Sprintf("app/%d", i%5), []byte(fmt.Sprint(i)), "")}})
		if err != nil && !errors.Is(err, ErrStoreUnavailable) {
			t.Fatal(err)
		}
	}
	if res, err := w.Compact(ctx); err != nil || res.Horizon != w.Rev()-100+1 {
		t.Fatalf("Compact = %+v, %v", res, err)
	}
	e.c.Start(2)
	waitFor(t, "reporting that it is behind the horizon", func() bool { return errors.Is(lag.Replication().Err, ErrBehindHorizon) })
	if _, err := lag.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put("app/x", []byte("1"), "")}}); !errors.Is(err, ErrBehindHorizon) {
		t.Fatalf("a write on the replica behind the horizon: %v; want ErrBehindHorizon", err)
	}
	if kv, err := lag.Get(ctx, "app/0"); err != nil || string(kv.Value) != "15" {
		t.Fatalf("a read on the replica behind the horizon: %+v, %v; want what it had", kv, err)
	}
}

// A compaction decided while a replica is behind (stopped here, as one
// whose apply is paused) stops its horizon at the revision after the one
// that replica has applied (WithHorizonFloor): the replica catches up
// from the log when it comes back, instead of being refused with
// ErrBehindHorizon; once it reports a newer revision, the next compaction
// goes as far as the retention allows. A floor that cannot be read fails
// the compaction, which removes nothing.
func (e *replicaEnv) horizonFloor(t *testing.T) {
	ctx := context.Background()
	var (
		floor    atomic.Int64
		floorErr atomic.Pointer[error]
	)
	w := e.replica(t, WithRetention(10, 0), WithCompactInterval(-1), WithHorizonFloor(func(context.Context) (int64, bool, error) {
		if p := floorErr.Load(); p != nil {
			return 0, false, *p
		}
		return floor.Load(), true, nil
	}))
	slow := e.replica(t)
	for i := range 20 {
		put(t, w, fmt.Sprintf("app/%d", i%5), fmt.Sprint(i))
	}
	if err := slow.WaitRev(ctx, 20); err != nil {
		t.Fatal(err)
	}
	floor.Store(slow.Rev())
	slowPath := slow.Path()
	slow.Close()
	for w.Rev() < 60 {
		put(t, w, fmt.Sprintf("app/%d", w.Rev()%5), fmt.Sprint(w.Rev()))
	}

	unreadable := errors.New("the registrations do not answer")
	floorErr.Store(&unreadable)
	if res, err := w.Compact(ctx); !errors.Is(err, unreadable) || res.Revisions != 0 || w.Horizon() != 0 {
		t.Fatalf("Compact with a floor that cannot be read = %+v, %v (horizon %d); want its error and nothing removed", res, err, w.Horizon())
	}
	floorErr.Store(nil)
	res, err := w.Compact(ctx)
	if err != nil || res.Horizon != 21 || res.Revisions != 20 {
		t.Fatalf("Compact with a replica at revision 20 = %+v, %v; want horizon 21 (the retention alone: 51)", res, err)
	}

	slow = openReplica(t, slowPath, WithEtcd(e.client(t), prefix(t)), WithEtcdTimeout(2*time.Second))
	sameReplicas(t, 60, w, slow)
	floor.Store(slow.Rev())
	res, err = w.Compact(ctx)
	if err != nil || res.From != 21 || res.Horizon != 51 {
		t.Fatalf("Compact once the replica reports revision 60 = %+v, %v; want from 21 to horizon 51", res, err)
	}
	waitFor(t, "the replica behind applying the second compaction", func() bool { return slow.Horizon() == 51 })
	put(t, w, "app/last", "1")
	sameReplicas(t, 61, w, slow)
}

// sameCompactions checks that every store holds the same compaction
// records.
func sameCompactions(t *testing.T, stores ...*Store) {
	t.Helper()
	var first []Compaction
	for i, s := range stores {
		cs, err := s.Compactions(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = cs
			continue
		}
		if !reflect.DeepEqual(cs, first) {
			t.Fatalf("replica %d's compaction records differ from replica 0's:\n%+v\n%+v", i, cs, first)
		}
	}
}
