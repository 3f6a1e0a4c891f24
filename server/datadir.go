package server

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
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
