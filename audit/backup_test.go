package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestBackupUnderWritesRestoresAConsistentVerifiedCopy(t *testing.T) {
	s := openTest(t, WithLayers("file", StoreLayer))
	ctx := context.Background()
	history(t, s)
	// Writers keep committing multi-key revisions while the backup runs:
	// the copy must hold whole revisions, each key's value matching its
	// newest change in the copy.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := []byte(fmt.Sprint(g, "-", i))
				if _, err := s.Commit(ctx, Txn{Actor: "writer", Ops: []Op{
					Put(fmt.Sprintf("load/%d/a", g), v, ""), Put(fmt.Sprintf("load/%d/b", g), v, ""),
				}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// Let the writers get going: wait for a few of their revisions.
	for s.Rev() < 6+20 {
		if _, err := s.Revision(ctx, s.Rev()); err != nil {
			t.Fatal(err)
		}
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	info, err := s.Backup(ctx, backup)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if info.Rev < 26 || len(info.SHA256) != 64 || info.Size == 0 || len(info.HeadHash) != 64 {
		t.Fatalf("backup info = %+v", info)
	}
	if extra, _ := filepath.Glob(backup + "?*"); len(extra) != 0 {
		t.Fatalf("the backup is more than one file: %v", extra)
	}
	if _, err := s.Backup(ctx, backup); err == nil {
		t.Fatal("a backup over an existing file was made")
	}

	dbPath := filepath.Join(t.TempDir(), "configd.db")
	res, err := Restore(ctx, backup, dbPath, RestoreOptions{})
	if err != nil || !res.OK || res.Head != info.Rev || res.HeadHash != info.HeadHash {
		t.Fatalf("restore = %+v, %v (backup %+v)", res, err, info)
	}
	r, err := Open(ctx, dbPath, WithLayers("file", StoreLayer))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Rev() != info.Rev {
		t.Fatalf("restored rev %d, backup rev %d", r.Rev(), info.Rev)
	}
	// Same revisions as the original, up to the backup's head.
	for rev := int64(1); rev <= info.Rev; rev++ {
		a, err := s.Revision(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Revision(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("revision %d differs:\n%+v\n%+v", rev, a, b)
		}
	}
	// The current state is the original's at the backup's revision.
	want, _, err := s.List(ctx, "", AtRev(info.Rev))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := r.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("state differs:\n%v\n%v", want, got)
	}
	// The restored store goes on with the chain.
	put(t, r, "after/restore", "x")
	if res := verify(t, r); !res.OK || res.Head != info.Rev+1 {
		t.Fatalf("verify after a new revision = %+v", res)
	}
}

func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithLayers("file", StoreLayer))
	history(t, s)
	good := filepath.Join(t.TempDir(), "good.db")
	if _, err := s.Backup(ctx, good); err != nil {
		t.Fatal(err)
	}

	t.Run("a data dir in use", func(t *testing.T) {
		_, err := Restore(ctx, good, s.Path(), RestoreOptions{Replace: true})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("restore over an open store: %v", err)
		}
	})
	t.Run("an existing database without Replace", func(t *testing.T) {
		dbPath := filepath.Join(t.TempDir(), "configd.db")
		if _, err := Restore(ctx, good, dbPath, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(ctx, good, dbPath, RestoreOptions{}); !errors.Is(err, ErrTargetExists) {
			t.Fatalf("second restore: %v", err)
		}
		if _, err := Restore(ctx, good, dbPath, RestoreOptions{Replace: true}); err != nil {
			t.Fatalf("restore with Replace: %v", err)
		}
		kept, _ := filepath.Glob(dbPath + ".replaced-*")
		if len(kept) != 1 {
			t.Fatalf("the replaced database was not kept: %v", kept)
		}
	})
	t.Run("a file that is not SQLite", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "notes.txt")
		os.WriteFile(bad, []byte("hello, this is not a database at all"), 0o600)
		dbPath := filepath.Join(t.TempDir(), "configd.db")
		if _, err := Restore(ctx, bad, dbPath, RestoreOptions{}); !errors.Is(err, ErrNotConfigd) {
			t.Fatalf("restore of a text file: %v", err)
		}
		assertNoFile(t, dbPath)
	})
	t.Run("a SQLite database that is not configd's", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.db")
		db, err := sql.Open("sqlite", other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		dbPath := filepath.Join(t.TempDir(), "configd.db")
		_, err = Restore(ctx, other, dbPath, RestoreOptions{})
		if !errors.Is(err, ErrNotConfigd) || !strings.Contains(err.Error(), "schema_version") {
			t.Fatalf("restore of another database: %v", err)
		}
		assertNoFile(t, dbPath)
	})
	t.Run("a backup whose chain is broken", func(t *testing.T) {
		tampered := filepath.Join(t.TempDir(), "tampered.db")
		if _, err := s.Backup(ctx, tampered); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", tampered)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE changes SET new_value = 'evil' WHERE rev = 2`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		dbPath := filepath.Join(t.TempDir(), "configd.db")
		res, err := Restore(ctx, tampered, dbPath, RestoreOptions{})
		if !errors.Is(err, ErrChainBroken) || res.BrokenRev != 2 || !strings.Contains(err.Error(), "revision 2") {
			t.Fatalf("restore of a tampered backup: %+v, %v", res, err)
		}
		assertNoFile(t, dbPath)
	})
}

func assertNoFile(t *testing.T, path string) {
	t.Helper()
	matches, _ := filepath.Glob(path + "*")
	for _, m := range matches {
		if !strings.HasSuffix(m, ".lock") {
			t.Fatalf("a refused restore left %s", m)
		}
	}
}
