package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/migrations"
)

func openTest(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t testing.TB, s *Store, key, value string) Revision {
	t.Helper()
	r, err := s.Commit(context.Background(), Txn{Actor: "alice", Reason: "test", Ops: []Op{Put(key, []byte(value), "")}})
	if err != nil {
		t.Fatalf("put %s=%s: %v", key, value, err)
	}
	return r
}

func del(t testing.TB, s *Store, key string) Revision {
	t.Helper()
	r, err := s.Commit(context.Background(), Txn{Actor: "alice", Ops: []Op{Delete(key)}})
	if err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
	return r
}

func get(t testing.TB, s *Store, key string, opts ...ReadOption) string {
	t.Helper()
	kv, err := s.Get(context.Background(), key, opts...)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(kv.Value)
}

func TestCommitAssignsRevisionsAndKeyVersions(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if s.Rev() != 0 {
		t.Fatalf("empty store rev = %d", s.Rev())
	}
	r1 := put(t, s, "key1", "hello")
	r2 := put(t, s, "app/db/timeout", "5s")
	r3 := put(t, s, "key1", "world")
	if r1.Rev != 1 || r2.Rev != 2 || r3.Rev != 3 || s.Rev() != 3 {
		t.Fatalf("revs = %d %d %d (store %d), want 1 2 3", r1.Rev, r2.Rev, r3.Rev, s.Rev())
	}
	kv, err := s.Get(ctx, "key1")
	if err != nil {
		t.Fatal(err)
	}
	if string(kv.Value) != "world" || kv.CreateRev != 1 || kv.ModRev != 3 || kv.Version != 2 || kv.ContentType != TypeText {
		t.Fatalf("key1 = %+v", kv)
	}
	if r3.Actor != "alice" || r3.Origin != "api" || r3.Time.Location().String() != "UTC" || r3.Time.IsZero() {
		t.Fatalf("revision metadata = %+v", r3)
	}
	c := r3.Changes[0]
	if c.Type != OpPut || string(c.Old.Value) != "hello" || string(c.New.Value) != "world" {
		t.Fatalf("change = %+v", c)
	}
	// Delete and re-create: create_rev and version restart.
	del(t, s, "key1")
	if _, err := s.Get(ctx, "key1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	put(t, s, "key1", "again")
	kv, _ = s.Get(ctx, "key1")
	if kv.CreateRev != 5 || kv.Version != 1 {
		t.Fatalf("recreated key1 = %+v", kv)
	}
}

func TestCommitThatChangesNothingRecordsNothing(t *testing.T) {
	s := openTest(t)
	put(t, s, "k", "v")
	r := put(t, s, "k", "v")
	if r.Rev != 1 || len(r.Changes) != 0 {
		t.Fatalf("same-value put = rev %d with %d changes, want rev 1 and none", r.Rev, len(r.Changes))
	}
	r = del(t, s, "missing")
	if r.Rev != 1 || len(r.Changes) != 0 || s.Rev() != 1 {
		t.Fatalf("delete of missing key = %+v, store rev %d", r, s.Rev())
	}
	// Same bytes under another content type is a change.
	r, err := s.Commit(context.Background(), Txn{Ops: []Op{Put("k", []byte("v"), "application/yaml")}})
	if err != nil || r.Rev != 2 {
		t.Fatalf("type change: %+v, %v", r, err)
	}
}

func TestTransactionIsOneRevisionWithCompareAndSet(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	r, err := s.Commit(ctx, Txn{Actor: "bob", Ops: []Op{
		Put("a", []byte("1"), ""), Put("b", []byte("2"), ""), Put("c", []byte("3"), ""),
	}})
	if err != nil || r.Rev != 1 || r.NumChanges != 3 {
		t.Fatalf("txn = %+v, %v", r, err)
	}
	// A conflict on one key changes nothing, and says what is current.
	_, err = s.Commit(ctx, Txn{Ops: []Op{
		Put("a", []byte("10"), "").WithModRev(1),
		Put("b", []byte("20"), "").WithModRev(7),
	}})
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || ce.Key != "b" || ce.Actual != 1 || ce.Rev != 1 {
		t.Fatalf("conflict err = %v (%+v)", err, ce)
	}
	if get(t, s, "a") != "1" || s.Rev() != 1 {
		t.Fatalf("conflicting txn changed state: a=%s rev=%d", get(t, s, "a"), s.Rev())
	}
	// 0 = must not exist.
	if _, err := s.Commit(ctx, Txn{Ops: []Op{Put("a", []byte("x"), "").WithModRev(0)}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("create-only on existing key: %v", err)
	}
	if r, err := s.Commit(ctx, Txn{Ops: []Op{Put("new", []byte("x"), "").WithModRev(0)}}); err != nil || r.Rev != 2 {
		t.Fatalf("create-only on new key: %+v %v", r, err)
	}
	if r, err := s.Commit(ctx, Txn{Ops: []Op{Delete("new").WithModRev(2)}}); err != nil || r.Rev != 3 {
		t.Fatalf("conditional delete: %+v %v", r, err)
	}
}

// TestIfRevCommitsOnlyOverTheRevisionRead: a transaction conditional on
// the store's revision commits only if nothing was committed since; of
// two made over the same revision at once, exactly one commits (they
// share a batch or not).
func TestIfRevCommitsOnlyOverTheRevisionRead(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	put(t, s, "a", "1")
	at := func(rev int64) *int64 { return &rev }
	put(t, s, "other", "x") // rev 2: a key the caller never read
	var ce *ConflictError
	if _, err := s.Commit(ctx, Txn{IfRev: at(1), Ops: []Op{Put("b", []byte("1"), "")}}); !errors.As(err, &ce) || ce.Key != "" || ce.Rev != 2 {
		t.Fatalf("commit over revision 1 at 2: %v, want a conflict of the scope", err)
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused commit wrote b: %v", err)
	}
	if _, err := s.Commit(ctx, Txn{IfRev: at(-1), Ops: []Op{Put("b", []byte("1"), "")}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("a negative if_rev: %v, want ErrBadRequest", err)
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Commit(ctx, Txn{IfRev: at(2), Ops: []Op{Put("b", []byte(strconv.Itoa(i)), "")}})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, ErrConflict):
				t.Errorf("writer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || s.Rev() != 3 {
		t.Fatalf("%d writers won over revision 2 (now at %d), want exactly 1", wins.Load(), s.Rev())
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	s := openTest(t, WithMaxValueSize(64))
	put(t, s, "good", "v")
	tests := []struct {
		name string
		txn  Txn
		want error
	}{
		{"empty key", Txn{Ops: []Op{Put("", []byte("v"), "")}}, keyspace.ErrInvalidKey},
		{"dotdot", Txn{Ops: []Op{Put("a/../b", []byte("v"), "")}}, keyspace.ErrInvalidKey},
		{"empty segment", Txn{Ops: []Op{Put("a//b", []byte("v"), "")}}, keyspace.ErrInvalidKey},
		{"leading slash", Txn{Ops: []Op{Put("/a", []byte("v"), "")}}, keyspace.ErrInvalidKey},
		{"trailing slash", Txn{Ops: []Op{Put("a/", []byte("v"), "")}}, keyspace.ErrInvalidKey},
		{"control char", Txn{Ops: []Op{Put("a\tb", []byte("v"), "")}}, keyspace.ErrInvalidKey},
		{"long key", Txn{Ops: []Op{Put(strings.Repeat("k", 513), []byte("v"), "")}}, keyspace.ErrInvalidKey},
		{"invalid utf8 key", Txn{Ops: []Op{Put("k\xff", []byte("v"), "")}}, keyspace.ErrInvalidKey},
		{"oversize value", Txn{Ops: []Op{Put("k", []byte(strings.Repeat("x", 65)), "")}}, ErrTooLarge},
		{"bad json", Txn{Ops: []Op{Put("k", []byte(`{"a":`), "application/json")}}, ErrInvalidValue},
		{"bad yaml", Txn{Ops: []Op{Put("k", []byte("a: [1, 2"), "application/yaml")}}, ErrInvalidValue},
		{"binary as text", Txn{Ops: []Op{Put("k", []byte{0xff, 0x00}, "text/plain")}}, ErrInvalidValue},
		{"unknown type", Txn{Ops: []Op{Put("k", []byte("v"), "image/png")}}, ErrContentType},
		{"empty txn", Txn{}, ErrBadRequest},
		{"duplicate key", Txn{Ops: []Op{Put("k", nil, ""), Delete("k")}}, ErrBadRequest},
		{"one bad op spoils the txn", Txn{Ops: []Op{Put("ok", []byte("v"), ""), Put("k", []byte("{"), "application/json")}}, ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Commit(context.Background(), tt.txn)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if s.Rev() != 1 || get(t, s, "good") != "v" {
				t.Fatalf("state changed: rev %d", s.Rev())
			}
			if _, err := s.Get(context.Background(), "ok"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("half-applied txn: %v", err)
			}
		})
	}
}

func TestContentTypesAreNormalisedAndChecked(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	cases := []struct{ in, want, value string }{
		{"", TypeText, "plain"},
		{"text/plain; charset=utf-8", TypeText, "plain"},
		{"application/json", TypeJSON, `{"a": [1, 2]}`},
		{"application/json; charset=utf-8", TypeJSON, `"s"`},
		{"text/yaml", TypeYAML, "a: 1\nb: [x, y]\n"},
		{"application/x-yaml", TypeYAML, "- 1\n"},
		{"application/octet-stream", TypeBinary, "\xff\x00\x01"},
	}
	for i, c := range cases {
		key := fmt.Sprintf("k%d", i)
		if _, err := s.Commit(ctx, Txn{Ops: []Op{Put(key, []byte(c.value), c.in)}}); err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		kv, _ := s.Get(ctx, key)
		if kv.ContentType != c.want || string(kv.Value) != c.value {
			t.Errorf("%q stored as %q %q", c.in, kv.ContentType, kv.Value)
		}
	}
}

func TestReadsAsOfAnEarlierRevision(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	put(t, s, "app/a", "a1")   // 1
	put(t, s, "app/b", "b1")   // 2
	put(t, s, "app/a", "a2")   // 3
	del(t, s, "app/b")         // 4
	put(t, s, "other/x", "x1") // 5
	if v := get(t, s, "app/a", AtRev(2)); v != "a1" {
		t.Fatalf("app/a@2 = %q", v)
	}
	kv, _ := s.Get(ctx, "app/a", AtRev(3))
	if kv.ModRev != 3 || kv.Version != 2 || kv.CreateRev != 1 {
		t.Fatalf("app/a@3 = %+v", kv)
	}
	if _, err := s.Get(ctx, "app/b", AtRev(4)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("app/b@4: %v", err)
	}
	if _, err := s.Get(ctx, "app/a", AtRev(9)); !errors.Is(err, ErrFutureRevision) {
		t.Fatalf("future read: %v", err)
	}
	kvs, rev, err := s.List(ctx, "app/", AtRev(2))
	if err != nil || rev != 2 || len(kvs) != 2 || string(kvs[0].Value) != "a1" || string(kvs[1].Value) != "b1" {
		t.Fatalf("list app/@2 = %+v rev %d %v", kvs, rev, err)
	}
	kvs, rev, err = s.List(ctx, "app")
	if err != nil || rev != 5 || len(kvs) != 1 || kvs[0].Key != "app/a" {
		t.Fatalf("list app = %+v rev %d %v", kvs, rev, err)
	}
	kvs, _, _ = s.List(ctx, "")
	if len(kvs) != 2 {
		t.Fatalf("list all = %+v", kvs)
	}
	// Prefixes match whole segments.
	put(t, s, "apple", "no")
	kvs, _, _ = s.List(ctx, "app/")
	for _, kv := range kvs {
		if kv.Key == "apple" {
			t.Fatal("prefix app/ matched apple")
		}
	}
}

func TestHistoryByKeyPrefixAndActorIsPagedNewestFirst(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for i := 1; i <= 25; i++ {
		actor := "alice"
		if i%5 == 0 {
			actor = "bob"
		}
		key := "app/a"
		if i%2 == 0 {
			key = "app/b"
		}
		if _, err := s.Commit(ctx, Txn{Actor: actor, Reason: fmt.Sprint("change ", i),
			Ops: []Op{Put(key, []byte(fmt.Sprint(i)), "")}}); err != nil {
			t.Fatal(err)
		}
	}
	put(t, s, "zzz", "outside") // 26

	var got []int64
	q := HistoryQuery{Scope: Scope{Key: "app/a"}, Limit: 5}
	for pages := 0; ; pages++ {
		p, err := s.History(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Revisions {
			got = append(got, r.Rev)
			if len(r.Changes) != 1 || r.Changes[0].Key != "app/a" {
				t.Fatalf("rev %d changes = %+v", r.Rev, r.Changes)
			}
		}
		if p.Next == 0 {
			break
		}
		q.Before = p.Next
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) != 13 || got[0] != 25 || got[12] != 1 {
		t.Fatalf("history of app/a = %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] >= got[i-1] {
			t.Fatalf("not newest first: %v", got)
		}
	}

	p, err := s.History(ctx, HistoryQuery{Scope: Scope{Prefix: "app/"}, Limit: 1000})
	if err != nil || len(p.Revisions) != 25 || p.Next != 0 {
		t.Fatalf("prefix history: %d revs next %d err %v", len(p.Revisions), p.Next, err)
	}
	p, _ = s.History(ctx, HistoryQuery{Actor: "bob"})
	if len(p.Revisions) != 5 || p.Revisions[0].Rev != 25 || p.Revisions[0].Reason != "change 25" {
		t.Fatalf("bob's history = %+v", p.Revisions)
	}
	p, _ = s.History(ctx, HistoryQuery{Scope: Scope{Key: "app/b"}, Actor: "bob"})
	if len(p.Revisions) != 2 || p.Revisions[0].Rev != 20 || p.Revisions[1].Rev != 10 {
		t.Fatalf("bob's history of app/b = %+v", p.Revisions)
	}
	p, _ = s.History(ctx, HistoryQuery{Limit: 3})
	if len(p.Revisions) != 3 || p.Revisions[0].Rev != 26 || p.Next != 24 {
		t.Fatalf("global history = %+v next %d", p.Revisions, p.Next)
	}
	if _, err := s.History(ctx, HistoryQuery{Scope: Scope{Key: "a", Prefix: "b/"}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("key and prefix: %v", err)
	}
}

func TestDiffBetweenRevisions(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	put(t, s, "app/a", "1")   // 1
	put(t, s, "app/b", "1")   // 2
	put(t, s, "app/a", "2")   // 3
	del(t, s, "app/b")        // 4
	put(t, s, "app/c", "new") // 5
	put(t, s, "app/a", "1")   // 6: back to its rev-1 value

	d, err := s.Diff(ctx, Scope{Prefix: "app/"}, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d[0].Key != "app/a" || string(d[0].Old.Value) != "1" || string(d[0].New.Value) != "2" ||
		d[1].Key != "app/b" || d[1].Old != nil || string(d[1].New.Value) != "1" {
		t.Fatalf("diff 1..3 = %+v", d)
	}
	d, _ = s.Diff(ctx, Scope{}, 1, 0)
	// app/a is equal again, app/b never existed at 1 and does not now: only app/c.
	if len(d) != 1 || d[0].Key != "app/c" || d[0].Type != OpPut {
		t.Fatalf("diff 1..now = %+v", d)
	}
	d, _ = s.Diff(ctx, Scope{Key: "app/b"}, 2, 4)
	if len(d) != 1 || d[0].Type != OpDelete || string(d[0].Old.Value) != "1" {
		t.Fatalf("diff of app/b = %+v", d)
	}
	if _, err := s.Diff(ctx, Scope{}, 3, 1); !errors.Is(err, ErrBadRange) {
		t.Fatalf("reversed: %v", err)
	}
	if _, err := s.Diff(ctx, Scope{}, 1, 99); !errors.Is(err, ErrFutureRevision) {
		t.Fatalf("future: %v", err)
	}
}

func TestRollbackRestoresDeletedKeysAndDeletesNewOnes(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	put(t, s, "app/a", "a1")        // 1
	put(t, s, "app/b", "b1")        // 2
	put(t, s, "app/a", "a2")        // 3
	del(t, s, "app/b")              // 4
	put(t, s, "app/c", "c1")        // 5
	put(t, s, "other", "untouched") // 6

	r, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Prefix: "app/"}, To: 2, Actor: "carol", Reason: "bad deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rev != 7 || r.Reason != "rollback to 2: bad deploy" || r.Actor != "carol" || r.RollbackTo != 2 || r.NumChanges != 3 {
		t.Fatalf("rollback revision = %+v", r)
	}
	if get(t, s, "app/a") != "a1" || get(t, s, "app/b") != "b1" || get(t, s, "other") != "untouched" {
		t.Fatal("rollback did not restore app/a, app/b")
	}
	if _, err := s.Get(ctx, "app/c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("app/c created after 2 still exists: %v", err)
	}
	// The rollback is itself in the history, and history is not rewritten.
	rv, err := s.Revision(ctx, 3)
	if err != nil || string(rv.Changes[0].New.Value) != "a2" {
		t.Fatalf("revision 3 rewritten: %+v %v", rv, err)
	}
	// A rollback can be rolled back.
	r, err = s.Rollback(ctx, RollbackRequest{Scope: Scope{Prefix: "app/"}, To: 6, Actor: "carol"})
	if err != nil || r.Rev != 8 || r.Reason != "rollback to 6" {
		t.Fatalf("undo rollback: %+v %v", r, err)
	}
	if get(t, s, "app/a") != "a2" || get(t, s, "app/c") != "c1" {
		t.Fatal("undo of rollback did not restore the state at 6")
	}
	if _, err := s.Get(ctx, "app/b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("app/b should be deleted again: %v", err)
	}
	// Rolling back to where we are changes nothing and records nothing.
	r, err = s.Rollback(ctx, RollbackRequest{Scope: Scope{Key: "app/a"}, To: 8})
	if err != nil || r.Rev != 8 || len(r.Changes) != 0 || s.Rev() != 8 {
		t.Fatalf("no-op rollback: %+v %v", r, err)
	}
}

func TestRollbackRefusesBadRevisionsAndStaleViews(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	put(t, s, "k", "1") // 1
	put(t, s, "k", "2") // 2
	if _, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Key: "k"}, To: 5}); !errors.Is(err, ErrFutureRevision) {
		t.Fatalf("future: %v", err)
	}
	if _, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Key: "k"}, To: 0}); !errors.Is(err, ErrRevisionGone) {
		t.Fatalf("rev 0: %v", err)
	}
	if _, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Key: "k/"}, To: 1}); !errors.Is(err, keyspace.ErrInvalidKey) {
		t.Fatalf("bad key: %v", err)
	}
	// The page showed the diff at revision 1; k changed at 2: conflict.
	_, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Key: "k"}, To: 1, ExpectRev: 1})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale expect rev: %v", err)
	}
	// Dry run shows the change and commits nothing.
	r, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Key: "k"}, To: 1, ExpectRev: 2, DryRun: true})
	if err != nil || r.Rev != 0 || len(r.Changes) != 1 || string(r.Changes[0].Old.Value) != "2" || string(r.Changes[0].New.Value) != "1" {
		t.Fatalf("dry run = %+v %v", r, err)
	}
	if s.Rev() != 2 || get(t, s, "k") != "2" {
		t.Fatal("dry run committed")
	}
}

