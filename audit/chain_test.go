package audit

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/internal/tampertest"
	"github.com/configd/configd/migrations"
)

// history writes a few revisions of every kind: puts, a multi-key
// transaction, a delete, a rollback and a source snapshot, so that every
// column the chain covers holds something.
func history(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	put(t, s, "app/a", "1")                                                        // 1
	put(t, s, "app/b", "2")                                                        // 2
	if _, err := s.Commit(ctx, Txn{Actor: "bob", Reason: "two at once", Ops: []Op{ // 3
		Put("app/a", []byte(`{"x":1}`), TypeJSON), Put("app/c", []byte("3"), ""),
	}}); err != nil {
		t.Fatal(err)
	}
	del(t, s, "app/b")                                                                                                               // 4
	if _, err := s.Rollback(ctx, RollbackRequest{Scope: Scope{Prefix: "app/"}, To: 2, Actor: "carol", Reason: "undo"}); err != nil { // 5
		t.Fatal(err)
	}
	applySource(t, s, "file", "app/d", "from file") // 6
}

func verify(t *testing.T, s *Store) VerifyResult {
	t.Helper()
	res, err := s.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

func TestVerifyAcceptsAnUntouchedChain(t *testing.T) {
	s := openTest(t, WithLayers("file", StoreLayer))
	if res := verify(t, s); !res.OK || res.Revisions != 0 || res.Head != 0 {
		t.Fatalf("empty store: %+v", res)
	}
	history(t, s)
	res := verify(t, s)
	if !res.OK || res.Revisions != 6 || res.Head != 6 || len(res.HeadHash) != 64 || res.BrokenRev != 0 {
		t.Fatalf("verify = %+v", res)
	}
}

func TestChainContinuesAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	s, err := Open(context.Background(), path, WithLayers("file", StoreLayer))
	if err != nil {
		t.Fatal(err)
	}
	history(t, s)
	head := verify(t, s).HeadHash
	s.Close()
	s, err = Open(context.Background(), path, WithLayers("file", StoreLayer))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(t, s, "app/e", "after reopen")
	res := verify(t, s)
	if !res.OK || res.Head != 7 || res.HeadHash == head {
		t.Fatalf("after reopen: %+v (head before %s)", res, head)
	}
}

// Failed requests inside a batch (conflicts, refused before they stage
// anything) must not advance the chain.
func TestChainSurvivesConcurrentCommitsAndConflicts(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				op := Put(fmt.Sprintf("k/%d", i%3), []byte(fmt.Sprint(g, i)), "")
				if i%2 == 0 {
					op = op.WithModRev(int64(i)) // mostly conflicts
				}
				_, _ = s.Commit(ctx, Txn{Actor: fmt.Sprint("w", g), Ops: []Op{op}})
			}
		}()
	}
	wg.Wait()
	res := verify(t, s)
	if !res.OK || res.Head != s.Rev() || res.Revisions != s.Rev() || s.Rev() < 8*12 {
		t.Fatalf("verify = %+v, store rev %d", res, s.Rev())
	}
}

// tamper closes s, runs the SQL statements on its file directly, as
// someone with access to the file would, and reopens it.
func tamper(t *testing.T, s *Store, stmts ...string) *Store {
	t.Helper()
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tampertest.Exec(t, path, stmts...)
	s, err := Open(context.Background(), path, WithLayers("file", StoreLayer))
	if err != nil {
		t.Fatalf("reopen after tampering: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestVerifyNamesTheFirstTamperedRevision(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stmts   []string
		broken  int64
		problem string
	}{
		{"value in changes", []string{`UPDATE changes SET new_value = 'evil' WHERE rev = 3 AND key = 'app/c'`}, 3, "does not match"},
		{"old value in changes", []string{`UPDATE changes SET old_value = '0' WHERE rev = 4`}, 4, "does not match"},
		{"actor in revisions", []string{`UPDATE revisions SET actor = 'mallory' WHERE rev = 2`}, 2, "does not match"},
		{"reason in revisions", []string{`UPDATE revisions SET reason = '' WHERE rev = 5`}, 5, "does not match"},
		{"time in revisions", []string{`UPDATE revisions SET ts = ts + 1 WHERE rev = 1`}, 1, "does not match"},
		{"layer change", []string{`UPDATE layer_changes SET new_value = 'x' WHERE rev = 6`}, 6, "does not match"},
		{"deleted change", []string{`DELETE FROM changes WHERE rev = 3 AND key = 'app/a'`}, 3, "does not match"},
		{"added change", []string{`INSERT INTO changes (rev, key, op, new_value, new_type, new_create_rev, new_version)
			VALUES (2, 'app/z', 1, 'z', 'text/plain', 2, 1)`}, 2, "does not match"},
		{"deleted revision", []string{`DELETE FROM changes WHERE rev = 4`, `DELETE FROM layer_changes WHERE rev = 4`,
			`DELETE FROM revisions WHERE rev = 4`}, 4, "missing"},
		{"first revision deleted", []string{`DELETE FROM changes WHERE rev = 1`, `DELETE FROM layer_changes WHERE rev = 1`,
			`DELETE FROM revisions WHERE rev = 1`}, 1, "missing"},
		{"hash removed", []string{`UPDATE revisions SET hash = NULL WHERE rev = 5`}, 5, "no hash"},
		// An edit whose author recomputes that revision's hash still breaks
		// the link to the next one.
		{"hash rewritten", []string{`UPDATE revisions SET actor = 'mallory' WHERE rev = 2`,
			`UPDATE revisions SET hash = (SELECT hash FROM revisions WHERE rev = 3) WHERE rev = 2`}, 2, "does not match"},
		{"swapped values", []string{`UPDATE changes SET new_value = (SELECT new_value FROM changes WHERE rev = 1) WHERE rev = 2`}, 2, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, WithLayers("file", StoreLayer))
			history(t, s)
			if res := verify(t, s); !res.OK {
				t.Fatalf("before tampering: %+v", res)
			}
			s = tamper(t, s, tc.stmts...)
			res := verify(t, s)
			if res.OK || res.BrokenRev != tc.broken || !strings.Contains(res.Problem, tc.problem) ||
				!strings.Contains(res.Problem, fmt.Sprintf("revision %d ", tc.broken)) {
				t.Fatalf("verify = %+v, want revision %d broken (%s)", res, tc.broken, tc.problem)
			}
			if res.Revisions != tc.broken-1 {
				t.Fatalf("verified %d revisions before the break, want %d", res.Revisions, tc.broken-1)
			}
		})
	}
}

