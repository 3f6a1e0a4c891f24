package core_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/watcher"
)

func open(t *testing.T, path string, opts ...core.Option) *core.Core {
	t.Helper()
	c, err := core.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func put(t *testing.T, c *core.Core, key, value string) int64 {
	t.Helper()
	return configdtest.Commit(t, c.Store, audit.Txn{Actor: "alice", Ops: configdtest.Puts(key, value)})
}

// queued is the batch w has queued; Watch queues what a watch catches up
// on before it returns.
func queued(t *testing.T, w *watcher.Watcher) watcher.Batch {
	t.Helper()
	b, ok, err := w.TryNext()
	if !ok || err != nil {
		t.Fatalf("nothing queued: %v", err)
	}
	return b
}

// Every commit reaches the hub, once and in order, by the time Commit
// returns: a watch has it queued then.
func TestTheHubHasEveryCommitWhenCommitReturns(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "configd.db"))
	seed := put(t, c, "seed", "0") // since 0 would ask for a snapshot
	w, err := c.Hub.Watch(context.Background(), watcher.Filter{Prefixes: []string{"app/"}}, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i, v := range []string{"1", "2", "3"} {
		rev := put(t, c, "app/k", v)
		if got := c.Hub.Rev(); got != rev {
			t.Fatalf("commit %d: the hub is at %d when Commit returns %d", i, got, rev)
		}
		if b := queued(t, w); b.Rev != rev || string(b.Events[0].Value) != v {
			t.Fatalf("commit %d: queued %+v, want rev %d with %s", i, b, rev, v)
		}
	}
}

// A hub opened over a store that has history starts at its revision, and
// a watch from an older one is replayed from the store.
func TestTheHubStartsAtTheStoresRevision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	c := open(t, path)
	put(t, c, "app/a", "1")
	last := put(t, c, "app/a", "2")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, path)
	if c.Hub.Rev() != last {
		t.Fatalf("reopened hub at %d, want %d", c.Hub.Rev(), last)
	}
	w, err := c.Hub.Watch(context.Background(), watcher.Filter{Keys: []string{"app/a"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if b := queued(t, w); b.Kind != watcher.KindChanges || b.Rev != last || string(b.Events[0].Value) != "2" {
		t.Fatalf("replayed %+v, want rev %d app/a=2", b, last)
	}
}

// Close ends the open watches and releases the store, which another Open
// may then take.
func TestCloseEndsTheWatchesAndReleasesTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	c := open(t, path)
	w, err := c.Hub.Watch(context.Background(), watcher.Filter{Prefixes: []string{""}}, c.Store.Rev())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.Next(ctx); !errors.Is(err, watcher.ErrClosed) {
		t.Errorf("watch after Close: %v, want %v", err, watcher.ErrClosed)
	}
	st, err := audit.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open after Close: %v", err)
	}
	st.Close()
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// countingReads counts the hub's snapshot reads.
type countingReads struct {
	*audit.Store
	lists atomic.Int64
}

func (s *countingReads) List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error) {
	s.lists.Add(1)
	return s.Store.List(ctx, prefix, opts...)
}

func TestWithHubReadsIsWhatTheHubReads(t *testing.T) {
	var reads *countingReads
	c := open(t, filepath.Join(t.TempDir(), "configd.db"), core.WithHubReads(func(st *audit.Store) watcher.Store {
		reads = &countingReads{Store: st}
		return reads
	}))
	put(t, c, "app/a", "1")
	w, err := c.Hub.Watch(context.Background(), watcher.Filter{Prefixes: []string{"app/"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if b := queued(t, w); b.Kind != watcher.KindSnapshot || reads.lists.Load() == 0 {
		t.Fatalf("snapshot %v with %d reads through the wrapper", b.Kind, reads.lists.Load())
	}
}
