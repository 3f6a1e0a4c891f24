package audit

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/audit/internal/sqlitedb"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestDatabaseFilesAndBackupsArePrivate(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	put(t, s, "k", "v")
	for _, p := range sqlitedb.Files(s.Path()) {
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", p, m)
		}
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if _, err := s.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, backup); m != 0o600 {
		t.Errorf("backup: mode %04o, want 0600", m)
	}
	path, _, remove, err := s.TempBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m, d := mode(t, path), mode(t, filepath.Dir(path)); m != 0o600 || d != 0o700 {
		t.Errorf("temporary backup: mode %04o in a directory of mode %04o, want 0600 in 0700", m, d)
	}
	remove()
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Errorf("the temporary backup's directory is still there: %v", err)
	}
}

// A database created readable by others (by an older configd, or by hand)
// is made private at Open, with a warning.
func TestOpenMakesAnOpenDatabaseFilePrivateAndWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", "v")
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err = Open(context.Background(), path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %04o after Open, want 0600", m)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "mode=0644") {
		t.Errorf("no warning: %s", logs.String())
	}
}

// What an interrupted backup or restore leaves beside the database goes at
// the next Open, with a warning; nothing else does, even with a similar
// name.
func TestOpenRemovesTheLeftoversOfInterruptedBackupsAndRestoresOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "configd.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", "v")
	s.Close()
	write := func(name string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	leftovers := []string{".backup-123", ".backup-4567", "configd.db.restore", "configd.db.restore-wal", "configd.db.restore.lock"}
	write(".backup-123/configd.db")
	write(".backup-4567/configd.db")
	write(".backup-4567/configd.db-journal")
	write("configd.db.restore")
	write("configd.db.restore-wal")
	write("configd.db.restore.lock")
	kept := []string{".backup-89/notes.txt", ".backup-x1/configd.db", "my.backup-12/configd.db", ".backup-/configd.db",
		"configd.db.restore-notes", "other.db.restore", "elsewhere/configd.db"}
	for _, name := range kept {
		write(name)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, ".backup-77")); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, ".backup-77")

	var logs bytes.Buffer
	s, err = Open(context.Background(), path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range leftovers {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s was not removed (%v)", name, err)
		}
		if !strings.Contains(logs.String(), name) {
			t.Errorf("the removal of %s was not logged: %s", name, logs.String())
		}
	}
	for _, name := range kept {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
	if get(t, s, "k") != "v" {
		t.Fatal("the database lost its value")
	}
}
