package audit

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/audit/internal/backup"
	"github.com/configd/configd/internal/tampertest"
	"github.com/configd/configd/migrations"
)

// The LtHash the writer keeps follows every kind of write: puts, deletes,
// secrets marked, rewritten and deleted, source snapshots over them,
// tombstones, rollbacks, and several writes of one secret in one batch.
// (TestMain's check compares it with the tables after every batch; here,
// Verify and a reopen compare the tables with the digests.)
func TestStateDigestFollowsEveryKindOfWrite(t *testing.T) {
	ctx := context.Background()
	mk := masterKey(t)
	path := filepath.Join(t.TempDir(), "configd.db")
	opts := []Option{WithLayers("file", StoreLayer, "env"), WithMasterKey(mk)}
	g := &gate{}
	s, err := Open(ctx, path, append(opts, WithCommitHook(g.hook))...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	check := func(step string) {
		t.Helper()
		if res := verify(t, s); !res.OK || res.StateFrom != 1 {
			t.Fatalf("%s: verify = %+v", step, res)
		}
	}
	history(t, s)
	check("history")
	putSecret(t, s, "app/s", "one")
	put(t, s, "app/s", "two") // the mark sticks
	check("secret")
	applySource(t, s, "file", "app/s", "from file", "app/f", "file only")
	del(t, s, "app/f") // a tombstone over the file's value
	check("source under a secret, tombstone")
	// One batch: a secret written twice, marked, deleted and written again.
	_, errs := g.batch(t, s,
		Txn{Actor: "a", Ops: []Op{Put("app/s", []byte("three"), "").AsSecret()}},
		Txn{Actor: "a", Ops: []Op{Put("app/s", []byte("four"), "")}},
		Txn{Actor: "a", Ops: []Op{Put("app/p", []byte("plain"), "")}},
		Txn{Actor: "a", Ops: []Op{Put("app/p", []byte("plain"), "").AsSecret()}},
		Txn{Actor: "a", Ops: []Op{Delete("app/s")}},
		Txn{Actor: "a", Ops: []Op{Put("app/s", []byte("five"), "").AsSecret()}},
	)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	check("batch")
	if _, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Prefix: "app/"}, To: 8, Actor: "carol"}); err != nil {
		t.Fatal(err)
	}
	applySource(t, s, "env", "app/s", "from env")
	applySource(t, s, "file")
	check("rollback, sources")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, path, opts...); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	put(t, s, "app/after", "reopen")
	check("after reopen")
}

// stateEdits are edits of the current state behind configd's back, on the
// database history() and a secret write leave (head: revision 7).
var stateEdits = []struct{ name, stmt string }{
	{"kv value", `UPDATE kv SET value = 'forged' WHERE key = 'app/b'`},
	{"kv content type", `UPDATE kv SET content_type = 'application/json' WHERE key = 'app/b'`},
	{"kv mod_rev lowered", `UPDATE kv SET mod_rev = mod_rev - 1 WHERE key = 'app/b'`},
	{"kv create_rev", `UPDATE kv SET create_rev = 1 WHERE key = 'app/b'`},
	{"kv version", `UPDATE kv SET version = version + 1 WHERE key = 'app/b'`},
	{"kv secret flag cleared", `UPDATE kv SET secret = 0 WHERE key = 'app/s'`},
	{"kv secret flag set", `UPDATE kv SET secret = 1 WHERE key = 'app/b'`},
	{"kv ciphertext swapped", `UPDATE kv SET value = (SELECT value FROM layer_kv WHERE layer = 'store' AND key = 'app/s') WHERE key = 'app/s'`},
	{"kv row inserted", `INSERT INTO kv (key, value, content_type, create_rev, mod_rev, version) VALUES ('app/new', 'x', 'text/plain', 3, 3, 1)`},
	{"kv row deleted", `DELETE FROM kv WHERE key = 'app/a'`},
	{"layer value", `UPDATE layer_kv SET value = 'forged' WHERE layer = 'store' AND key = 'app/b'`},
	{"source layer value", `UPDATE layer_kv SET value = 'forged' WHERE layer = 'file' AND key = 'app/d'`},
	{"layer secret flag", `UPDATE layer_kv SET secret = 0 WHERE layer = 'store' AND key = 'app/s'`},
	{"layer row inserted", `INSERT INTO layer_kv (layer, key, value, content_type) VALUES ('file', 'app/a', 'x', 'text/plain')`},
	{"layer row of an unknown layer inserted", `INSERT INTO layer_kv (layer, key, value, content_type) VALUES ('gone', 'app/z', 'x', 'text/plain')`},
	{"tombstone inserted", `INSERT INTO layer_kv (layer, key, value, content_type) VALUES ('store', 'app/d', NULL, '')`},
	{"layer row deleted", `DELETE FROM layer_kv WHERE layer = 'store' AND key = 'app/a'`},
}

