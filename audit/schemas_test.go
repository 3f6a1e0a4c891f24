package audit

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/keyspace"
)

const limitsSchema = `{"properties": {"limits": {"type": "object", "properties": {"rps": {"type": "integer", "minimum": 1}}}}}`

func setSchema(t testing.TB, s *Store, prefix, doc string) Revision {
	t.Helper()
	r, err := s.SetSchema(context.Background(), prefix, []byte(doc), SchemaChange{Actor: "alice", Reason: "rules"})
	if err != nil {
		t.Fatalf("set schema %s: %v", prefix, err)
	}
	return r
}

func putJSON(s *Store, key, value string) (Revision, error) {
	return s.Commit(context.Background(), Txn{Actor: "alice", Ops: []Op{Put(key, []byte(value), TypeJSON)}})
}

// wantSchemaError checks err is a *SchemaError whose message is want.
func wantSchemaError(t *testing.T, err error, want string) {
	t.Helper()
	var se *SchemaError
	if !errors.As(err, &se) || !errors.Is(err, ErrSchemaViolation) {
		t.Fatalf("err = %v, want a *SchemaError", err)
	}
	if err.Error() != want && !strings.HasSuffix(err.Error(), ": "+want) {
		t.Fatalf("err = %q, want %q", err.Error(), want)
	}
}

func TestABreakingWriteTxnOrRollbackRecordsNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	if _, err := putJSON(s, "app/limits", `{"rps": 5}`); err != nil {
		t.Fatal(err)
	}
	r0 := put(t, s, "app/name", "orders")
	if _, err := putJSON(s, "app/limits", `{"rps": -5}`); err != nil { // before the schema: allowed
		t.Fatal(err)
	}
	if _, err := putJSON(s, "app/limits", `{"rps": 5}`); err != nil {
		t.Fatal(err)
	}
	setSchema(t, s, "app/", limitsSchema)
	rev := s.Rev()

	_, err := putJSON(s, "app/limits", `{"rps": -1}`)
	wantSchemaError(t, err, "app/limits: /rps: must be >= 1 (schema app/)")
	// A transaction: its good op is not recorded either.
	_, err = s.Commit(ctx, Txn{Actor: "alice", Ops: []Op{Put("app/other", []byte("x"), ""), Put("app/limits", []byte(`{"rps": 0}`), TypeJSON)}})
	wantSchemaError(t, err, "app/limits: /rps: must be >= 1 (schema app/)")
	// A delete that leaves a required member missing.
	setSchema(t, s, "app/", `{"required": ["name"]}`)
	rev++
	_, err = s.Commit(ctx, Txn{Actor: "alice", Ops: []Op{Delete("app/name")}})
	wantSchemaError(t, err, "app/: missing property 'name' (schema app/)")
	setSchema(t, s, "app/", limitsSchema)
	rev++
	// A rollback to a revision whose state breaks the schema.
	_, err = s.Rollback(ctx, RollbackRequest{Scope: Scope{Prefix: "app/"}, To: r0.Rev + 1, Actor: "alice"})
	wantSchemaError(t, err, "app/limits: /rps: must be >= 1 (schema app/)")
	if s.Rev() != rev {
		t.Fatalf("rev = %d after refused writes, want %d", s.Rev(), rev)
	}
	if _, err := s.Get(ctx, "app/other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("app/other of a refused txn: %v", err)
	}
	// The next good write gets the next revision; keys no schema covers
	// are not checked.
	r, err := putJSON(s, "app/limits", `{"rps": 7}`)
	if err != nil || r.Rev != rev+1 {
		t.Fatalf("good write = rev %d, %v; want rev %d", r.Rev, err, rev+1)
	}
	if r := put(t, s, "other/limits", "-1"); r.Rev != rev+2 {
		t.Fatalf("uncovered write rev %d", r.Rev)
	}
	if res, err := s.Verify(ctx); err != nil || !res.OK {
		t.Fatalf("verify: %+v, %v", res, err)
	}
}

