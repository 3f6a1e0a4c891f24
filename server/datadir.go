package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// Data dir permissions. configd creates the data dir 0700 and its
// database files 0600 (audit.Open makes existing database files 0600, with
// a warning). A data dir that every user may write in is refused: anyone
// could replace the database or plant a -wal file for SQLite to replay. One
// that group or others may otherwise read or write gets a warning at start:
// it may be deliberate (an operators' group), and the files in it are
// private anyway.

// worldWritable is the refusal of a data dir of mode perm that every user
// may write in, or nil.
func worldWritable(dir string, perm fs.FileMode) error {
	if perm&0o002 == 0 {
		return nil
	}
	return fmt.Errorf("data dir %s is writable by every user (mode %04o): anyone could replace its database; make it private: chmod 700 %s",
		dir, perm, dir)
}

// warnDataDirMode warns when group or others may read or write the data
// dir.
func warnDataDirMode(dir string, logger *slog.Logger) {
	fi, err := os.Stat(dir)
	if err != nil {
		return
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		logger.Warn("the data dir is open to group or others; configd keeps it 0700 when it creates it: chmod 700 it",
			"data_dir", dir, "mode", fmt.Sprintf("%04o", perm))
	}
}

// PrepareDataDir makes sure dir is a directory configd can write in,
// creating it (0700) if missing, and returns the database's path in it.
func PrepareDataDir(dir string) (string, error) {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return "", fmt.Errorf("data dir %s is not a directory", dir)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("cannot create data dir %s: %s", dir, pathReason(dir, err))
		}
	case err != nil:
		return "", fmt.Errorf("cannot use data dir %s: %s", dir, pathReason(dir, err))
	default:
		if err := worldWritable(dir, fi.Mode().Perm()); err != nil {
			return "", err
		}
	}
	// Stat says nothing of permissions as the database will meet them
	// (ACLs, read-only mounts): try.
	f, err := os.CreateTemp(dir, ".configd-write-test-*")
	if err != nil {
		return "", fmt.Errorf("data dir %s is not writable: %s", dir, pathReason(dir, err))
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return filepath.Join(dir, DBFile), nil
}

// pathReason explains a failed operation on path in a few words; when a
// parent of path is a regular file it names that file.
func pathReason(path string, err error) string {
	if errors.Is(err, syscall.ENOTDIR) {
		for p := filepath.Dir(filepath.Clean(path)); ; p = filepath.Dir(p) {
			if fi, serr := os.Stat(p); serr == nil && !fi.IsDir() {
				return p + " is a file, not a directory"
			}
			if next := filepath.Dir(p); next == p {
				break
			}
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// RestoreHint says how to recover dataDir when its database is refused
// because its current state disagrees with its audit history
// (audit.ErrStateMismatch).
func RestoreHint(dataDir string) string {
	return "to recover, restore the newest backup whose head hash you trust: configd restore --replace --data-dir " +
		dataDir + " FILE (the database now there is kept beside it, for inspection)"
}
