package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/configd/configd/secrets"
)

// plain is a secret value that must never be found at rest.
const plain = "hunter2-Zq8xVv-correct-horse"

func masterKey(t testing.TB) *secrets.MasterKey {
	t.Helper()
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return mk
}

func putSecret(t testing.TB, s *Store, key, value string) Revision {
	t.Helper()
	r, err := s.Commit(context.Background(), Txn{Actor: "alice", Ops: []Op{Put(key, []byte(value), "").AsSecret()}})
	if err != nil {
		t.Fatalf("put secret %s: %v", key, err)
	}
	return r
}

// fileBytes returns the database file and its WAL, as they are on disk.
func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("no database bytes")
	}
	return all
}

func TestSecretRoundTripAndCiphertextAtRest(t *testing.T) {
	ctx := context.Background()
	mk := masterKey(t)
	path := filepath.Join(t.TempDir(), "configd.db")
	var hooked []Revision
	s, err := Open(ctx, path, WithMasterKey(mk), WithCommitHook(func(r Revision) { hooked = append(hooked, r) }))
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "app/plain", "visible")
	r := putSecret(t, s, "app/db/password", plain)
	// The caller's result withholds the value; the hook has it.
	if c := r.Changes[0]; !c.New.Secret || !c.New.Withheld() || c.New.Value != nil || c.New.Length != len(plain) {
		t.Fatalf("Commit result: %+v", c.New)
	}
	if got := string(hooked[len(hooked)-1].Changes[0].New.Value); got != plain {
		t.Fatalf("commit hook got %q", got)
	}
	kv, err := s.Get(ctx, "app/db/password")
	if err != nil || string(kv.Value) != plain || !kv.Secret {
		t.Fatalf("Get = %+v, %v", kv, err)
	}
	// The mark sticks: a put without it is still a secret's.
	r2, err := s.Commit(ctx, Txn{Actor: "bob", Ops: []Op{Put("app/db/password", []byte(plain+"-2"), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Changes[0].New.Secret {
		t.Fatal("the secret mark did not stick")
	}
	if got := get(t, s, "app/db/password", AtRev(r.Rev)); got != plain {
		t.Fatalf("Get at rev %d = %q", r.Rev, got)
	}
	kvs, _, err := s.List(ctx, "app/")
	if err != nil || len(kvs) != 2 || string(kvs[0].Value) != plain+"-2" || !kvs[0].Secret || kvs[1].Secret {
		t.Fatalf("List = %+v, %v", kvs, err)
	}
	kvs, _, err = s.List(ctx, "app/", AtRev(r.Rev))
	if err != nil || string(kvs[0].Value) != plain {
		t.Fatalf("List at rev = %+v, %v", kvs, err)
	}
	after, err := s.RevisionsAfter(ctx, 0, 0)
	if err != nil || string(after[1].Changes[0].New.Value) != plain {
		t.Fatalf("RevisionsAfter: %+v, %v", after, err)
	}
	// At rest: neither the database nor its WAL holds the plaintext, and
	// the non-secret value is there (the grep works).
	raw := fileBytes(t, path)
	if bytes.Contains(raw, []byte(plain)) || bytes.Contains(raw, []byte("hunter2")) {
		t.Fatal("the plaintext of a secret is in the database files")
	}
	if !bytes.Contains(raw, []byte("visible")) {
		t.Fatal("the plain value is not in the database files: the check proves nothing")
	}
	if res := verify(t, s); !res.OK {
		t.Fatalf("Verify: %+v", res)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw = fileBytes(t, path)
	if bytes.Contains(raw, []byte("hunter2")) {
		t.Fatal("the plaintext of a secret is in the database file after close")
	}
	// Reopened with the master key: the in-memory state has the value.
	s, err = Open(ctx, path, WithMasterKey(mk))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := get(t, s, "app/db/password"); got != plain+"-2" {
		t.Fatalf("after reopen: %q", got)
	}
}

func TestSecretsAreWithheldFromHistoryDiffRevisionAndStack(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithMasterKey(masterKey(t)))
	r1 := putSecret(t, s, "app/token", plain)
	r2 := putSecret(t, s, "app/token", plain+"x")
	put(t, s, "app/other", "v")
	checkKV := func(where string, kv *KeyValue, length int) {
		t.Helper()
		if kv == nil || !kv.Secret || kv.Value != nil || !strings.HasPrefix(kv.Hash, "hmac-sha256:") || kv.Length != length {
			t.Fatalf("%s: %+v, want a withheld value of %d bytes", where, kv, length)
		}
	}
	page, err := s.History(ctx, HistoryQuery{Scope: Scope{Key: "app/token"}})
	if err != nil {
		t.Fatal(err)
	}
	checkKV("history new", page.Revisions[0].Changes[0].New, len(plain)+1)
	checkKV("history old", page.Revisions[0].Changes[0].Old, len(plain))
	checkKV("history first", page.Revisions[1].Changes[0].New, len(plain))
	// Equal values have equal digests; different ones differ.
	if page.Revisions[0].Changes[0].Old.Hash != page.Revisions[1].Changes[0].New.Hash ||
		page.Revisions[0].Changes[0].Old.Hash == page.Revisions[0].Changes[0].New.Hash {
		t.Fatal("digests do not follow the values")
	}
	rev, err := s.Revision(ctx, r2.Rev)
	if err != nil {
		t.Fatal(err)
	}
	checkKV("revision", rev.Changes[0].New, len(plain)+1)
	for _, lc := range rev.LayerChanges {
		if lc.New.Value != nil || lc.New.Hash == "" {
			t.Fatalf("layer change: %+v", lc.New)
		}
	}
	changes, err := s.Diff(ctx, Scope{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Key == "app/token" {
			checkKV("diff", c.New, len(plain)+1)
		} else if string(c.New.Value) != "v" {
			t.Fatalf("diff of a plain key: %+v", c.New)
		}
	}
	stack, err := s.Stack(ctx, "app/token")
	if err != nil || len(stack) != 1 || stack[0].Value.Value != nil || stack[0].Value.Hash == "" {
		t.Fatalf("Stack = %+v, %v", stack, err)
	}
	dry, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Key: "app/token"}, To: r1.Rev, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	checkKV("rollback dry run", dry.Changes[0].New, len(plain))
	rb, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Key: "app/token"}, To: r1.Rev, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	checkKV("rollback", rb.Changes[0].New, len(plain))
	kv, err := s.Get(ctx, "app/token")
	if err != nil || string(kv.Value) != plain || !kv.Secret {
		t.Fatalf("after rollback: %+v, %v", kv, err)
	}
	if res := verify(t, s); !res.OK {
		t.Fatalf("Verify: %+v", res)
	}
}

func TestMarkingAnExistingKeyAndDeletingASecret(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithMasterKey(masterKey(t)))
	put(t, s, "db/pass", "old-plain")
	r := putSecret(t, s, "db/pass", "old-plain") // same value: the mark is a change
	if len(r.Changes) != 1 || !r.Changes[0].New.Secret {
		t.Fatalf("marking: %+v", r.Changes)
	}
	// The change that marked it withholds both sides.
	page, err := s.History(ctx, HistoryQuery{Scope: Scope{Key: "db/pass"}, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if c := page.Revisions[0].Changes[0]; !c.Old.Withheld() || !c.New.Withheld() {
		t.Fatalf("marking change: old %+v new %+v", c.Old, c.New)
	}
	del(t, s, "db/pass")
	put(t, s, "db/pass", "plain-again")
	kv, err := s.Get(ctx, "db/pass")
	if err != nil || kv.Secret {
		t.Fatalf("after delete and put: %+v, %v (a delete unmarks)", kv, err)
	}
	if _, err := s.Commit(ctx, Txn{Ops: []Op{Delete("db/pass").AsSecret()}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("secret delete: %v", err)
	}
}

func TestSecretsWithoutOrWithTheWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "configd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, Txn{Ops: []Op{Put("app/k", []byte(plain), "").AsSecret()}}); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("secret without master key: %v", err)
	}
	if s.Rev() != 0 {
		t.Fatal("the refused write was recorded")
	}
	s.Close()
	mk := masterKey(t)
	s, err = Open(ctx, path, WithMasterKey(mk))
	if err != nil {
		t.Fatal(err)
	}
	putSecret(t, s, "app/k", plain)
	s.Close()
	if _, err := Open(ctx, path); !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("open without the master key: %v", err)
	}
	_, err = Open(ctx, path, WithMasterKey(masterKey(t)))
	if !errors.Is(err, ErrWrongMasterKey) || !strings.Contains(err.Error(), mk.ID()) {
		t.Fatalf("open with another master key: %v", err)
	}
}

func TestRotateMasterKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "configd.db")
	oldKey, newKey := masterKey(t), masterKey(t)
	s, err := Open(ctx, path, WithMasterKey(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	putSecret(t, s, "app/a", plain)
	putSecret(t, s, "db/b", plain+"b")
	var before []byte
	if err := s.rdb.QueryRow(`SELECT value FROM kv WHERE key = 'app/a'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateMasterKey(ctx, newKey); err != nil {
		t.Fatal(err)
	}
	if s.MasterKeyID() != newKey.ID() {
		t.Fatal("the store does not use the new master key")
	}
	// Writes go on under the rotated keys.
	putSecret(t, s, "app/c", "c")
	putSecret(t, s, "new/d", "d")
	s.Close()
	if _, err := Open(ctx, path, WithMasterKey(oldKey)); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("old master key after rotation: %v", err)
	}
	s, err = Open(ctx, path, WithMasterKey(newKey))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var after []byte
	if err := s.rdb.QueryRow(`SELECT value FROM kv WHERE key = 'app/a'`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("rotation re-encrypted a value: it must only re-wrap the data keys")
	}
	for k, want := range map[string]string{"app/a": plain, "db/b": plain + "b", "app/c": "c", "new/d": "d"} {
		if got := get(t, s, k); got != want {
			t.Fatalf("%s = %q after rotation", k, got)
		}
	}
	if res := verify(t, s); !res.OK {
		t.Fatalf("Verify: %+v", res)
	}
}

func TestTamperedCiphertextFailsClearly(t *testing.T) {
	ctx := context.Background()
	mk := masterKey(t)
	s := openTest(t, WithMasterKey(mk))
	r := putSecret(t, s, "app/k", plain)
	putSecret(t, s, "app/k", "second")
	path := s.Path()
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	// Flip the last byte of the first revision's ciphertext.
	if _, err := db.Exec(`UPDATE changes SET new_value = substr(new_value, 1, length(new_value) - 1) ||
		CASE WHEN substr(new_value, -1) = x'00' THEN x'01' ELSE x'00' END WHERE rev = ?`, r.Rev); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(ctx, path, WithMasterKey(mk))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(ctx, "app/k", AtRev(r.Rev)); !errors.Is(err, ErrDecrypt) || strings.Contains(err.Error(), plain) {
		t.Fatalf("Get of a tampered ciphertext: %v", err)
	}
	if res := verify(t, s); res.OK || res.BrokenRev != r.Rev {
		t.Fatalf("Verify after tampering: %+v", res)
	}
}

func TestMovedCiphertextDoesNotDecrypt(t *testing.T) {
	ctx := context.Background()
	mk := masterKey(t)
	s := openTest(t, WithMasterKey(mk))
	putSecret(t, s, "app/a", plain)
	putSecret(t, s, "app/b", "other")
	path := s.Path()
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE kv SET value = (SELECT value FROM kv WHERE key = 'app/a') WHERE key = 'app/b'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Open refuses the edit before it decrypts anything; opened anyway (as
	// Restore's check does), the moved value does not decrypt.
	if _, err := Open(ctx, path, WithMasterKey(mk)); !errors.Is(err, ErrStateMismatch) {
		t.Fatalf("open with a ciphertext moved to another key: %v", err)
	}
	if _, err := Open(ctx, path, WithMasterKey(mk), func(o *options) { o.inspect = true }); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("open with a ciphertext moved to another key, unchecked: %v", err)
	}
}

func TestSecretSurvivesCompaction(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "configd.db")
	s, err := Open(ctx, path, WithMasterKey(masterKey(t)), WithRetention(2, 0), WithCompactInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	putSecret(t, s, "app/k", plain)
	for i := 0; i < 5; i++ {
		put(t, s, "other", strings.Repeat("x", i+1))
	}
	if _, err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Horizon() <= 1 {
		t.Fatalf("horizon %d: nothing compacted", s.Horizon())
	}
	if got := get(t, s, "app/k", AtRev(s.Horizon())); got != plain {
		t.Fatalf("secret from the history base: %q", got)
	}
	if bytes.Contains(fileBytes(t, path), []byte("hunter2")) {
		t.Fatal("the plaintext is in the database files after compaction")
	}
	if res := verify(t, s); !res.OK {
		t.Fatalf("Verify: %+v", res)
	}
}

func TestBackupAndRestoreOfSecretsNeedNoMasterKey(t *testing.T) {
	ctx := context.Background()
	mk := masterKey(t)
	s := openTest(t, WithMasterKey(mk))
	putSecret(t, s, "app/k", plain)
	dir := t.TempDir()
	bak := filepath.Join(dir, "backup.db")
	if _, err := s.Backup(ctx, bak); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(bak)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("hunter2")) {
		t.Fatal("the backup holds the plaintext")
	}
	dst := filepath.Join(dir, "restored.db")
	if res, err := Restore(ctx, bak, dst, RestoreOptions{}); err != nil || !res.OK {
		t.Fatalf("Restore: %+v, %v", res, err)
	}
	r, err := Open(ctx, dst, WithMasterKey(mk))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := get(t, r, "app/k"); got != plain {
		t.Fatalf("restored secret = %q", got)
	}
}

// TestRotateDataKeys: a rotated prefix seals new values with a new data key; values written
// before keep theirs and still open, also after a restart; other prefixes are untouched, and
// the audit chain still verifies.
func TestRotateDataKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "configd.db")
	mk := masterKey(t)
	s, err := Open(ctx, path, WithMasterKey(mk))
	if err != nil {
		t.Fatal(err)
	}
	keyID := func(s *Store, key string) int64 {
		t.Helper()
		var ct []byte
		if err := s.r.AwaitDB(ctx); err != nil { // the database holds the journaled batches
			t.Fatal(err)
		}
		if err := s.rdb.QueryRow(`SELECT value FROM kv WHERE key = ?`, key).Scan(&ct); err != nil {
			t.Fatal(err)
		}
		id, err := secrets.CiphertextKeyID(ct)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	putSecret(t, s, "app/a", plain)
	putSecret(t, s, "db/b", "b-before")
	old := putSecret(t, s, "app/c", "c-before").Rev
	appBefore, dbBefore := keyID(s, "app/a"), keyID(s, "db/b")

	if _, err := s.RotateDataKeys(ctx, "nope/"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("rotating a prefix without a data key: %v, want ErrBadRequest", err)
	}
	rotated, err := s.RotateDataKeys(ctx, "app/")
	if err != nil || len(rotated) != 1 || rotated[0] != "app/" {
		t.Fatalf("RotateDataKeys(app/) = %q, %v", rotated, err)
	}
	putSecret(t, s, "app/c", "c-after")
	putSecret(t, s, "db/b", "b-after")
	if id := keyID(s, "app/c"); id == appBefore {
		t.Fatalf("a value written after the rotation is sealed with the old data key %d", id)
	}
	if id := keyID(s, "app/a"); id != appBefore {
		t.Fatalf("app/a, written before, moved from data key %d to %d", appBefore, id)
	}
	if id := keyID(s, "db/b"); id != dbBefore {
		t.Fatalf("db/, not rotated, changed data key: %d → %d", dbBefore, id)
	}

	// Every prefix at once; then a restart with the same master key opens every value.
	all, err := s.RotateDataKeys(ctx)
	if err != nil || !slices.Equal(all, []string{"app/", "db/"}) {
		t.Fatalf("RotateDataKeys() = %q, %v; want app/ and db/", all, err)
	}
	s.Close()
	s, err = Open(ctx, path, WithMasterKey(mk))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for k, want := range map[string]string{"app/a": plain, "app/c": "c-after", "db/b": "b-after"} {
		if got := get(t, s, k); got != want {
			t.Fatalf("%s = %q after rotations and a restart, want %q", k, got, want)
		}
	}
	if kv, err := s.Get(ctx, "app/c", AtRev(old)); err != nil || string(kv.Value) != "c-before" {
		t.Fatalf("app/c at rev %d = %+v, %v; want the value sealed with the old key", old, kv, err)
	}
	putSecret(t, s, "app/d", "d")
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM data_keys WHERE prefix = 'app/'`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("app/ has %d data keys after two rotations, want 3 (%v)", n, err)
	}
	if res := verify(t, s); !res.OK {
		t.Fatalf("Verify after rotations: %+v", res)
	}
}
