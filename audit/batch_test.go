package audit

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/keyspace"
)

// TestMain checks, in every test's batches (not in benchmarks), that the
// writer's in-memory view is what the database holds: its LtHash of the
// state is the one of the rows of kv and layer_kv, kv equals the mirror
// with the overlay applied, and, unless the writer reads layer rows, no key
// has layer rows other than its store layer row mirroring kv.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		checkBatch = checkBatchView
	}
	os.Exit(m.Run())
}

var batchCount atomic.Int64

// failBatches, when above 0, fails that many of the next batches after
// their rows are written, before they are made durable (no test here runs
// in parallel).
var failBatches atomic.Int64

var errInjected = errors.New("a batch failed on purpose")

func checkBatchView(ctx context.Context, v commit.BatchView) error {
	batchCount.Add(1)
	if failBatches.Load() > 0 {
		failBatches.Add(-1)
		return errInjected
	}
	sum, _, _, err := chain.StateOf(ctx, v.Batch, nil)
	if err != nil {
		return err
	}
	if sum != v.State {
		return errors.New("check: the writer's LtHash of the state is not the one of the rows of kv and layer_kv")
	}
	if v.Overlay == nil {
		return nil
	}
	for key, want := range v.Overlay {
		got, err := v.Batch.KV(ctx, key)
		if err != nil {
			return err
		}
		if got != nil {
			c := *got
			if err := v.Keys.RevealKV(&c); err != nil {
				return err
			}
			got = &c
		}
		if !sameKV(got, want) {
			return fmt.Errorf("check: key %q: kv holds %+v, the overlay %+v", key, got, want)
		}
	}
	if v.Layered {
		return nil
	}
	layered, err := sqlitedb.Layered(ctx, v.Batch, v.Layers)
	if err != nil {
		return err
	}
	if layered {
		return errors.New("check: the database has layer rows that the writer does not know of")
	}
	return nil
}

func sameKV(a, b *KeyValue) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.ContentType == b.ContentType &&
		a.CreateRev == b.CreateRev && a.ModRev == b.ModRev && a.Version == b.Version && a.Secret == b.Secret
}