func TestConcurrentWritersGetDistinctRevisionsInOrder(t *testing.T) {
	var mu sync.Mutex
	var hooked []int64
	s := openTest(t, WithCommitHook(func(r Revision) {
		mu.Lock()
		hooked = append(hooked, r.Rev)
		mu.Unlock()
	}))
	const writers, each = 32, 20
	revs := make(chan int64, writers*each)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := s.Commit(context.Background(), Txn{Actor: "w", Ops: []Op{
					Put(fmt.Sprintf("w%d", w), []byte(fmt.Sprint(i)), ""),
				}})
				if err != nil {
					t.Error(err)
					return
				}
				revs <- r.Rev
			}
		}(w)
	}
	wg.Wait()
	close(revs)
	seen := map[int64]bool{}
	for r := range revs {
		if seen[r] {
			t.Fatalf("revision %d given twice", r)
		}
		seen[r] = true
	}
	if len(seen) != writers*each || s.Rev() != writers*each {
		t.Fatalf("%d distinct revisions, store at %d; want %d", len(seen), s.Rev(), writers*each)
	}
	for i, r := range hooked {
		if r != int64(i+1) {
			t.Fatalf("commit hook saw %v, not 1..n in order", hooked[:i+1])
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", "v1")
	put(t, s, "k", "v2")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, Txn{Ops: []Op{Put("k", nil, "")}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Rev() != 2 || get(t, s, "k") != "v2" || get(t, s, "k", AtRev(1)) != "v1" {
		t.Fatalf("after reopen: rev %d", s.Rev())
	}
	if r := put(t, s, "k", "v3"); r.Rev != 3 {
		t.Fatalf("next rev after reopen = %d", r.Rev)
	}
}

func TestSecondOpenOfTheSameDatabaseIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, "k", "v")
	_, err = Open(context.Background(), path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if get(t, s, "k") != "v" {
		t.Fatal("first store disturbed")
	}
}

func TestOpenRefusesADatabaseFromANewerBinary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(context.Background(), path)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") {
		t.Fatalf("open newer db: %v", err)
	}
}

