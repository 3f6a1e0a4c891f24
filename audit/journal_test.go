package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/configd/configd/audit/internal/backup"
	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/internal/sqlitedb"
)

// settleNever keeps the journaled batches out of the database for the
// length of a test (the writer settles them after an hour idle).
func settleNever(o *options) { o.settleAfter = time.Hour }

// crashImage copies the files a store at path leaves on disk at this
// moment (the database, SQLite's WAL and the journal) into a new
// directory, as a kill -9 would leave them: what the process wrote is in
// the page cache, what it had not written is not.
func crashImage(t *testing.T, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "configd.db")
	for _, p := range append(sqlitedb.Files(path)[:2], JournalPath(path)) {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		to := dst + p[len(path):]
		if err := backup.CopyFile(p, to); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// A crash after batches are acknowledged (in the journal) and before the
// database commits them loses none of them: the next Open applies them
// from the journal, checked against the audit chain, and the history,
// the chain and the state are whole.
func TestJournalGivesBackAcknowledgedRevisionsAfterACrash(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, settleNever)
	for i := range 20 {
		put(t, s, fmt.Sprintf("app/k%d", i%7), fmt.Sprint(i))
	}
	if err := s.r.AwaitDB(ctx); err != nil { // the first 20 settle
		t.Fatal(err)
	}
	var want []Revision
	for i := range 30 {
		want = append(want, put(t, s, fmt.Sprintf("app/k%d", i%9), fmt.Sprint("after ", i)))
	}
	img := crashImage(t, s.Path())
	var inDB int64
	if err := s.rdb.QueryRow(`SELECT max(rev) FROM revisions`).Scan(&inDB); err != nil || inDB != 20 {
		t.Fatalf("the database holds revision %d (%v) at the crash, want 20: the test must crash before the settle", inDB, err)
	}

	c, err := Open(ctx, img, noLoop)
	if err != nil {
		t.Fatalf("open after the crash: %v", err)
	}
	defer c.Close()
	if c.Rev() != 50 {
		t.Fatalf("revision after the crash: %d, want 50", c.Rev())
	}
	for _, w := range want {
		got, err := c.Revision(ctx, w.Rev)
		if err != nil || len(got.Changes) != 1 || string(got.Changes[0].New.Value) != string(w.Changes[0].New.Value) {
			t.Fatalf("revision %d after the crash: %+v, %v; want %+v", w.Rev, got, err, w)
		}
	}
	if res := verify(t, c); !res.OK || res.Head != 50 {
		t.Fatalf("verify after the crash: %+v", res)
	}
	if kv, err := c.Get(ctx, "app/k2"); err != nil || string(kv.Value) != "after 29" {
		t.Fatalf("app/k2 after the crash: %q, %v", kv.Value, err)
	}
	// It goes on from there, and a clean close leaves nothing to apply.
	if r := put(t, c, "app/next", "1"); r.Rev != 51 {
		t.Fatalf("the next revision: %d, want 51", r.Rev)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = Open(ctx, img, noLoop)
	if err != nil {
		t.Fatal(err)
	}
	if res := verify(t, c); !res.OK || res.Head != 51 {
		t.Fatalf("verify after a clean reopen: %+v", res)
	}
}

// A journal that does not follow the database's chain (another store's,
// put beside it by hand) is refused at Open, and nothing of it applied.
func TestJournalOfAnotherDatabaseIsRefused(t *testing.T) {
	ctx := context.Background()
	a := openTest(t, settleNever)
	b := openTest(t)
	for i := range 5 {
		put(t, a, "app/a", fmt.Sprint("a", i))
		put(t, b, "app/b", fmt.Sprint("b", i))
	}
	if err := a.r.AwaitDB(ctx); err != nil {
		t.Fatal(err)
	}
	put(t, a, "app/a", "unsettled")
	imgA := crashImage(t, a.Path())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	imgB := crashImage(t, b.Path())
	if err := backup.CopyFile(JournalPath(imgA), JournalPath(imgB)+".a"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(JournalPath(imgB)+".a", JournalPath(imgB)); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, imgB, noLoop); err == nil {
		s.Close()
		t.Fatal("open with another database's journal: no error")
	} else if !errors.Is(err, commit.ErrDiverged) {
		t.Fatalf("open with another database's journal: %v, want a chain mismatch", err)
	}
	s, err := Open(ctx, imgB, noLoop, WithJournal(false))
	if err == nil {
		defer s.Close()
		t.Fatal("open without a journal while one holds revisions the database lacks: no error")
	}
}

// Restore over a database whose journal holds revisions moves the journal
// aside with the old database: the restored one opens at its own
// revision, and nothing of the old journal is applied to it.
func TestRestoreMovesTheJournalAsideWithTheOldDatabase(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, settleNever)
	for i := range 5 {
		put(t, s, "app/a", fmt.Sprint(i))
	}
	bk := filepath.Join(t.TempDir(), "backup.db")
	if _, err := s.Backup(ctx, bk); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		put(t, s, "app/a", fmt.Sprint("later ", i))
	}
	img := crashImage(t, s.Path())
	if _, err := Restore(ctx, bk, img, RestoreOptions{Replace: true}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	r, err := Open(ctx, img, noLoop)
	if err != nil {
		t.Fatalf("open the restored database: %v", err)
	}
	defer r.Close()
	if r.Rev() != 5 {
		t.Fatalf("restored revision %d, want 5 (the backup's)", r.Rev())
	}
	if kv, err := r.Get(ctx, "app/a"); err != nil || string(kv.Value) != "4" {
		t.Fatalf("app/a restored: %q, %v; want 4", kv.Value, err)
	}
	aside, _ := filepath.Glob(img + ".replaced-*" + JournalPath(""))
	if len(aside) != 1 {
		t.Fatalf("the old journal beside the old database: %v", aside)
	}
}