func TestSchemaOfTheWholeKeyspaceAndNestedPrefixes(t *testing.T) {
	s := openTest(t)
	setSchema(t, s, "", `{"properties": {"app": {"properties": {"port": {"type": "string", "pattern": "^[0-9]+$"}}}}}`)
	// An empty prefix is an empty object: it breaks "required".
	_, err := s.SetSchema(context.Background(), "app/db", []byte(`{"required": ["host"]}`), SchemaChange{})
	wantSchemaError(t, err, `app/db/: missing property 'host' (schema app/db/); the current state breaks the new schema: fix the values first, or set it with --force`)
	put(t, s, "app/db/host", "h")
	setSchema(t, s, "app/db", `{"required": ["host"]}`)
	_, err = s.Commit(context.Background(), Txn{Ops: []Op{Put("app/port", []byte("http"), "")}})
	wantSchemaError(t, err, `app/port: must match the pattern "^[0-9]+$" (schema /)`)
	_, err = s.Commit(context.Background(), Txn{Ops: []Op{Put("app/db/port", []byte("5432"), ""), Delete("app/db/host")}})
	wantSchemaError(t, err, `app/db/: missing property 'host' (schema app/db/)`)
	if _, err := s.Commit(context.Background(), Txn{Ops: []Op{Put("app/db/port", []byte("5432"), ""), Put("app/port", []byte("80"), "")}}); err != nil {
		t.Fatal(err)
	}
}

func TestSchemaRecordsAreNeitherKeysNorInTheWholeKeyspace(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	put(t, s, "app/a", "1")
	r := setSchema(t, s, "app/", `{"type": "object"}`)
	kvs, _, err := s.List(ctx, "")
	if err != nil || len(kvs) != 1 || kvs[0].Key != "app/a" {
		t.Fatalf("List(\"\") = %+v, %v: want app/a alone", kvs, err)
	}
	if _, err := s.Get(ctx, keyspace.SchemaKey("app/")); !errors.Is(err, keyspace.ErrInvalidKey) {
		t.Fatalf("Get of the schema record: %v", err)
	}
	if _, err := s.Commit(ctx, Txn{Ops: []Op{Put(keyspace.SchemaKey("app/"), []byte("{}"), TypeJSON)}}); !errors.Is(err, keyspace.ErrInvalidKey) {
		t.Fatalf("an ordinary write of the schema record: %v", err)
	}
	if ch, err := s.Diff(ctx, Scope{}, 0, 0); err != nil || len(ch) != 1 {
		t.Fatalf("Diff of everything = %+v, %v: want app/a alone", ch, err)
	}
	// The whole history (the audit log) has the schema's revision.
	page, err := s.History(ctx, HistoryQuery{})
	if err != nil || len(page.Revisions) != 2 || page.Revisions[0].Rev != r.Rev || page.Revisions[0].Changes[0].Key != "/schema/app/" {
		t.Fatalf("History = %+v, %v", page, err)
	}
	// A rollback of everything leaves schemas alone.
	if _, err := s.Rollback(ctx, RollbackRequest{To: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSchema(ctx, "app"); err != nil {
		t.Fatalf("the schema after a rollback of everything: %v", err)
	}
}

func TestSchemasAreVersionedAuditedAndSurviveAReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "configd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r1 := setSchema(t, s, "app", `{"type": "object"}`)
	r2 := setSchema(t, s, "app/", limitsSchema)
	if r2.Changes[0].Old == nil || string(r2.Changes[0].Old.Value) != `{"type": "object"}` || r2.Actor != "alice" || r2.Reason != "rules" {
		t.Fatalf("the schema's change = %+v", r2)
	}
	if r := setSchema(t, s, "app/", limitsSchema); r.Rev != r2.Rev || len(r.Changes) != 0 {
		t.Fatalf("setting the same schema recorded %+v", r)
	}
	sc, err := s.GetSchema(ctx, "app/")
	if err != nil || string(sc.Schema) != limitsSchema || sc.Version != 2 || sc.ModRev != r2.Rev || sc.CreateRev != r1.Rev {
		t.Fatalf("GetSchema = %+v, %v", sc, err)
	}
	s.Close()
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = putJSON(s, "app/limits", `{"rps": 0}`)
	wantSchemaError(t, err, "app/limits: /rps: must be >= 1 (schema app/)")
	r3, err := s.DeleteSchema(ctx, "app/", SchemaChange{Actor: "bob", Reason: "gone"})
	if err != nil || r3.Actor != "bob" || r3.Changes[0].New != nil {
		t.Fatalf("DeleteSchema = %+v, %v", r3, err)
	}
	if _, err := putJSON(s, "app/limits", `{"rps": 0}`); err != nil {
		t.Fatalf("a write once the schema is deleted: %v", err)
	}
	if _, err := s.GetSchema(ctx, "app/"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetSchema after delete: %v", err)
	}
	page, err := s.SchemaHistory(ctx, "app/", HistoryQuery{})
	if err != nil || len(page.Revisions) != 3 || page.Revisions[0].Rev != r3.Rev || page.Revisions[2].Rev != r1.Rev {
		t.Fatalf("SchemaHistory = %+v, %v", page, err)
	}
	if all, _ := s.Schemas(ctx); len(all) != 0 {
		t.Fatalf("Schemas after delete = %+v", all)
	}
}

func TestBadSchemasAreRefused(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	if _, err := putJSON(s, "app/limits", `{"rps": 0}`); err != nil {
		t.Fatal(err)
	}
	rev := s.Rev()
	_, err := s.SetSchema(ctx, "app/", []byte(`{"minimum": "one"}`), SchemaChange{})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "minimum") {
		t.Fatalf("an invalid schema: %v", err)
	}
	_, err = s.SetSchema(ctx, "app//x/", []byte(`{}`), SchemaChange{})
	if !errors.Is(err, keyspace.ErrInvalidKey) {
		t.Fatalf("a schema on an invalid prefix: %v", err)
	}
	// The state breaks it: refused, naming the first violation.
	_, err = s.SetSchema(ctx, "app/", []byte(limitsSchema), SchemaChange{})
	var se *SchemaError
	if !errors.As(err, &se) || !se.Existing || !strings.Contains(err.Error(), "app/limits: /rps: must be >= 1 (schema app/)") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("a schema the state breaks: %v", err)
	}
	if s.Rev() != rev {
		t.Fatalf("refused schemas recorded revisions: %d, want %d", s.Rev(), rev)
	}
	r, err := s.SetSchema(ctx, "app/", []byte(limitsSchema), SchemaChange{Actor: "alice", Reason: "tighten", Force: true})
	if err != nil || !strings.HasPrefix(r.Reason, "forced") || !strings.HasSuffix(r.Reason, ": tighten") {
		t.Fatalf("a forced schema = %+v, %v", r, err)
	}
	// Once forced, the broken key can only be fixed.
	_, err = putJSON(s, "app/limits", `{"rps": -3}`)
	wantSchemaError(t, err, "app/limits: /rps: must be >= 1 (schema app/)")
	if _, err := putJSON(s, "app/limits", `{"rps": 3}`); err != nil {
		t.Fatal(err)
	}
}

