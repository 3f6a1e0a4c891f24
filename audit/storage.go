package audit

import (
	"errors"
	"fmt"
	"syscall"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// storageError wraps err in ErrDiskFull when the disk is full.
func storageError(err error) error {
	var se *sqlite.Error
	switch {
	case err == nil, errors.Is(err, ErrDiskFull):
		return err
	case errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL, errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return err
}
