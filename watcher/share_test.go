package watcher

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/configd/configd/audit"
)

// countingStore is a real store whose List calls are counted and, while
// gate is set, held until gate is closed.
type countingStore struct {
	*audit.Store
	lists   atomic.Int64
	active  atomic.Int64 // List calls under way
	maxSeen atomic.Int64
	entered chan struct{} // a List call started (buffered)
	gate    chan struct{} // nil: List does not wait
}

func (s *countingStore) List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error) {
	s.lists.Add(1)
	n := s.active.Add(1)
	defer s.active.Add(-1)
	for {
		m := s.maxSeen.Load()
		if n <= m || s.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return s.Store.List(ctx, prefix, opts...)
}

// setupCounting is setup with a countingStore between the hub and the
// store, whose List calls wait for its gate when gated.
func setupCounting(t *testing.T, gated bool, opts ...Option) (*audit.Store, *countingStore, *Hub) {
	t.Helper()
	var cs *countingStore
	st, hub := setupOver(t, func(st *audit.Store) Store {
		cs = &countingStore{Store: st, entered: make(chan struct{}, 1000)}
		if gated {
			cs.gate = make(chan struct{})
		}
		return cs
	}, opts...)
	return st, cs, hub
}

// eventually waits until cond holds, yielding meanwhile, for at most 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 10s", what)
		}
		runtime.Gosched()
	}
}

func (h *Hub) snapshotWaiters(f Filter, at int64) int {
	_, sc, _ := f.normalize()
	h.snaps.mu.Lock()
	defer h.snaps.mu.Unlock()
	if r := h.snaps.m[snapshotKey{sc, at}]; r != nil {
		return r.waiters
	}
	return 0
}

