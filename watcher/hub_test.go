package watcher

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

// setup opens a real store whose commits feed a hub.
func setup(t *testing.T, opts ...Option) (*audit.Store, *Hub) {
	t.Helper()
	return setupOver(t, func(st *audit.Store) Store { return st }, opts...)
}

// setupOver is setup with the hub reading the store through over(st).
func setupOver(t *testing.T, over func(*audit.Store) Store, opts ...Option) (*audit.Store, *Hub) {
	t.Helper()
	return setupStore(t, nil, over, opts...)
}

// setupStore is setupOver with the store opened with storeOpts. The hub's
// own tests wire it to the store here, as server/core does for configd
// (which sits above this package).
func setupStore(t *testing.T, storeOpts []audit.Option, over func(*audit.Store) Store, opts ...Option) (*audit.Store, *Hub) {
	t.Helper()
	var hub *Hub
	var ready sync.WaitGroup
	ready.Add(1)
	st, err := audit.Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"),
		append(storeOpts, audit.WithCommitHook(func(r audit.Revision) { ready.Wait(); hub.Publish(r) }))...)
	if err != nil {
		t.Fatal(err)
	}
	hub = New(over(st), st.Rev(), opts...)
	ready.Done()
	t.Cleanup(func() { hub.Close(); st.Close() })
	return st, hub
}