// A revision whose hash is recomputed correctly after an edit (the chain
// has no secret) breaks the next revision's link.
func TestVerifyCatchesARecomputedHashAtTheNextRevision(t *testing.T) {
	s := openTest(t, WithLayers("file", StoreLayer))
	history(t, s)
	path := s.Path()
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE revisions SET actor = 'mallory' WHERE rev = 3`); err != nil {
		t.Fatal(err)
	}
	var h3 []byte
	err = chain.Walk(context.Background(), db, 1, 3, nil, func(r chain.RevRow, hash, _ []byte) (bool, error) {
		h3 = hash
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE revisions SET hash = ? WHERE rev = 3`, h3); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(context.Background(), path, WithLayers("file", StoreLayer))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if res := verify(t, s); res.OK || res.BrokenRev != 4 {
		t.Fatalf("verify = %+v, want revision 4 broken", res)
	}
}

// A database from before the chain gets its revisions hashed, in order,
// when it is first opened; new revisions continue the chain.
func TestOpenHashesRevisionsWrittenBeforeTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := migrations.Load(migrations.FS)
	if _, err := migrations.Apply(context.Background(), db, ms[:3]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO revisions (rev, ts, actor, origin, num_changes) VALUES (1, 10, 'old', 'api', 1), (2, 20, 'old', 'api', 1);
		INSERT INTO changes (rev, key, op, new_value, new_type, new_create_rev, new_version) VALUES (1, 'k', 1, 'v', 'text/plain', 1, 1);
		INSERT INTO changes (rev, key, op, old_value, old_type, old_create_rev, old_mod_rev, old_version, new_value, new_type, new_create_rev, new_version)
			VALUES (2, 'k', 1, 'v', 'text/plain', 1, 1, 1, 'w', 'text/plain', 1, 2);
		INSERT INTO layer_changes (rev, layer, key, new_value, new_type) VALUES (1, 'store', 'k', 'v', 'text/plain');
		INSERT INTO layer_changes (rev, layer, key, old_value, old_type, new_value, new_type) VALUES (2, 'store', 'k', 'v', 'text/plain', 'w', 'text/plain');
		INSERT INTO kv (key, value, content_type, create_rev, mod_rev, version) VALUES ('k', 'w', 'text/plain', 1, 2, 2);
		INSERT INTO layer_kv (layer, key, value, content_type) VALUES ('store', 'k', 'w', 'text/plain');`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if res := verify(t, s); !res.OK || res.Revisions != 2 || res.LegacyThrough != 2 {
		t.Fatalf("after upgrade: %+v", res)
	}
	put(t, s, "k", "x")
	res := verify(t, s)
	if !res.OK || res.Revisions != 3 || res.LegacyThrough != 2 {
		t.Fatalf("after a new revision: %+v", res)
	}
	// The legacy revisions are covered from now on.
	s = tamper(t, s, `UPDATE changes SET new_value = 'evil' WHERE rev = 1`)
	if res := verify(t, s); res.OK || res.BrokenRev != 1 {
		t.Fatalf("legacy revision edited: %+v", res)
	}
}

// Verify reads one snapshot: commits that land while it runs neither
// break it nor show up half.
func TestVerifyWhileWriting(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	for i := range 20 {
		put(t, s, fmt.Sprintf("k/%d", i), "v")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if _, err := s.Commit(ctx, Txn{Actor: "w", Ops: []Op{Put(fmt.Sprintf("w/%d", i), []byte("v"), "")}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	checks := 0
	for finished := false; !finished; checks++ {
		select {
		case <-done:
			finished = true
		default:
		}
		res, err := s.Verify(ctx)
		if err != nil || !res.OK || res.Head != res.Revisions || res.Head < 20 {
			t.Errorf("verify while writing = %+v, %v", res, err)
			<-done
			return
		}
	}
	if res := verify(t, s); !res.OK || res.Head != 220 || checks < 2 {
		t.Fatalf("final verify = %+v after %d checks", res, checks)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	for i := range 2000 {
		if _, err := s.Commit(ctx, Txn{Actor: "bench", Ops: []Op{Put(fmt.Sprintf("k/%d", i%100), []byte(fmt.Sprint(i)), "")}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if res, err := s.Verify(ctx); err != nil || !res.OK {
			b.Fatal(res, err)
		}
	}
}