func TestMigrationsAreAppliedOnceAndRecorded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	for i := 0; i < 2; i++ {
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	db, _ := sql.Open("sqlite", path)
	defer db.Close()
	var v, rows int
	db.QueryRow(`SELECT version, (SELECT count(*) FROM schema_version) FROM schema_version`).Scan(&v, &rows)
	ms, _ := migrations.Load(migrations.FS)
	if v != len(ms) || rows != 1 {
		t.Fatalf("schema_version = %d (%d rows), want %d", v, rows, len(ms))
	}
}

func TestOpenFailsClearlyOnAMissingDirectory(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "nope", "configd.db"))
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
}

func TestDatabaseIsWALWithFullSync(t *testing.T) {
	s := openTest(t)
	var mode string
	var syncMode int
	if err := s.wdb.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.wdb.QueryRow(`PRAGMA synchronous`).Scan(&syncMode); err != nil {
		t.Fatal(err)
	}
	// synchronous=FULL (2): every commit is fsync'd before Commit returns.
	if mode != "wal" || syncMode != 2 {
		t.Fatalf("journal_mode=%s synchronous=%d, want wal and 2", mode, syncMode)
	}
}

func TestRevisionsAfterAreOldestFirstWithAllChanges(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	put(t, s, "a", "1")
	s.Commit(ctx, Txn{Ops: []Op{Put("b", []byte("2"), ""), Put("c", []byte("3"), "")}})
	del(t, s, "a")
	revs, err := s.RevisionsAfter(ctx, 1, 10)
	if err != nil || len(revs) != 2 || revs[0].Rev != 2 || len(revs[0].Changes) != 2 || revs[1].Rev != 3 || revs[1].Changes[0].Type != OpDelete {
		t.Fatalf("revisions after 1 = %+v %v", revs, err)
	}
	if revs, _ := s.RevisionsAfter(ctx, 0, 1); len(revs) != 1 || revs[0].Rev != 1 {
		t.Fatalf("limit 1 from 0 = %+v", revs)
	}
	if _, err := s.RevisionsAfter(ctx, 9, 10); !errors.Is(err, ErrFutureRevision) {
		t.Fatalf("future since: %v", err)
	}
}

func TestPingReportsAClosedStore(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("ping open store: %v", err)
	}
	s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("ping closed store: %v", err)
	}
}
