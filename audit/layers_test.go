package audit

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/migrations"
)

func text(v string) LayerValue { return LayerValue{Value: []byte(v), ContentType: TypeText} }

func applySource(t *testing.T, s *Store, layer string, kvs ...string) Revision {
	t.Helper()
	snap := map[string]LayerValue{}
	for i := 0; i+1 < len(kvs); i += 2 {
		snap[kvs[i]] = text(kvs[i+1])
	}
	r, err := s.ApplySource(context.Background(), layer, snap)
	if err != nil {
		t.Fatalf("apply %s: %v", layer, err)
	}
	return r
}

func TestASourceBelowTheStoreIsOverriddenAndHiddenChangesAreRecorded(t *testing.T) {
	var mu sync.Mutex
	var hooked []Revision
	s := openTest(t, WithLayers("file", StoreLayer), WithCommitHook(func(r Revision) {
		mu.Lock()
		hooked = append(hooked, r)
		mu.Unlock()
	}))
	ctx := context.Background()
	r := applySource(t, s, "file", "app/a", "1", "app/b", "2")
	if r.Rev != 1 || r.Actor != "source:file" || r.Origin != "source:file" || len(r.Changes) != 2 || len(r.LayerChanges) != 2 {
		t.Fatalf("first snapshot = %+v", r)
	}
	if r := applySource(t, s, "file", "app/a", "1", "app/b", "2"); r.Rev != 1 || len(r.Changes) != 0 {
		t.Fatalf("same snapshot again recorded %+v", r)
	}
	put(t, s, "app/a", "10") // rev 2: the store layer is on top
	if get(t, s, "app/a") != "10" {
		t.Fatal("store did not override the file")
	}
	// The file changes app/a: hidden by the store layer. It is recorded as
	// a layer change, but the effective value and watchers see nothing.
	r = applySource(t, s, "file", "app/a", "5", "app/b", "2")
	if r.Rev != 3 || len(r.Changes) != 0 || len(r.LayerChanges) != 1 || string(r.LayerChanges[0].New.Value) != "5" {
		t.Fatalf("hidden change = %+v", r)
	}
	if get(t, s, "app/a") != "10" {
		t.Fatal("a hidden change altered the effective value")
	}
	rv, err := s.Revision(ctx, 3)
	if err != nil || len(rv.LayerChanges) != 1 || rv.LayerChanges[0].Layer != "file" || string(rv.LayerChanges[0].Old.Value) != "1" {
		t.Fatalf("revision 3 = %+v %v", rv, err)
	}
	// Deleting through the API leaves a tombstone over the file's value.
	del(t, s, "app/a") // rev 4
	if _, err := s.Get(ctx, "app/a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("app/a after delete: %v", err)
	}
	stack, err := s.Stack(ctx, "app/a")
	if err != nil || len(stack) != 2 || stack[0].Layer != StoreLayer || !stack[0].Value.Tombstone || !stack[0].Effective ||
		stack[1].Layer != "file" || string(stack[1].Value.Value) != "5" || stack[1].Effective {
		t.Fatalf("stack of app/a = %+v %v", stack, err)
	}
	// A key the file drops disappears, since no other layer defines it.
	r = applySource(t, s, "file", "app/a", "5")
	if len(r.Changes) != 1 || r.Changes[0].Key != "app/b" || r.Changes[0].Type != OpDelete {
		t.Fatalf("dropped key = %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range hooked {
		if h.Rev == 3 && len(h.Changes) != 0 {
			t.Fatalf("the hook (and so watchers) saw a hidden change: %+v", h)
		}
	}
}

func TestASourceAboveTheStoreOwnsItsKeys(t *testing.T) {
	s := openTest(t, WithLayers(StoreLayer, "consul"))
	ctx := context.Background()
	put(t, s, "app/x", "from store")
	applySource(t, s, "consul", "app/x", "from consul")
	if get(t, s, "app/x") != "from consul" {
		t.Fatal("consul above the store does not win")
	}
	_, err := s.Commit(ctx, Txn{Ops: []Op{Put("app/x", []byte("mine"), "")}})
	var oe *OwnedError
	if !errors.As(err, &oe) || !errors.Is(err, ErrOwned) || oe.Layer != "consul" || oe.Key != "app/x" {
		t.Fatalf("write to an owned key: %v", err)
	}
	put(t, s, "app/y", "free")
	// When consul drops the key, the store's value shows again.
	applySource(t, s, "consul")
	if get(t, s, "app/x") != "from store" {
		t.Fatalf("app/x = %q after consul dropped it", get(t, s, "app/x"))
	}
}

func TestRollbackUndoesASourceChangeThroughTheStoreLayer(t *testing.T) {
	s := openTest(t, WithLayers("etcd", StoreLayer))
	ctx := context.Background()
	applySource(t, s, "etcd", "app/a", "good")                   // 1
	applySource(t, s, "etcd", "app/a", "bad", "app/new", "oops") // 2
	r, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Prefix: "app/"}, To: 1, Actor: "oncall", Reason: "bad etcd push"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rev != 3 || len(r.Changes) != 2 {
		t.Fatalf("rollback = %+v", r)
	}
	if get(t, s, "app/a") != "good" {
		t.Fatal("app/a not rolled back")
	}
	if _, err := s.Get(ctx, "app/new"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("app/new created by the source is still there: %v", err)
	}
	// The store layer now pins the values: a later source change is hidden.
	applySource(t, s, "etcd", "app/a", "worse", "app/new", "oops")
	if get(t, s, "app/a") != "good" {
		t.Fatal("the rollback did not hold against the source")
	}
}