// A batch that fails after its rows reached the transaction that holds
// the unsettled batches gives that transaction up: the batches before it,
// acknowledged, are applied again from the journal, and the failed one
// is nowhere.
func TestAFailedBatchKeepsTheUnsettledOnes(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, settleNever)
	for i := range 5 {
		put(t, s, fmt.Sprintf("app/k%d", i), fmt.Sprint(i))
	}
	failBatches.Store(1)
	if _, err := s.Commit(ctx, Txn{Actor: "alice", Ops: []Op{Put("app/failed", []byte("x"), "")}}); !errors.Is(err, errInjected) {
		t.Fatalf("the failing batch: %v, want the injected error", err)
	}
	if r := put(t, s, "app/after", "1"); r.Rev != 6 {
		t.Fatalf("the next revision: %d, want 6", r.Rev)
	}
	img := crashImage(t, s.Path()) // before any settle: the journal holds 1..6
	for _, st := range []*Store{s, nil} {
		if st == nil {
			var err error
			if st, err = Open(ctx, img, noLoop); err != nil {
				t.Fatalf("open the crash image: %v", err)
			}
			defer st.Close()
		}
		if res := verify(t, st); !res.OK || res.Head != 6 {
			t.Fatalf("verify: %+v", res)
		}
		if _, err := st.Get(ctx, "app/failed"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("app/failed: %v, want not found", err)
		}
		for i := range 5 {
			if kv, err := st.Get(ctx, fmt.Sprintf("app/k%d", i)); err != nil || string(kv.Value) != fmt.Sprint(i) {
				t.Fatalf("app/k%d: %q, %v", i, kv.Value, err)
			}
		}
	}
}

// A batch whose rows the database cannot take (a full disk) after its
// frames were written to the journal and synced: the frames are taken
// back before the commit fails, so that a crash then does not bring the
// failed revisions back. A batch of one record syncs the journal on the
// writer while a goroutine writes its rows, a larger batch the other way
// round (sqlitelog's writeAndSync): both are checked.
func TestAFailedBatchLeavesNothingInTheJournal(t *testing.T) {
	saved := checkBatch
	checkBatch = nil // it writes the rows before the commit: here the commit must write them
	t.Cleanup(func() { checkBatch = saved })
	for _, records := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d records", records), func(t *testing.T) {
			ctx := context.Background()
			s, g := openGated(t)
			put(t, s, "app/a", "1")
			var pages int64
			if err := s.wdb.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
				t.Fatal(err)
			}
			// Room for a small row (the gate's), not for the big value.
			if _, err := s.wdb.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+1)); err != nil {
				t.Fatal(err)
			}
			big := Txn{Actor: "alice", Ops: []Op{Put("app/big", make([]byte, 256<<10), "")}}
			var errs []error
			if records == 1 {
				_, err := s.Commit(ctx, big)
				errs = []error{err}
			} else {
				_, errs = g.batch(t, s, Txn{Actor: "alice", Ops: []Op{Put("app/small", []byte("x"), "")}}, big)
			}
			for i, err := range errs {
				if !errors.Is(err, ErrDiskFull) {
					t.Fatalf("request %d of the batch on a full disk: %v, want ErrDiskFull", i, err)
				}
			}
			head := s.Rev()
			img, err := Open(ctx, crashImage(t, s.Path()), noLoop)
			if err != nil {
				t.Fatalf("open the crash image: %v", err)
			}
			defer img.Close()
			if res := verify(t, img); !res.OK || res.Head != head {
				t.Fatalf("verify after the crash: %+v, want OK at revision %d", res, head)
			}
			for _, key := range []string{"app/big", "app/small"} {
				if _, err := img.Get(ctx, key); !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s after the crash: %v, want not found", key, err)
				}
			}
		})
	}
}
