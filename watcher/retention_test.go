package watcher

import (
	"context"
	"testing"

	"github.com/configd/configd/audit"
)

// compactedSetup opens a real store keeping the newest three revisions and
// a hub with a one-revision window (so that catch-up reads the store), and
// commits, then compacts:
//
//	1 app/a=1  2 app/b=2  3 other=x  4 app/a=10  5 app/c=3  6 delete app/b  7 other=y
//
// The horizon is 5.
func compactedSetup(t *testing.T) (*audit.Store, *Hub) {
	t.Helper()
	st, hub := setupStore(t, []audit.Option{audit.WithRetention(3, 0), audit.WithCompactInterval(-1)},
		func(st *audit.Store) Store { return st }, WithWindow(1))
	put(t, st, "app/a", "1")
	put(t, st, "app/b", "2")
	put(t, st, "other", "x")
	put(t, st, "app/a", "10")
	put(t, st, "app/c", "3")
	if _, err := st.Commit(context.Background(), audit.Txn{Ops: []audit.Op{audit.Delete("app/b")}}); err != nil {
		t.Fatal(err)
	}
	put(t, st, "other", "y")
	res, err := st.Compact(context.Background())
	if err != nil || res.Horizon != 5 || st.Horizon() != 5 {
		t.Fatalf("compact = %+v, %v", res, err)
	}
	return st, hub
}

func TestWatchFromBelowTheHorizonStartsWithASnapshot(t *testing.T) {
	st, hub := compactedSetup(t)
	ctx := context.Background()
	for _, since := range []int64{1, 2, 4} {
		w, err := hub.Watch(ctx, Filter{Prefixes: []string{"app"}}, since)
		if err != nil {
			t.Fatalf("watch since %d: %v", since, err)
		}
		b := next(t, w)
		if b.Kind != KindSnapshot || b.Rev != 7 || len(b.Events) != 2 ||
			b.Events[0].Key != "app/a" || string(b.Events[0].Value) != "10" || b.Events[0].ModRev != 4 || b.Events[0].Version != 2 ||
			b.Events[1].Key != "app/c" || string(b.Events[1].Value) != "3" || b.Events[1].Type != audit.OpPut {
			t.Fatalf("since %d: first batch = %+v", since, b)
		}
		w.Close()
	}
	// Keys too: app/b was deleted, so only other is in the snapshot.
	w, err := hub.Watch(ctx, Filter{Keys: []string{"app/b", "other"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if b := next(t, w); b.Kind != KindSnapshot || b.Rev != 7 || len(b.Events) != 1 || b.Events[0].Key != "other" ||
		string(b.Events[0].Value) != "y" {
		t.Fatalf("keys: first batch = %+v", b)
	}
	// After the snapshot, changes as usual.
	put(t, st, "other", "z", "app/a", "11") // 8
	if b := next(t, w); b.Kind != KindChanges || b.Rev != 8 || len(b.Events) != 1 || string(b.Events[0].Value) != "z" {
		t.Fatalf("keys: second batch = %+v", b)
	}
}

func TestWatchFromTheHorizonOnReplaysChanges(t *testing.T) {
	st, hub := compactedSetup(t)
	ctx := context.Background()
	w, err := hub.Watch(ctx, Filter{Prefixes: []string{"app"}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	b := next(t, w)
	if b.Kind != KindChanges || b.Rev != 6 || len(b.Events) != 1 || b.Events[0].Key != "app/b" || b.Events[0].Type != audit.OpDelete {
		t.Fatalf("first batch = %+v", b)
	}
	put(t, st, "app/a", "11") // 8
	if b := next(t, w); b.Kind != KindChanges || b.Rev != 8 || string(b.Events[0].Value) != "11" {
		t.Fatalf("second batch = %+v", b)
	}
	// Caught up at the newest revision: nothing to replay, nothing to
	// snapshot.
	w2, err := hub.Watch(ctx, Filter{Prefixes: []string{"app"}}, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	put(t, st, "app/c", "4") // 9
	if b := next(t, w2); b.Kind != KindChanges || b.Rev != 9 {
		t.Fatalf("caught-up watcher: first batch = %+v", b)
	}
}