func TestRollbackOfAKeyOwnedByAHigherSourceIsRefused(t *testing.T) {
	s := openTest(t, WithLayers(StoreLayer, "consul"))
	applySource(t, s, "consul", "app/x", "1")
	applySource(t, s, "consul", "app/x", "2")
	_, err := s.Rollback(context.Background(), RollbackRequest{Scope: Scope{Key: "app/x"}, To: 1})
	if !errors.Is(err, ErrOwned) {
		t.Fatalf("rollback of an owned key: %v", err)
	}
	if get(t, s, "app/x") != "2" || s.Rev() != 2 {
		t.Fatal("the refused rollback changed something")
	}
}

func TestApplySourceRefusesBadSnapshotsWhole(t *testing.T) {
	s := openTest(t, WithLayers("file", StoreLayer), WithMaxValueSize(16))
	applySource(t, s, "file", "ok", "v")
	ctx := context.Background()
	for name, tc := range map[string]struct {
		layer string
		snap  map[string]LayerValue
		want  error
	}{
		"bad key":       {"file", map[string]LayerValue{"a//b": text("x")}, nil},
		"bad json":      {"file", map[string]LayerValue{"k": {Value: []byte("{"), ContentType: TypeJSON}}, ErrInvalidValue},
		"too large":     {"file", map[string]LayerValue{"k": text("0123456789abcdefg")}, ErrTooLarge},
		"tombstone":     {"file", map[string]LayerValue{"k": {Tombstone: true}}, ErrBadRequest},
		"unknown layer": {"nope", map[string]LayerValue{"k": text("x")}, ErrBadRequest},
		"store layer":   {StoreLayer, map[string]LayerValue{"k": text("x")}, ErrBadRequest},
	} {
		_, err := s.ApplySource(ctx, tc.layer, tc.snap)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if s.Rev() != 1 || get(t, s, "ok") != "v" {
		t.Fatal("a refused snapshot changed something")
	}
}

func TestLayersMustIncludeTheStoreOnce(t *testing.T) {
	for _, layers := range [][]string{{"file"}, {StoreLayer, StoreLayer}, {"", StoreLayer}} {
		if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "c.db"), WithLayers(layers...)); err == nil {
			t.Errorf("layers %q accepted", layers)
		}
	}
}

