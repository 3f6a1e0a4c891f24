package audit

import (
	"context"
	"fmt"

	"github.com/configd/configd/audit/internal/backup"
	"github.com/configd/configd/audit/internal/chain"
)

// Errors of Restore.
var (
	// ErrNotConfigd: the file is not a configd database (not SQLite, or
	// without configd's tables).
	ErrNotConfigd = backup.ErrNotConfigd
	// ErrChainBroken: the file's audit chain does not verify. The error
	// names the first broken revision.
	ErrChainBroken = chain.ErrChainBroken
	// ErrTargetExists: the restore would replace an existing database.
	ErrTargetExists = backup.ErrTargetExists
)

// BackupInfo describes a backup file (see backup.Info).
type BackupInfo = backup.Info

// RestoreOptions configures Restore (see backup.Options).
type RestoreOptions = backup.Options

// Backup writes a consistent copy of the whole database — current state,
// layers, history and audit chain — to a new file at path, while commits go
// on (see backup.Make). path must not exist; it is created 0600; on error
// nothing is left there.
func (s *Store) Backup(ctx context.Context, path string) (BackupInfo, error) {
	if s.isClosed() {
		return BackupInfo{}, ErrClosed
	}
	if err := s.r.AwaitDB(ctx); err != nil {
		return BackupInfo{}, err
	}
	return backup.Make(ctx, s.path, path)
}

// TempBackup is Backup into a new private directory beside the database
// (on its file system, which has room for a copy), for a caller that sends
// the copy on and then calls remove, which removes the directory. A process
// killed before remove leaves the directory behind: the next Open removes
// it.
func (s *Store) TempBackup(ctx context.Context) (path string, info BackupInfo, remove func(), err error) {
	if err := s.r.AwaitDB(ctx); err != nil {
		return "", BackupInfo{}, nil, err
	}
	return backup.Temp(ctx, s.path)
}

// Restore makes the database at dbPath a copy of the backup file src. It
// refuses when a Store has dbPath open (ErrLocked: the lock file beside it
// is held), when src is not a configd database (ErrNotConfigd) or a newer
// one (ErrSchemaTooNew), when its audit chain does not verify
// (ErrChainBroken, naming the revision), when its current state disagrees
// with its history (ErrStateMismatch), and when dbPath exists unless
// opts.Replace (ErrTargetExists). A backup from an older configd is
// upgraded as Open would. The copy is checked in a temporary file beside
// dbPath and renamed into place only once it verifies, so dbPath is never
// left half-written. It returns what the backup's Verify found. It needs no
// master key: secrets are restored as they are stored, encrypted.
func Restore(ctx context.Context, src, dbPath string, opts RestoreOptions) (VerifyResult, error) {
	return backup.Restore(ctx, src, dbPath, opts, func(ctx context.Context, path string) (VerifyResult, error) {
		// Secrets stay sealed: the chain and the state are checked on the
		// stored bytes. A state that disagrees with the history is
		// reported by Verify rather than refused by Open.
		st, err := Open(ctx, path, func(o *options) { o.sealed, o.inspect = true, true })
		if err != nil {
			return VerifyResult{}, fmt.Errorf("audit: restore: open the backup: %w", err)
		}
		res, err := st.Verify(ctx)
		if cerr := st.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("audit: restore: close the backup: %w", cerr)
		}
		return res, err
	})
}