// gate holds the writer inside a commit hook, so that requests queued
// meanwhile are taken as one batch.
type gate struct {
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (g *gate) hook(Revision) {
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if armed {
		close(g.entered)
		<-g.release
	}
}

// openGated opens a store whose writer batch() can hold.
func openGated(t *testing.T, opts ...Option) (*Store, *gate) {
	g := &gate{}
	return openTest(t, append(opts, WithCommitHook(g.hook))...), g
}

// batch commits txns in one group commit, in order, and returns their
// results; a txn of one op on a schema's record is queued as a schema's.
func (g *gate) batch(t *testing.T, s *Store, txns ...Txn) ([]Revision, []error) {
	t.Helper()
	ctx := context.Background()
	g.mu.Lock()
	g.armed, g.entered, g.release = true, make(chan struct{}), make(chan struct{})
	g.mu.Unlock()
	blocked := make(chan error, 1)
	go func() {
		_, err := s.Commit(ctx, Txn{Actor: "gate", Ops: []Op{Put(fmt.Sprintf("gate/%d", s.Rev()), []byte("x"), "")}})
		blocked <- err
	}()
	<-g.entered
	reqs := make([]commit.Pending, len(txns))
	for i := range txns {
		queue := s.w.QueueCommit
		if len(txns[i].Ops) == 1 && keyspace.Reserved(txns[i].Ops[0].Key) {
			queue = func(ctx context.Context, txn Txn) (commit.Pending, error) { return s.w.QueueSchema(ctx, txn, false) }
		}
		p, err := queue(ctx, txns[i])
		if err != nil {
			t.Fatal(err)
		}
		reqs[i] = p
	}
	close(g.release)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	revs, errs := make([]Revision, len(txns)), make([]error, len(txns))
	for i, p := range reqs {
		revs[i], errs[i] = p.Wait()
	}
	return revs, errs
}

// Requests on one key in one batch see each other's changes.
func TestBatchOverlaySameKey(t *testing.T) {
	s, g := openGated(t)
	before := batchCount.Load()
	revs, errs := g.batch(t, s,
		Txn{Actor: "a", Ops: []Op{Put("k", []byte("one"), "").WithModRev(0)}},
		// Sees the first request's put: created at its revision.
		Txn{Actor: "b", Ops: []Op{Put("k", []byte("two"), "").WithModRev(s.Rev() + 2)}},
		// Conflicts: k exists now.
		Txn{Actor: "c", Ops: []Op{Put("k", []byte("three"), "").WithModRev(0)}},
		Txn{Actor: "d", Ops: []Op{Delete("k").WithModRev(s.Rev() + 3)}},
		Txn{Actor: "e", Ops: []Op{Put("k", []byte("five"), "").WithModRev(0)}},
	)
	if n := batchCount.Load() - before; n != 2 { // the gate's, then ours
		t.Fatalf("%d batches, want 2", n)
	}
	for i, err := range errs {
		if (i == 2) != (err != nil) {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	var ce *ConflictError
	if !errors.As(errs[2], &ce) || ce.Actual != revs[0].Rev+1 {
		t.Fatalf("conflict = %+v", errs[2])
	}
	if c := revs[1].Changes[0]; c.Old == nil || string(c.Old.Value) != "one" || c.New.Version != 2 || c.New.CreateRev != revs[0].Rev {
		t.Fatalf("second change = %+v / %+v", c.Old, c.New)
	}
	if c := revs[3].Changes[0]; c.Type != OpDelete || string(c.Old.Value) != "two" {
		t.Fatalf("delete = %+v", c)
	}
	if c := revs[4].Changes[0]; c.Old != nil || c.New.Version != 1 || c.New.CreateRev != revs[4].Rev {
		t.Fatalf("recreate = %+v", c)
	}
	if v := get(t, s, "k"); v != "five" {
		t.Fatalf("k = %q", v)
	}
	if res := verify(t, s); !res.OK {
		t.Fatalf("verify = %+v", res)
	}
	// The same state after a restart, read from the database.
	s2 := reopen(t, s)
	if kv, err := s2.Get(context.Background(), "k"); err != nil || string(kv.Value) != "five" || kv.ModRev != revs[4].Rev {
		t.Fatalf("after reopen: %+v %v", kv, err)
	}
}

// The commit log inserts a key's kv row when the key is new before the
// batch and updates it when it is not (no upsert): keys that exist before
// a batch and are changed, deleted and written again, or written twice in
// it, and new ones beside them, hold what the requests left, in the
// database too. The log's transactions skip foreign key checks; the
// writer's connection checks them again after.
func TestBatchInsertsNewKeysAndUpdatesOldOnes(t *testing.T) {
	s, g := openGated(t)
	put(t, s, "old/a", "a1")
	put(t, s, "old/b", "b1")
	put(t, s, "old/c", "c1")
	_, errs := g.batch(t, s,
		Txn{Actor: "a", Ops: []Op{Put("old/a", []byte("a2"), "")}},
		Txn{Actor: "b", Ops: []Op{Delete("old/b")}},
		Txn{Actor: "c", Ops: []Op{Put("old/b", []byte("b3"), "")}},
		Txn{Actor: "d", Ops: []Op{Put("new/x", []byte("x1"), ""), Put("old/c", []byte("c2"), "")}},
		Txn{Actor: "e", Ops: []Op{Put("new/x", []byte("x2"), ""), Put("new/y", []byte("y1"), "")}},
		Txn{Actor: "f", Ops: []Op{Delete("old/c")}},
	)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	want := map[string]string{"old/a": "a2", "old/b": "b3", "new/x": "x2", "new/y": "y1"}
	check := func(s *Store) {
		t.Helper()
		for k, v := range want {
			if got := get(t, s, k); got != v {
				t.Fatalf("%s = %q, want %q", k, got, v)
			}
		}
		if _, err := s.Get(context.Background(), "old/c"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old/c: %v, want not found", err)
		}
		if res := verify(t, s); !res.OK {
			t.Fatalf("verify = %+v", res)
		}
	}
	check(s)
	if kv, err := s.Get(context.Background(), "old/b"); err != nil || kv.Version != 1 {
		t.Fatalf("old/b written again: %+v %v, want version 1", kv, err)
	}
	_, err := s.wdb.ExecContext(context.Background(), `INSERT INTO changes (rev, key, op) VALUES (?, 'orphan', 1)`, s.Rev()+100)
	if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Fatalf("a change of no revision on the writer's connection: %v, want a foreign key error", err)
	}
	check(reopen(t, s))
}

// reopen closes s and opens its database again, closed when the test ends.
func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	path := s.Path()
	s.Close()
	s2, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

// A source that gets rows after store-only writes, in the same batch and
// in later ones, owns its keys: the writer reads layer rows from then on.
func TestBatchSourceAfterStoreOnlyWrites(t *testing.T) {
	s, g := openGated(t, WithLayers("file", StoreLayer, "env"))
	put(t, s, "app/a", "store")
	put(t, s, "app/low", "store")
	ctx := context.Background()
	// One batch: a store write, the env source, a store write of its key.
	g.mu.Lock()
	g.armed, g.entered, g.release = true, make(chan struct{}), make(chan struct{})
	g.mu.Unlock()
	go func() { _, _ = s.Commit(ctx, Txn{Actor: "gate", Ops: []Op{Put("gate", []byte("x"), "")}}) }()
	<-g.entered
	mk := func(p commit.Pending, err error) commit.Pending {
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t1 := Txn{Actor: "a", Ops: []Op{Put("app/a", []byte("store 2"), "")}}
	t3 := Txn{Actor: "c", Ops: []Op{Put("app/b", []byte("store"), "")}}
	r1 := mk(s.w.QueueCommit(ctx, t1))
	r2 := mk(s.w.QueueSource(ctx, "env", map[string]LayerValue{"app/b": {Value: []byte("env"), ContentType: TypeText}}, Fence{}))
	r3 := mk(s.w.QueueCommit(ctx, t3))
	close(g.release)
	if _, err := r1.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := r3.Wait(); !errors.Is(err, ErrOwned) {
		t.Fatalf("store write of env's key in the same batch: %v", err)
	}
	if _, err := s.Commit(ctx, Txn{Actor: "d", Ops: []Op{Put("app/b", []byte("store"), "")}}); !errors.Is(err, ErrOwned) {
		t.Fatalf("store write of env's key: %v", err)
	}
	// A lower source: a store delete leaves a tombstone.
	if _, err := s.ApplySource(ctx, "file", map[string]LayerValue{"app/low": {Value: []byte("file"), ContentType: TypeText}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Commit(ctx, Txn{Actor: "e", Ops: []Op{Delete("app/low")}})
	if err != nil || len(r.LayerChanges) != 1 || !r.LayerChanges[0].New.Tombstone {
		t.Fatalf("delete over a lower source: %+v %v", r, err)
	}
	// Restart with the sources no longer feeding: the layer rows are still
	// there, and still enforced.
	path := s.Path()
	s.Close()
	s2, err := Open(ctx, path, WithLayers("file", StoreLayer, "env"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Commit(ctx, Txn{Actor: "f", Ops: []Op{Put("app/b", []byte("store"), "")}}); !errors.Is(err, ErrOwned) {
		t.Fatalf("after reopen, store write of env's key: %v", err)
	}
	// The tombstone's key comes back with a layer change from the tombstone.
	r, err = s2.Commit(ctx, Txn{Actor: "g", Ops: []Op{Put("app/low", []byte("again"), "")}})
	if err != nil || len(r.LayerChanges) != 1 || r.LayerChanges[0].Old == nil || !r.LayerChanges[0].Old.Tombstone {
		t.Fatalf("put over the tombstone: %+v %v", r, err)
	}
}

// A store opened store-only over a database whose source layer is
// configured later: the source's rows, written by an earlier
// configuration, are enforced at once.
func TestLayerConfiguredLater(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/configd.db"
	s, err := Open(ctx, path, WithLayers(StoreLayer, "env"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplySource(ctx, "env", map[string]LayerValue{"app/x": {Value: []byte("env"), ContentType: TypeText}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Without env: its rows are ignored, the store may write the key.
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, Txn{Actor: "a", Ops: []Op{Put("app/x", []byte("store"), "")}}); err != nil {
		t.Fatalf("without env: %v", err)
	}
	s.Close()
	s, err = Open(ctx, path, WithLayers(StoreLayer, "env"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Commit(ctx, Txn{Actor: "b", Ops: []Op{Put("app/x", []byte("store 2"), "")}}); !errors.Is(err, ErrOwned) {
		t.Fatalf("with env again: %v", err)
	}
}

// Many requests in one batch go through the multi-row statements of
// every size.
func TestBatchManyRequests(t *testing.T) {
	s, g := openGated(t)
	var txns []Txn
	for i := range 200 {
		ops := []Op{Put(fmt.Sprintf("k/%d", i%50), []byte(fmt.Sprint(i)), "")}
		if i%7 == 0 {
			ops = append(ops, Delete(fmt.Sprintf("k/%d", (i+1)%50)))
		}
		txns = append(txns, Txn{Actor: "m", Ops: ops})
	}
	_, errs := g.batch(t, s, txns...)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if res := verify(t, s); !res.OK || res.Head != s.Rev() {
		t.Fatalf("verify = %+v", res)
	}
}