func TestMigrationMovesExistingValuesIntoTheStoreLayer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := migrations.Load(migrations.FS)
	if _, err := migrations.Apply(context.Background(), db, ms[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO revisions (rev, ts, actor, origin, num_changes) VALUES (1, 0, 'old', 'api', 1);
		INSERT INTO changes (rev, key, op, new_value, new_type, new_create_rev, new_version) VALUES (1, 'k', 1, 'v', 'text/plain', 1, 1);
		INSERT INTO kv (key, value, content_type, create_rev, mod_rev, version) VALUES ('k', 'v', 'text/plain', 1, 1, 1);`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(context.Background(), path, WithLayers("file", StoreLayer))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stack, err := s.Stack(context.Background(), "k")
	if err != nil || len(stack) != 1 || stack[0].Layer != StoreLayer || string(stack[0].Value.Value) != "v" {
		t.Fatalf("stack of k after migration = %+v %v", stack, err)
	}
	// A file defining k now sits below the store's value.
	applySource(t, s, "file", "k", "from file")
	if get(t, s, "k") != "v" {
		t.Fatal("the migrated store value lost to a lower layer")
	}
}

func TestSourceEventsAreKeptNewestFirst(t *testing.T) {
	s := openTest(t, WithLayers("file", StoreLayer))
	ctx := context.Background()
	for _, e := range []SourceEvent{
		{Source: "file", State: "degraded", Message: "db.yaml: line 3: mapping values are not allowed"},
		{Source: "other", State: "degraded", Message: "down"},
		{Source: "file", State: "ok"},
	} {
		if err := s.RecordSourceEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.SourceEvents(ctx, "file", 0)
	if err != nil || len(evs) != 2 || evs[0].State != "ok" || evs[1].State != "degraded" || evs[1].Time.IsZero() {
		t.Fatalf("events of file = %+v %v", evs, err)
	}
	if evs, _ := s.SourceEvents(ctx, "", 1); len(evs) != 1 || evs[0].Source != "file" {
		t.Fatalf("newest event = %+v", evs)
	}
	if s.Rev() != 0 {
		t.Fatal("an event made a revision")
	}
}

func TestOverlappingSourcesResolveByPrecedence(t *testing.T) {
	s := openTest(t, WithLayers("defaults", "shared", StoreLayer))
	applySource(t, s, "shared", "app/db/host", "db2")
	applySource(t, s, "defaults", "app/db/host", "db1", "app/db/port", "5432")
	if get(t, s, "app/db/host") != "db2" || get(t, s, "app/db/port") != "5432" {
		t.Fatal("the higher source does not win where both define a key")
	}
	// The higher source drops the key: the lower one shows through, in one
	// revision by the higher source.
	r := applySource(t, s, "shared")
	if len(r.Changes) != 1 || string(r.Changes[0].New.Value) != "db1" || r.Actor != "source:shared" {
		t.Fatalf("drop = %+v", r)
	}
}

// TestLayerRowsUseThePrimaryKey: a key's rows in the layers are read through layer_kv's
// primary key, one lookup per layer, never by scanning the table (it has no index by key since
// migration 0008, which saved every write a page).
func TestLayerRowsUseThePrimaryKey(t *testing.T) {
	s := openTest(t, WithLayers("file", StoreLayer, "consul"))
	rows, err := s.rdb.Query(`EXPLAIN QUERY PLAN `+sqlitedb.LayerRowsQuery(s.Layers()), sqlitedb.LayerRowsArgs(s.Layers(), "app/k")...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if len(plan) == 0 || !strings.Contains(strings.Join(plan, "; "), "USING INDEX sqlite_autoindex_layer_kv_1 (layer=? AND key=?)") {
		t.Fatalf("query plan of %q: %q; want lookups in layer_kv's primary key (layer, key)", sqlitedb.LayerRowsQuery(s.Layers()), plan)
	}
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'layer_kv_key'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("layer_kv_key still exists (%d, %v)", n, err)
	}
}
