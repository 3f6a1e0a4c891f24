// Package backup copies a live database into a file, and puts such a copy
// back in place of a database once it checks.
package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
)

// Errors of Restore.
var (
	// ErrNotConfigd: the file is not a configd database (not SQLite, or
	// without configd's tables).
	ErrNotConfigd = errors.New("not a configd database")
	// ErrTargetExists: the restore would replace an existing database.
	ErrTargetExists = errors.New("a database already exists there")
)

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// Info describes a backup file.
type Info struct {
	// Rev is the newest revision in the backup and HeadHash its chain hash
	// (hex).
	Rev      int64
	HeadHash string
	// Size is the file's size in bytes and SHA256 its digest (hex).
	Size   int64
	SHA256 string
}

// Make writes a consistent copy of the whole database at dbPath — current
// state, layers, history and audit chain — to a new file at path, while
// commits go on. The copy is made with VACUUM INTO, which reads one snapshot in a
// single read transaction: unlike SQLite's online backup API (which
// modernc.org/sqlite also exposes), it never restarts when a commit lands
// during the copy, and the copy is compacted. path must not exist; it is
// created 0600; on error nothing is left there.
func Make(ctx context.Context, dbPath, path string) (Info, error) {
	// VACUUM INTO writes into an empty file, and keeps its mode.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, sqlitedb.FileMode)
	if errors.Is(err, fs.ErrExist) {
		return Info{}, fmt.Errorf("audit: backup: %s already exists", path)
	}
	if err != nil {
		return Info{}, fmt.Errorf("audit: backup: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return Info{}, fmt.Errorf("audit: backup: %w", err)
	}
	// The readers' connections are query_only, which VACUUM INTO refuses;
	// a connection of its own keeps the writer's free.
	db, err := sql.Open("sqlite", sqlitedb.DSN(dbPath, false))
	if err != nil {
		os.Remove(path)
		return Info{}, fmt.Errorf("audit: backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return Info{}, fmt.Errorf("audit: backup: %w", err)
	}
	info, err := describeBackup(ctx, path)
	if err != nil {
		os.Remove(path)
		return Info{}, err
	}
	return info, nil
}

// Temp is Make into a new private directory beside the database (on its
// file system, which has room for a copy), for a caller that sends the
// copy on and then calls remove, which removes the directory. A process
// killed before remove leaves the directory behind: the next open of the
// database removes it (sqlitedb.PrepareFiles).
func Temp(ctx context.Context, dbPath string) (path string, info Info, remove func(), err error) {
	dir, err := os.MkdirTemp(filepath.Dir(dbPath), sqlitedb.BackupDirPrefix)
	if err != nil {
		return "", Info{}, nil, fmt.Errorf("audit: backup: %w", err)
	}
	remove = func() { os.RemoveAll(dir) }
	path = filepath.Join(dir, sqlitedb.BackupFileName)
	info, err = Make(ctx, dbPath, path)
	if err != nil {
		remove()
		return "", Info{}, nil, err
	}
	return path, info, remove, nil
}

// describeBackup reads a backup's head revision, size and digest.
func describeBackup(ctx context.Context, path string) (Info, error) {
	var info Info
	db, err := sql.Open("sqlite", sqlitedb.FileURI(path)+"?mode=ro")
	if err != nil {
		return info, fmt.Errorf("audit: backup: %w", err)
	}
	var rev sql.NullInt64
	var hash []byte
	err = db.QueryRowContext(ctx, `SELECT rev, hash FROM revisions ORDER BY rev DESC LIMIT 1`).Scan(&rev, &hash)
	db.Close()
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return info, fmt.Errorf("audit: backup: read its head: %w", err)
	}
	info.Rev, info.HeadHash = rev.Int64, hex.EncodeToString(hash)
	f, err := os.Open(path)
	if err != nil {
		return info, fmt.Errorf("audit: backup: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if info.Size, err = io.Copy(h, f); err != nil {
		return info, fmt.Errorf("audit: backup: %w", err)
	}
	info.SHA256 = hex.EncodeToString(h.Sum(nil))
	return info, nil
}

// Options configures Restore.
type Options struct {
	// Replace lets Restore replace an existing database; the old one is
	// kept beside it as <name>.replaced-<UTC time> (with its -wal file).
	Replace bool
}

// Check opens the database copied at path, as package audit opens a
// database (upgrading it if it is older), and verifies it: its chain and
// its state (chain.Verify).
type Check func(ctx context.Context, path string) (chain.VerifyResult, error)

// Restore makes the database at dbPath a copy of the backup file src. It
// refuses when a store has dbPath open (record.ErrLocked: the lock file
// beside it is held), when src is not a configd database (ErrNotConfigd),
// when check fails (a newer one: migrations.ErrSchemaTooNew), when its
// audit chain does not verify (chain.ErrChainBroken, naming the revision),
// when its current state disagrees with its history
// (record.ErrStateMismatch: see chain.CheckState), and when dbPath exists
// unless opts.Replace (ErrTargetExists). The copy is checked in a
// temporary file beside dbPath and renamed into place only once it
// verifies, so dbPath is never left half-written. It returns what check
// found.
func Restore(ctx context.Context, src, dbPath string, opts Options, check Check) (chain.VerifyResult, error) {
	var res chain.VerifyResult
	lock, err := sqlitedb.LockFile(dbPath + ".lock")
	if err != nil {
		return res, fmt.Errorf("audit: restore: %w", err)
	}
	defer lock.Release()
	exists := false
	for _, p := range []string{dbPath, dbPath + "-wal", sqlitedb.JournalPath(dbPath)} {
		if _, err := os.Lstat(p); err == nil {
			exists = true
		}
	}
	if exists && !opts.Replace {
		return res, fmt.Errorf("%w: %s", ErrTargetExists, dbPath)
	}
	if err := checkMagic(src); err != nil {
		return res, err
	}
	tmp := sqlitedb.RestoreTemp(dbPath)
	cleanup := func() {
		for _, p := range sqlitedb.RestoreFiles(dbPath) {
			os.Remove(p)
		}
	}
	cleanup()
	defer cleanup()
	if err := CopyFile(src, tmp); err != nil {
		return res, fmt.Errorf("audit: restore: %w", err)
	}
	if err := checkConfigdSchema(ctx, tmp); err != nil {
		return res, err
	}
	if res, err = check(ctx, tmp); err != nil {
		return res, err
	}
	switch {
	case res.StateMismatch:
		return res, fmt.Errorf("%w: %s", record.ErrStateMismatch, res.Problem)
	case !res.OK:
		return res, fmt.Errorf("%w: %s", chain.ErrChainBroken, res.Problem)
	}
	// Closing the last connection checkpoints the WAL into the file; what
	// is renamed into place must be the whole database.
	if fi, err := os.Stat(tmp + "-wal"); err == nil && fi.Size() > 0 {
		return res, fmt.Errorf("audit: restore: the checked copy kept a WAL file %s", tmp+"-wal")
	}
	if exists {
		// The journal goes with the database it belongs to: what it
		// holds follows the old one's history, not the restored one's.
		aside := dbPath + ".replaced-" + time.Now().UTC().Format("20060102T150405Z")
		for _, suffix := range []string{"", "-wal", sqlitedb.JournalPath("")} {
			if err := os.Rename(dbPath+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return res, fmt.Errorf("audit: restore: keep the old database: %w", err)
			}
		}
		os.Remove(dbPath + "-shm")
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		return res, fmt.Errorf("audit: restore: %w", err)
	}
	return res, syncDir(filepath.Dir(dbPath))
}

func checkMagic(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: restore: %w", err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte(sqliteMagic)) {
		return fmt.Errorf("%w: %s is not a SQLite database", ErrNotConfigd, path)
	}
	return nil
}

// checkConfigdSchema checks that the SQLite database at path is sound and
// has configd's tables.
func checkConfigdSchema(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", sqlitedb.FileURI(path))
	if err != nil {
		return fmt.Errorf("audit: restore: %w", err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check(1)`).Scan(&ok); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotConfigd, path, err)
	}
	if ok != "ok" {
		return fmt.Errorf("%w: %s is damaged: %s", ErrNotConfigd, path, ok)
	}
	for _, table := range []string{"schema_version", "revisions", "changes", "kv"} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil {
			return fmt.Errorf("audit: restore: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%w: %s has no %s table", ErrNotConfigd, path, table)
		}
	}
	return nil
}

// CopyFile copies the file src to a new private file dst, synced.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, sqlitedb.FileMode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	if err := sqlitedb.SyncDir(dir); err != nil {
		return fmt.Errorf("audit: restore: %w", err)
	}
	return nil
}
