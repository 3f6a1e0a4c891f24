package audit

import (
	"context"
	"errors"
	"testing"
)

// A source's snapshot given with a fence is recorded only while the
// fence's etcd key exists with its creation revision: once the key is
// gone (its holder resigned or its lease ran out), the snapshot records
// nothing and fails with ErrFenced, the other writes of its batch are
// recorded, and a snapshot under the new holder's key is recorded, with
// no gap in the numbering.
func (e *replicaEnv) fencedSnapshot(t *testing.T) {
	ctx := context.Background()
	a := e.replica(t, WithLayers("files", StoreLayer))
	b := e.replica(t, WithLayers("files", StoreLayer))
	cli := e.client(t)
	key := prefix(t) + "/elect/source/files/a"
	created, err := cli.Put(ctx, key, "a")
	if err != nil {
		t.Fatal(err)
	}
	held := Fence{Key: key, Rev: created.Header.Revision}
	snap := func(v string) map[string]LayerValue {
		return map[string]LayerValue{"app/x": {Value: []byte(v), ContentType: TypeText}}
	}

	first, err := a.ApplySource(ctx, "files", snap("1"), Fenced(held))
	if err != nil || first.Rev != 1 {
		t.Fatalf("a fenced snapshot while its key exists: rev %d, %v; want rev 1", first.Rev, err)
	}

	// The key is deleted under its holder, then written again: a key of
	// the same name created later is another holder's.
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApplySource(ctx, "files", snap("stale"), Fenced(held)); !errors.Is(err, ErrFenced) {
		t.Fatalf("a snapshot whose fence's key is gone: %v, want ErrFenced", err)
	}
	again, err := cli.Put(ctx, key, "b")
	if err != nil {
		t.Fatal(err)
	}
	// The stale snapshot and a write of the API in one batch: the writer
	// is held while both are queued.
	release := holdWriter(a)
	stale, err := a.w.QueueSource(ctx, "files", snap("stale"), held)
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.w.QueueCommit(ctx, Txn{Actor: "alice", Ops: []Op{Put("app/y", []byte("y"), "")}})
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	if _, err := stale.Wait(); !errors.Is(err, ErrFenced) {
		t.Fatalf("a stale snapshot batched with a write: %v, want ErrFenced", err)
	}
	if r, err := other.Wait(); err != nil || r.Rev != 2 {
		t.Fatalf("the write batched with a stale snapshot: rev %d, %v; want rev 2", r.Rev, err)
	}

	// The new holder records its snapshot, on the other replica.
	next, err := b.ApplySource(ctx, "files", snap("2"), Fenced(Fence{Key: key, Rev: again.Header.Revision}))
	if err != nil || next.Rev != 3 {
		t.Fatalf("the new holder's snapshot: rev %d, %v; want rev 3", next.Rev, err)
	}
	sameReplicas(t, 3, a, b)
	for _, s := range []*Store{a, b} {
		if got := get(t, s, "app/x"); got != "2" {
			t.Fatalf("app/x = %q, want the new holder's 2", got)
		}
	}
}

// holdWriter holds s's writer until release is closed: the requests
// queued meanwhile are decided in one batch.
func holdWriter(s *Store) (release chan struct{}) {
	release, started := make(chan struct{}), make(chan struct{})
	go s.w.Alone(context.Background(), func(context.Context) error {
		close(started)
		<-release
		return nil
	})
	<-started
	return release
}

// A store without etcd checks no fence: a fenced snapshot is refused, not
// recorded unchecked.
func TestAFencedSnapshotNeedsAReplica(t *testing.T) {
	s := openTest(t, WithLayers("files", StoreLayer))
	_, err := s.ApplySource(context.Background(), "files",
		map[string]LayerValue{"app/x": {Value: []byte("1"), ContentType: TypeText}}, Fenced(Fence{Key: "k", Rev: 1}))
	if !errors.Is(err, ErrBadRequest) || s.Rev() != 0 {
		t.Fatalf("a fenced snapshot on SQLite: %v at rev %d, want ErrBadRequest and nothing recorded", err, s.Rev())
	}
}