// stateHistory is history() and a secret: a database whose state has
// every kind of row, at revision 7.
func stateHistory(t *testing.T) (*Store, []Option) {
	t.Helper()
	opts := []Option{WithLayers("file", StoreLayer), WithMasterKey(masterKey(t))}
	s := openTest(t, opts...)
	history(t, s)
	putSecret(t, s, "app/s", plain)
	if s.Rev() != 7 {
		t.Fatalf("history is at revision %d, want 7", s.Rev())
	}
	return s, opts
}

func TestOpenRefusesAndVerifyReportsAStateThatDisagreesWithTheHistory(t *testing.T) {
	ctx := context.Background()
	for _, tc := range stateEdits {
		t.Run(tc.name, func(t *testing.T) {
			s, opts := stateHistory(t)
			head := verify(t, s)
			if !head.OK {
				t.Fatalf("before the edit: %+v", head)
			}
			// Edited while configd runs: Verify reports it.
			tampertest.Exec(t, s.Path(), tc.stmt)
			res := verify(t, s)
			if res.OK || !res.StateMismatch || res.BrokenRev != 7 || res.Head != 7 || res.HeadHash != head.HeadHash ||
				!strings.Contains(res.Problem, "disagrees with the history at revision 7") {
				t.Fatalf("verify after the edit = %+v", res)
			}
			// And the next start refuses it, saying what is wrong.
			path := s.Path()
			s.Close()
			_, err := Open(ctx, path, opts...)
			if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "revision 7") {
				t.Fatalf("open after the edit: %v", err)
			}
		})
	}
}

func TestOpenRefusesAHistoryWhoseNewestRevisionsWereRemoved(t *testing.T) {
	ctx := context.Background()
	cut := []string{`DELETE FROM changes WHERE rev > 5`, `DELETE FROM layer_changes WHERE rev > 5`, `DELETE FROM revisions WHERE rev > 5`}
	for _, tc := range []struct {
		name  string
		stmts []string
		want  string
	}{
		{"revisions removed", cut, "the history ends at revision 5, but this database had reached revision 7"},
		{"revisions and the keys they wrote removed",
			append(cut, `DELETE FROM kv WHERE key IN ('app/d', 'app/s')`, `DELETE FROM layer_kv WHERE key IN ('app/d', 'app/s')`),
			"the history ends at revision 5, but this database had reached revision 7"},
		{"revisions removed, the mark lowered",
			append(cut, `UPDATE audit_chain SET high_water = 5`),
			"the history ends at revision 5, but the state is newer: key \"app/s\" was modified at revision 7"},
		{"revisions removed, the mark lowered, the keys' revisions lowered",
			append(cut, `UPDATE audit_chain SET high_water = 5`, `UPDATE kv SET mod_rev = 5, create_rev = 5 WHERE key IN ('app/d', 'app/s')`),
			"disagrees with the history at revision 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, opts := stateHistory(t)
			tampertest.Exec(t, s.Path(), tc.stmts...)
			res := verify(t, s)
			if res.OK || !res.StateMismatch || res.Head != 5 || !strings.Contains(res.Problem, tc.want) {
				t.Fatalf("verify = %+v, want %q", res, tc.want)
			}
			path := s.Path()
			s.Close()
			if _, err := Open(ctx, path, opts...); !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open: %v, want %q", err, tc.want)
			}
		})
	}
}