func put(t *testing.T, st *audit.Store, kvs ...string) int64 {
	t.Helper()
	var ops []audit.Op
	for i := 0; i+1 < len(kvs); i += 2 {
		ops = append(ops, audit.Put(kvs[i], []byte(kvs[i+1]), ""))
	}
	r, err := st.Commit(context.Background(), audit.Txn{Actor: "alice", Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return r.Rev
}

func next(t *testing.T, w *Watcher) Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return b
}

func TestWatchFromZeroStartsWithASnapshotThenEveryChange(t *testing.T) {
	st, hub := setup(t)
	put(t, st, "app/a", "1", "app/b", "2", "other", "x")
	w, err := hub.Watch(context.Background(), Filter{Prefixes: []string{"app"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b := next(t, w)
	if b.Kind != KindSnapshot || b.Rev != 1 || len(b.Events) != 2 || b.Events[0].Key != "app/a" {
		t.Fatalf("first batch = %+v", b)
	}
	put(t, st, "other", "y")                 // 2: outside the scope
	put(t, st, "app/a", "10", "app/c", "30") // 3: one batch for two keys
	b = next(t, w)
	if b.Kind != KindChanges || b.Rev != 3 || len(b.Events) != 2 || string(b.Events[1].Value) != "30" || b.Actor != "alice" {
		t.Fatalf("second batch = %+v", b)
	}
	st.Commit(context.Background(), audit.Txn{Ops: []audit.Op{audit.Delete("app/b")}})
	b = next(t, w)
	if b.Rev != 4 || b.Events[0].Type != audit.OpDelete || b.Events[0].Key != "app/b" {
		t.Fatalf("delete batch = %+v", b)
	}
}

func TestWatchResumesFromSinceWithoutLossOrRepeat(t *testing.T) {
	for _, window := range []int{0, 3, 1000} { // from the store, partly, from memory
		t.Run(fmt.Sprintf("window=%d", window), func(t *testing.T) {
			st, hub := setup(t, WithWindow(window))
			for i := 1; i <= 10; i++ {
				put(t, st, "k", fmt.Sprint(i))
			}
			w, err := hub.Watch(context.Background(), Filter{Keys: []string{"k"}}, 4)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			put(t, st, "k", "11")
			for want := int64(5); want <= 11; want++ {
				b := next(t, w)
				if b.Rev != want || string(b.Events[0].Value) != fmt.Sprint(want) {
					t.Fatalf("got rev %d value %s, want %d", b.Rev, b.Events[0].Value, want)
				}
			}
		})
	}
}

func TestWatchStartedDuringAWriteStormMissesNothing(t *testing.T) {
	st, hub := setup(t, WithWindow(50))
	const total = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= total; i++ {
			if _, err := st.Commit(context.Background(), audit.Txn{Ops: []audit.Op{audit.Put("k", []byte(fmt.Sprint(i)), "")}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for st.Rev() < 100 {
		runtime.Gosched()
	}
	since := st.Rev() - 80 // older than the window: replayed from the store
	w, err := hub.Watch(context.Background(), Filter{Keys: []string{"k"}}, since)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for want := since + 1; want <= total; want++ {
		b := next(t, w)
		if b.Rev != want {
			t.Fatalf("got rev %d, want %d", b.Rev, want)
		}
	}
	wg.Wait()
}

func TestASlowWatcherIsCutOffAndOthersGetEverything(t *testing.T) {
	resyncs := 0
	st, hub := setup(t, WithQueueLimit(5), WithResyncHook(func() { resyncs++ }))
	slow, _ := hub.Watch(context.Background(), Filter{Prefixes: []string{""}}, 0)
	fast, _ := hub.Watch(context.Background(), Filter{Prefixes: []string{""}}, 0)
	defer fast.Close()
	if b := next(t, fast); b.Kind != KindSnapshot {
		t.Fatalf("fast first = %+v", b)
	}
	for i := 1; i <= 20; i++ {
		put(t, st, "k", fmt.Sprint(i))
		if b := next(t, fast); b.Rev != int64(i) {
			t.Fatalf("fast got %d, want %d", b.Rev, i)
		}
	}
	// The slow one never read: it gets a Resync batch, then ErrResync.
	b := next(t, slow)
	if b.Kind != KindResync {
		t.Fatalf("slow got %+v, want resync", b)
	}
	if _, err := slow.Next(context.Background()); !errors.Is(err, ErrResync) {
		t.Fatalf("after resync: %v", err)
	}
	if resyncs != 1 || hub.Len() != 1 {
		t.Fatalf("resyncs=%d watchers=%d", resyncs, hub.Len())
	}
}

func TestWatchRefusesBadInput(t *testing.T) {
	st, hub := setup(t)
	put(t, st, "k", "v")
	ctx := context.Background()
	if _, err := hub.Watch(ctx, Filter{Keys: []string{"a//b"}}, 0); !errors.Is(err, keyspace.ErrInvalidKey) {
		t.Errorf("invalid key: %v", err)
	}
	if _, err := hub.Watch(ctx, Filter{}, 0); !errors.Is(err, audit.ErrBadRequest) {
		t.Errorf("empty filter: %v", err)
	}
	if _, err := hub.Watch(ctx, Filter{Keys: []string{"k"}}, 5); !errors.Is(err, audit.ErrFutureRevision) {
		t.Errorf("future since: %v", err)
	}
	if hub.Len() != 0 {
		t.Errorf("refused watches left %d watchers", hub.Len())
	}
}

func TestClosedWatcherEndsNextAndLeavesTheHub(t *testing.T) {
	_, hub := setup(t)
	w, _ := hub.Watch(context.Background(), Filter{Keys: []string{"k"}}, 0)
	next(t, w) // empty snapshot
	errc := make(chan error, 1)
	go func() { _, err := w.Next(context.Background()); errc <- err }()
	w.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if hub.Len() != 0 {
		t.Fatalf("hub still has %d watchers", hub.Len())
	}
}

func TestOpeningAndClosingManyWatchersLeaksNothing(t *testing.T) {
	st, hub := setup(t)
	put(t, st, "k", "v")
	before := runtime.NumGoroutine()
	for i := 0; i < 10_000; i++ {
		w, err := hub.Watch(context.Background(), Filter{Keys: []string{"k"}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	if hub.Len() != 0 {
		t.Fatalf("%d watchers left", hub.Len())
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Fatalf("goroutines %d -> %d", before, after)
	}
}

func TestManyWatchersCanShareOneNotifyChannel(t *testing.T) {
	st, hub := setup(t)
	ch := make(chan struct{}, 1)
	a, _ := hub.Watch(context.Background(), Filter{Keys: []string{"a"}}, 0, WithNotify(ch))
	b, _ := hub.Watch(context.Background(), Filter{Keys: []string{"b"}}, 0, WithNotify(ch))
	defer a.Close()
	defer b.Close()
	put(t, st, "a", "1", "b", "2")
	got := map[string]int64{}
	for len(got) < 2 {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification; got %v", got)
		}
		for _, w := range []*Watcher{a, b} {
			for {
				bt, ok, err := w.TryNext()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				if bt.Kind == KindChanges {
					got[bt.Events[0].Key] = bt.Rev
				}
			}
		}
	}
	if got["a"] != 1 || got["b"] != 1 {
		t.Fatalf("got %v", got)
	}
}