func TestASecretsValueIsNotInARefusal(t *testing.T) {
	s := openTest(t, WithMasterKey(masterKey(t)))
	setSchema(t, s, "app/", `{"properties": {"pw": {"minLength": 40, "pattern": "^x"}}}`)
	_, err := s.Commit(context.Background(), Txn{Ops: []Op{Put("app/pw", []byte(plain), "").AsSecret()}})
	var se *SchemaError
	if !errors.As(err, &se) || strings.Contains(err.Error(), plain) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("refusal of a secret: %v", err)
	}
}

func TestASourceSnapshotThatBreaksASchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithLayers("file", StoreLayer))
	setSchema(t, s, "app/", `{"properties": {"port": {"pattern": "^[0-9]+$"}}}`)
	applySource(t, s, "file", "app/port", "80")
	rev := s.Rev()
	_, err := s.ApplySource(ctx, "file", map[string]LayerValue{"app/port": text("http")})
	wantSchemaError(t, err, `app/port: must match the pattern "^[0-9]+$" (schema app/)`)
	if !strings.HasPrefix(err.Error(), "source file: ") || s.Rev() != rev || get(t, s, "app/port") != "80" {
		t.Fatalf("err %v, rev %d (want %d), app/port %q", err, s.Rev(), rev, get(t, s, "app/port"))
	}
	applySource(t, s, "file", "app/port", "8080")
	if get(t, s, "app/port") != "8080" {
		t.Fatal("the fixed snapshot was not applied")
	}
}

