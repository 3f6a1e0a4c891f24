package sqlitedb

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The files beside the database. Every file that holds its content is
// private: Open creates the database file 0600 (SQLite gives its -wal and
// -shm files the database file's mode), backups are made 0600, and Open
// makes the existing ones 0600 with a warning. Open also removes what an
// interrupted backup or restore left behind (kill -9 skips their cleanup),
// and only that: the exact names they use.

// FileMode is the mode of every file that holds the database's content.
const FileMode = 0o600

// BackupDirPrefix starts the name of the private directory a temporary
// backup is made in beside the database (os.MkdirTemp appends digits), and
// BackupFileName is the backup's name in it.
const (
	BackupDirPrefix = ".backup-"
	BackupFileName  = "configd.db"
)

// Files are the database's files: the database and SQLite's -wal and
// -shm files beside it.
func Files(path string) []string { return []string{path, path + "-wal", path + "-shm"} }

// JournalPath is the path of the journal of the database at path: the
// records of the batches acknowledged and not yet committed to the
// database (package journal). It lives and moves with the database.
func JournalPath(path string) string { return path + ".commits" }

// backupFiles are the files a backup in a temporary backup directory may
// leave: the backup and what SQLite makes beside it.
var backupFiles = []string{BackupFileName, BackupFileName + "-journal", BackupFileName + "-wal", BackupFileName + "-shm"}

// RestoreTemp is the file a restore checks a backup in before it moves it
// to dbPath.
func RestoreTemp(dbPath string) string { return dbPath + ".restore" }

// RestoreFiles is RestoreTemp(dbPath) with the files opening it makes.
func RestoreFiles(dbPath string) []string {
	tmp := RestoreTemp(dbPath)
	return append(Files(tmp), tmp+".lock")
}

// PrepareFiles creates the database file at path with its private mode if
// it does not exist, makes the database's files private, and removes the
// leftovers of interrupted backups and restores, logging each to log. The
// caller holds the lock: no backup or restore of this database is under
// way.
func PrepareFiles(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("audit: create %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("audit: create %s: %w", path, err)
	}
	for _, p := range Files(path) {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, FileMode); err != nil {
			log.Warn("audit: a database file is readable or writable by group or others, and could not be made private",
				"file", p, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()), "err", err)
			continue
		}
		log.Warn("audit: a database file was readable or writable by group or others; made it 0600",
			"file", p, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	for _, p := range RestoreFiles(path) {
		if err := os.Remove(p); err == nil {
			log.Warn("audit: removed a file an interrupted restore left", "file", p)
		}
	}
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", dir, err)
	}
	for _, e := range entries {
		if !backupLeftover(dir, e) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			log.Warn("audit: could not remove what an interrupted backup left", "dir", p, "err", err)
			continue
		}
		log.Warn("audit: removed what an interrupted backup left", "dir", p)
	}
	return nil
}

// backupLeftover reports whether e, in dir, is a temporary backup directory: its
// name, a directory (not a link to one) holding only a backup's files.
func backupLeftover(dir string, e fs.DirEntry) bool {
	digits, ok := strings.CutPrefix(e.Name(), BackupDirPrefix)
	if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" || !e.IsDir() {
		return false
	}
	files, err := os.ReadDir(filepath.Join(dir, e.Name()))
	if err != nil {
		return false
	}
	for _, f := range files {
		if !f.Type().IsRegular() || !slices.Contains(backupFiles, f.Name()) {
			return false
		}
	}
	return true
}

// SyncDir syncs the directory dir, so that a file created or renamed in
// it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