// Someone who cuts the history and puts the whole state back as it was at
// the new head leaves a database that checks: only a head kept elsewhere
// tells (docs/security.md says so).
func TestACutRewrittenWholeIsCaughtByTheHeadKeptElsewhere(t *testing.T) {
	s, opts := stateHistory(t)
	before := verify(t, s)
	path := s.Path()
	s.Close()
	tampertest.Exec(t, path, `DELETE FROM changes WHERE rev > 5`, `DELETE FROM layer_changes WHERE rev > 5`, `DELETE FROM revisions WHERE rev > 5`,
		`DELETE FROM kv WHERE key IN ('app/d', 'app/s')`, `DELETE FROM layer_kv WHERE key IN ('app/d', 'app/s')`,
		`UPDATE audit_chain SET high_water = 5`)
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after := verify(t, s)
	if !after.OK || after.Head != 5 || after.Head == before.Head || after.HeadHash == before.HeadHash {
		t.Fatalf("before the cut %+v, after %+v", before, after)
	}
}

// Compaction removes history, never the state: the state still checks
// after it, across a reopen, and an edit is still caught.
func TestStateChecksAfterCompaction(t *testing.T) {
	s := compactedHistory(t)
	path := s.Path()
	s.Close()
	opts := []Option{WithLayers("file", StoreLayer), WithRetention(5, 0), noLoop}
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("reopen after compaction: %v", err)
	}
	defer s.Close()
	put(t, s, "app/a", "11")
	if res := verify(t, s); !res.OK || res.Horizon != 6 || res.Head != 11 {
		t.Fatalf("verify = %+v", res)
	}
	editCaught(t, s, 11, `UPDATE kv SET value = 'forged' WHERE key = 'app/b'`)
}

// editCaught edits the state of s's database behind its back and checks
// that Verify reports it at revision rev.
func editCaught(t *testing.T, s *Store, rev int64, stmt string) {
	t.Helper()
	tampertest.Exec(t, s.Path(), stmt)
	if res := verify(t, s); res.OK || !res.StateMismatch || res.BrokenRev != rev {
		t.Fatalf("verify after %s = %+v, want a state mismatch at revision %d", stmt, res, rev)
	}
}

// The high-water mark rises with the head: in the transaction that holds
// the journaled batches, once each settle, to the newest of them (or with
// each batch that commits alone).
func TestHighWaterMarkFollowsTheHead(t *testing.T) {
	s := openTest(t)
	read := func() int64 {
		if err := s.r.AwaitDB(context.Background()); err != nil {
			t.Fatal(err)
		}
		var hw int64
		if err := s.rdb.QueryRow(`SELECT high_water FROM audit_chain`).Scan(&hw); err != nil {
			t.Fatal(err)
		}
		return hw
	}
	if hw := read(); hw != 0 {
		t.Fatalf("empty store: high water %d", hw)
	}
	put(t, s, "a", "1")
	put(t, s, "a", "1") // changes nothing
	put(t, s, "b", "2")
	if hw := read(); hw != 2 || s.Rev() != 2 {
		t.Fatalf("high water %d at revision %d, want 2", hw, s.Rev())
	}
}