// A schema set on one replica is enforced on the other at once: a write
// decided there before it applied the schema's revision loses the race
// for the log's head, and is decided again on the state that has it.
func (e *replicaEnv) schemas(t *testing.T) {
	a, b := e.replica(t), e.replica(t)
	if _, err := putJSON(b, "app/limits", `{"rps": 5}`); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitRev(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	setSchema(t, a, "app/", limitsSchema)
	_, err := putJSON(b, "app/limits", `{"rps": -1}`)
	wantSchemaError(t, err, "app/limits: /rps: must be >= 1 (schema app/)")
	r, err := putJSON(b, "app/limits", `{"rps": 2}`)
	if err != nil || r.Rev != 3 {
		t.Fatalf("a good write on b: %+v, %v", r, err)
	}
	_, err = putJSON(a, "app/limits", `{"rps": 0}`)
	wantSchemaError(t, err, "app/limits: /rps: must be >= 1 (schema app/)")
	sameReplicas(t, 3, a, b)
	if sc, err := b.GetSchema(context.Background(), "app/"); err != nil || string(sc.Schema) != limitsSchema {
		t.Fatalf("b's schema: %+v, %v", sc, err)
	}
}

// In one group commit, each request is checked against the schemas the
// requests before it leave.
func TestSchemasSetOrDeletedEarlierInTheBatchHold(t *testing.T) {
	s, g := openGated(t)
	schemaTxn := func(op Op) Txn { return Txn{Actor: "alice", Ops: []Op{op}} }
	bad := Txn{Ops: []Op{Put("app/limits", []byte(`{"rps": -1}`), TypeJSON)}}
	good := Txn{Ops: []Op{Put("app/limits", []byte(`{"rps": 1}`), TypeJSON)}}
	_, errs := g.batch(t, s,
		schemaTxn(Put(keyspace.SchemaKey("app/"), []byte(limitsSchema), "")),
		bad, good,
		schemaTxn(Delete(keyspace.SchemaKey("app/"))),
		bad)
	for i, want := range []bool{true, false, true, true, true} {
		if (errs[i] == nil) != want {
			t.Fatalf("request %d: %v", i, errs[i])
		}
	}
	wantSchemaError(t, errs[1], "app/limits: /rps: must be >= 1 (schema app/)")
	if get(t, s, "app/limits") != `{"rps": -1}` {
		t.Fatalf("app/limits = %s", get(t, s, "app/limits"))
	}
}

func TestABackupRestoresTheSchemas(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	setSchema(t, s, "app/", limitsSchema)
	backup := filepath.Join(t.TempDir(), "backup.db")
	if _, err := s.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(t.TempDir(), "configd.db")
	if _, err := Restore(ctx, backup, dbPath, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = putJSON(r, "app/limits", `{"rps": 0}`)
	wantSchemaError(t, err, "app/limits: /rps: must be >= 1 (schema app/)")
}

// configd's own keys (keyspace.Own: the change requests' under
// .configd/) lie outside the whole keyspace: a listing, a rollback and a
// JSON Schema of everything leave them alone, and their own prefix
// reaches them.
func TestTheWholeKeyspaceLeavesConfigdsOwnKeysOut(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	r0 := put(t, s, "app/name", "orders")
	own := keyspace.RequestKey(1)
	if _, err := putJSON(s, own, `{"id": 1}`); err != nil {
		t.Fatal(err)
	}
	// A schema of the whole keyspace that allows app alone.
	setSchema(t, s, "", `{"type": "object", "additionalProperties": false, "properties": {"app": {}}}`)
	if _, err := putJSON(s, keyspace.RequestKey(2), `{"id": 2}`); err != nil {
		t.Fatalf("a request's key under a schema of the whole keyspace: %v", err)
	}
	if _, err := putJSON(s, "other/x", `1`); !errors.Is(err, ErrSchemaViolation) {
		t.Fatalf("a user's key the schema refuses: %v", err)
	}
	kvs, _, err := s.List(ctx, "")
	if err != nil || len(kvs) != 1 || kvs[0].Key != "app/name" {
		t.Fatalf("List(\"\") = %v, %v; want app/name alone", kvs, err)
	}
	if kvs, _, err = s.List(ctx, keyspace.RequestsNS); err != nil || len(kvs) != 2 {
		t.Fatalf("List(%q) = %v, %v; want both requests", keyspace.RequestsNS, kvs, err)
	}
	// Back to r0 for the whole keyspace: the requests stay.
	if _, err := s.Rollback(ctx, RollbackRequest{To: r0.Rev, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{own, keyspace.RequestKey(2), "app/name"} {
		if _, err := s.Get(ctx, k); err != nil {
			t.Fatalf("%s after the rollback of everything: %v", k, err)
		}
	}
}

// TestCheckSchemasTellsAheadAndWritesNothing: what a rollout's new values
// would leave is checked against the schemas without a revision.
func TestCheckSchemasTellsAheadAndWritesNothing(t *testing.T) {
	s := openTest(t)
	if _, err := putJSON(s, "app/limits", `{"rps": 5}`); err != nil {
		t.Fatal(err)
	}
	setSchema(t, s, "app/", limitsSchema)
	rev := s.Rev()
	wantSchemaError(t, s.CheckSchemas([]Op{Put("app/limits", []byte(`{"rps": 0}`), TypeJSON)}), "app/limits: /rps: must be >= 1 (schema app/)")
	if err := s.CheckSchemas([]Op{Put("app/limits", []byte(`{"rps": 9}`), TypeJSON), Put("db/x", []byte("1"), "")}); err != nil {
		t.Fatalf("a good change: %v", err)
	}
	if err := s.CheckSchemas([]Op{Delete("app/limits")}); err != nil {
		t.Fatalf("a delete the schema allows: %v", err)
	}
	if s.Rev() != rev {
		t.Fatalf("CheckSchemas wrote: revision %d, was %d", s.Rev(), rev)
	}
}