func TestConcurrentSnapshotsOfAScopeReadTheStoreOnceAndEncodeOnce(t *testing.T) {
	st, cs, hub := setupCounting(t, true)
	var kvs []string
	for i := range 100 {
		kvs = append(kvs, fmt.Sprintf("app/k%03d", i), fmt.Sprint(i))
	}
	at := put(t, st, append(kvs, "other", "x")...)
	f := Filter{Prefixes: []string{"app/"}}
	const n = 50
	ws := make([]*Watcher, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ws[i], errs[i] = hub.Watch(context.Background(), f, 0) })
	}
	<-cs.entered
	// Every Watch call waits for the one read under way.
	eventually(t, "waiting together", func() bool { return hub.snapshotWaiters(f, at) == n })
	close(cs.gate)
	wg.Wait()
	var encodes atomic.Int64
	encode := func(b Batch) []byte { encodes.Add(1); return []byte(fmt.Sprint(len(b.Events))) }
	for i, w := range ws {
		if errs[i] != nil {
			t.Fatalf("watch %d: %v", i, errs[i])
		}
		defer w.Close()
		b := next(t, w)
		if b.Kind != KindSnapshot || b.Rev != at || len(b.Events) != 100 || b.Events[7].Key != "app/k007" || string(b.Events[7].Value) != "7" {
			t.Fatalf("watch %d: first batch %v at %d with %d events", i, b.Kind, b.Rev, len(b.Events))
		}
		if got := string(b.Encoded(struct{}{}, encode)); got != "100" {
			t.Fatalf("encoded %q", got)
		}
	}
	if got := cs.lists.Load(); got != 1 {
		t.Errorf("%d watches with since=0 read the store %d times, want once", n, got)
	}
	if got := encodes.Load(); got != 1 {
		t.Errorf("the snapshot was encoded %d times for %d watchers, want once", got, n)
	}

	// A watch that starts while those still hold the snapshot gets it too.
	late, err := hub.Watch(context.Background(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if b := next(t, late); b.Rev != at || len(b.Events) != 100 || string(b.Encoded(struct{}{}, encode)) != "100" {
		t.Fatalf("late watch: %v at %d", b.Kind, b.Rev)
	}
	if cs.lists.Load() != 1 || encodes.Load() != 1 {
		t.Errorf("late watch: %d reads, %d encodings, want 1 and 1", cs.lists.Load(), encodes.Load())
	}

	// After a commit, a new watch gets the scope at the new revision,
	// and every watcher gets the change once.
	rev := put(t, st, "app/k007", "seven")
	fresh, err := hub.Watch(context.Background(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if b := next(t, fresh); b.Kind != KindSnapshot || b.Rev != rev || string(b.Events[7].Value) != "seven" {
		t.Fatalf("watch after a commit: %v at %d, app/k007=%s", b.Kind, b.Rev, b.Events[7].Value)
	}
	if cs.lists.Load() != 2 {
		t.Errorf("reads after a commit: %d, want 2", cs.lists.Load())
	}
	for i, w := range append(ws, late) {
		b := next(t, w)
		if b.Kind != KindChanges || b.Rev != rev || len(b.Events) != 1 || string(b.Events[0].Value) != "seven" {
			t.Fatalf("watch %d: after the snapshot %v at %d", i, b.Kind, b.Rev)
		}
		if b.shared == nil {
			t.Fatalf("watch %d: the changes of a scope with %d watchers are not shared", i, n+1)
		}
	}
}

func TestChangesAreSharedOnlyWithinAScope(t *testing.T) {
	st, hub := setup(t)
	ctx := context.Background()
	a1, _ := hub.Watch(ctx, Filter{Keys: []string{"a"}}, 0)
	a2, _ := hub.Watch(ctx, Filter{Keys: []string{"a"}}, 0)
	b1, _ := hub.Watch(ctx, Filter{Keys: []string{"a", "b"}}, 0)
	for _, w := range []*Watcher{a1, a2, b1} {
		defer w.Close()
		next(t, w) // the empty snapshot
	}
	put(t, st, "a", "1", "b", "2")
	enc := func(b Batch) []byte {
		var s string
		for _, e := range b.Events {
			s += e.Key + "=" + string(e.Value) + " "
		}
		return []byte(s)
	}
	type key struct{}
	for name, tc := range map[string]struct {
		w    *Watcher
		want string
	}{"a1": {a1, "a=1 "}, "a2": {a2, "a=1 "}, "b1": {b1, "a=1 b=2 "}} {
		b := next(t, tc.w)
		if got := string(b.Encoded(key{}, enc)); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

func TestSnapshotReadsAreBoundedAndCommitsGoOn(t *testing.T) {
	st, cs, hub := setupCounting(t, true, WithSnapshotReads(2))
	put(t, st, "s0/k", "0", "s1/k", "1", "s2/k", "2", "s3/k", "3", "s4/k", "4", "s5/k", "5")
	const n = 6
	ws := make([]*Watcher, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ws[i], errs[i] = hub.Watch(context.Background(), Filter{Prefixes: []string{fmt.Sprintf("s%d/", i)}}, 0)
		})
	}
	<-cs.entered
	<-cs.entered
	// Two reads hold their turns; the others wait. A commit meanwhile is
	// neither blocked nor lost.
	rev := put(t, st, "s0/k", "new", "s5/k", "new")
	if hub.Rev() != rev {
		t.Fatalf("hub at %d after commit %d", hub.Rev(), rev)
	}
	close(cs.gate)
	wg.Wait()
	if got := cs.maxSeen.Load(); got != 2 {
		t.Errorf("%d snapshot reads at once, want at most 2", got)
	}
	for i, w := range ws {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		defer w.Close()
		b := next(t, w)
		if b.Kind != KindSnapshot || len(b.Events) != 1 {
			t.Fatalf("watch %d: %v with %d events", i, b.Kind, len(b.Events))
		}
		if i == 0 || i == n-1 {
			// The snapshot is at the revision the watch started at:
			// the commit comes after it, as a change, unless the
			// snapshot already holds it.
			if string(b.Events[0].Value) != "new" {
				if c := next(t, w); c.Kind != KindChanges || c.Rev != rev || string(c.Events[0].Value) != "new" {
					t.Fatalf("watch %d: after the snapshot %v at %d", i, c.Kind, c.Rev)
				}
			} else if b.Rev != rev {
				t.Fatalf("watch %d: snapshot with the new value at %d, want %d", i, b.Rev, rev)
			}
		}
	}
}

func TestASnapshotWaiterGivingUpLeavesTheOthersTheirSnapshot(t *testing.T) {
	st, cs, hub := setupCounting(t, true)
	at := put(t, st, "app/a", "1")
	f := Filter{Prefixes: []string{"app/"}}
	first, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := hub.Watch(first, f, 0)
		errc <- err
	}()
	<-cs.entered
	type res struct {
		w   *Watcher
		err error
	}
	other := make(chan res, 1)
	go func() {
		w, err := hub.Watch(context.Background(), f, 0)
		other <- res{w, err}
	}()
	eventually(t, "two waiting", func() bool { return hub.snapshotWaiters(f, at) == 2 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled watch: %v", err)
	}
	close(cs.gate)
	r := <-other
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.w.Close()
	if b := next(t, r.w); b.Kind != KindSnapshot || b.Rev != at || len(b.Events) != 1 {
		t.Fatalf("the other watch got %v at %d", b.Kind, b.Rev)
	}
	if hub.Len() != 1 {
		t.Fatalf("%d watchers, want 1", hub.Len())
	}
}

func TestAnAbandonedSnapshotReadIsCanceled(t *testing.T) {
	st, cs, hub := setupCounting(t, true)
	put(t, st, "app/a", "1")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := hub.Watch(ctx, Filter{Prefixes: []string{"app/"}}, 0)
		errc <- err
	}()
	<-cs.entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled watch: %v", err)
	}
	// The read held by the gate sees its context canceled and ends.
	eventually(t, "read ended", func() bool { return cs.active.Load() == 0 })
	hub.snaps.mu.Lock()
	left := len(hub.snaps.m)
	hub.snaps.mu.Unlock()
	if left != 0 || hub.Len() != 0 {
		t.Fatalf("after the only waiter gave up: %d snapshots, %d watchers", left, hub.Len())
	}
}

func TestASnapshotIsForgottenOnceNoWatcherHoldsIt(t *testing.T) {
	st, cs, hub := setupCounting(t, false)
	put(t, st, "app/a", "1")
	f := Filter{Prefixes: []string{"app/"}}
	w, err := hub.Watch(context.Background(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b := next(t, w); b.Kind != KindSnapshot {
		t.Fatalf("first batch %v", b.Kind)
	}
	w.Close()
	eventually(t, "forgotten", func() bool {
		runtime.GC()
		hub.snaps.mu.Lock()
		defer hub.snaps.mu.Unlock()
		return len(hub.snaps.m) == 0
	})
	w, err = hub.Watch(context.Background(), f, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if b := next(t, w); b.Kind != KindSnapshot || len(b.Events) != 1 {
		t.Fatalf("first batch %v", b.Kind)
	}
	if got := cs.lists.Load(); got != 2 {
		t.Fatalf("reads: %d, want 2 (the first snapshot was let go)", got)
	}
}