// A database upgraded from before the digest: its state is checked from
// the first revision written after the upgrade on; a key modified after
// the head is caught from the start.
func TestUpgradedDatabaseChecksItsStateFromTheFirstNewRevision(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "configd.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	// Revisions written before the chain, then the schema of the version
	// before the digest.
	ms, _ := migrations.Load(migrations.FS)
	if _, err := migrations.Apply(ctx, db, ms[:3]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO revisions (rev, ts, actor, origin, num_changes) VALUES (1, 10, 'old', 'api', 1), (2, 20, 'old', 'api', 1);
		INSERT INTO changes (rev, key, op, new_value, new_type, new_create_rev, new_version) VALUES (1, 'k', 1, 'v', 'text/plain', 1, 1);
		INSERT INTO changes (rev, key, op, new_value, new_type, new_create_rev, new_version) VALUES (2, 'j', 1, 'w', 'text/plain', 2, 1);
		INSERT INTO layer_changes (rev, layer, key, new_value, new_type) VALUES (1, 'store', 'k', 'v', 'text/plain');
		INSERT INTO layer_changes (rev, layer, key, new_value, new_type) VALUES (2, 'store', 'j', 'w', 'text/plain');
		INSERT INTO kv (key, value, content_type, create_rev, mod_rev, version) VALUES ('k', 'v', 'text/plain', 1, 1, 1), ('j', 'w', 'text/plain', 2, 2, 1);
		INSERT INTO layer_kv (layer, key, value, content_type) VALUES ('store', 'k', 'v', 'text/plain'), ('store', 'j', 'w', 'text/plain');`); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Apply(ctx, db, ms[:8]); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	res := verify(t, s)
	if !res.OK || res.StateFrom != 3 || res.LegacyThrough != 2 || res.Head != 2 {
		t.Fatalf("upgraded: %+v", res)
	}
	// No digest yet: an edit of a value is not seen...
	tampertest.Exec(t, path, `UPDATE kv SET value = 'x' WHERE key = 'k'`, `UPDATE layer_kv SET value = 'x' WHERE key = 'k'`)
	if res := verify(t, s); !res.OK {
		t.Fatalf("before any new revision: %+v", res)
	}
	// ...but a key modified after the head is.
	tampertest.Exec(t, path, `UPDATE kv SET mod_rev = 3 WHERE key = 'j'`)
	if res := verify(t, s); res.OK || !res.StateMismatch || !strings.Contains(res.Problem, `key "j" was modified at revision 3`) {
		t.Fatalf("a key modified after the head: %+v", res)
	}
	tampertest.Exec(t, path, `UPDATE kv SET mod_rev = 2 WHERE key = 'j'`)
	s.Close()
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// From the first new revision on, the state is covered.
	put(t, s, "k", "y")
	if res := verify(t, s); !res.OK || res.Head != 3 || res.StateFrom != 3 {
		t.Fatalf("after a new revision: %+v", res)
	}
	editCaught(t, s, 3, `UPDATE kv SET value = 'z' WHERE key = 'j'`)
}

// A revision written after the upgrade must record its digest: removing
// it is caught at start.
func TestOpenRefusesAHeadWithoutItsStateDigest(t *testing.T) {
	s, opts := stateHistory(t)
	path := s.Path()
	s.Close()
	tampertest.Exec(t, path, `UPDATE revisions SET state = NULL WHERE rev = 7`)
	_, err := Open(context.Background(), path, opts...)
	if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "revision 7 records no state digest") {
		t.Fatalf("open: %v", err)
	}
}

func TestRestoreRefusesABackupWhoseStateDisagreesWithItsHistory(t *testing.T) {
	ctx := context.Background()
	s, _ := stateHistory(t)
	good := filepath.Join(t.TempDir(), "good.db")
	info, err := s.Backup(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, stmt, want string }{
		{"a value edited", `UPDATE kv SET value = 'forged' WHERE key = 'app/b'`, "disagrees with the history at revision 7"},
		{"the newest revision removed", `DELETE FROM layer_changes WHERE rev = 7; DELETE FROM changes WHERE rev = 7; DELETE FROM revisions WHERE rev = 7`,
			"the history ends at revision 6, but this database had reached revision 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.db")
			if err := backup.CopyFile(good, bad); err != nil {
				t.Fatal(err)
			}
			tampertest.Exec(t, bad, tc.stmt)
			dbPath := filepath.Join(t.TempDir(), "configd.db")
			res, err := Restore(ctx, bad, dbPath, RestoreOptions{})
			if !errors.Is(err, ErrStateMismatch) || !res.StateMismatch || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore: %+v, %v", res, err)
			}
			assertNoFile(t, dbPath)
		})
	}
	// The untouched backup restores, with the head it had.
	dbPath := filepath.Join(t.TempDir(), "configd.db")
	res, err := Restore(ctx, good, dbPath, RestoreOptions{})
	if err != nil || !res.OK || res.Head != info.Rev || res.HeadHash != info.HeadHash {
		t.Fatalf("restore of the untouched backup: %+v, %v", res, err)
	}
}
