// Package sqlitedb is configd's SQLite database on disk: how it is opened
// (WAL, synchronous=FULL, one writer connection, query-only readers), the
// lock that keeps a second process out, the files beside it (private
// modes, what interrupted backups and restores leave), what a full disk's
// error looks like, and how its rows read into records. The other rooms
// of package audit read and write the tables; this one knows the file.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"syscall"

	"modernc.org/sqlite" // the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/configd/configd/audit/record"
)

// Querier is what reads need: a *sql.DB, *sql.Tx or *sql.Conn.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DSN is the data source name of the database at path: a read-write
// connection whose transactions take the write lock at BEGIN, or a
// query-only one.
func DSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// Temporary tables and indexes (large statements, savepoints) stay
	// in memory.
	q.Add("_pragma", "temp_store(MEMORY)")
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	} else {
		q.Set("_txlock", "immediate")
		// The writer's page cache holds the pages a settle's transaction
		// dirties (32 MiB, not SQLite's 2 MiB), so that SQLite does not
		// spill them into the WAL mid-transaction and write them again at
		// COMMIT; and the WAL is checkpointed every 4,000 pages (16 MiB),
		// not 1,000, for fewer checkpoints, each an fsync of the
		// database file (see commit.DefaultMaxUnsettled).
		q.Add("_pragma", "cache_size(-32768)")
		q.Add("_pragma", "wal_autocheckpoint(4000)")
	}
	return FileURI(path) + "?" + q.Encode()
}

// FileURI is the URI of the file at path, without parameters.
func FileURI(path string) string { return "file:" + (&url.URL{Path: path}).EscapedPath() }

// OpenWriter opens the writer's connection to the database at path: one
// connection, kept for as long as the database is open, in WAL mode.
func OpenWriter(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		return db, fmt.Errorf("audit: open %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return db, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if mode != "wal" {
		return db, fmt.Errorf("audit: open %s: could not enable WAL mode (journal_mode is %q)", path, mode)
	}
	return db, nil
}

// OpenReaders opens the readers' connections to the database at path:
// query-only, at most n at once.
func OpenReaders(ctx context.Context, path string, n int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(path, true))
	if err != nil {
		return nil, fmt.Errorf("audit: open readers: %w", err)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		return db, fmt.Errorf("audit: open readers: %w", err)
	}
	return db, nil
}

// StorageError wraps err in record.ErrDiskFull when the disk is full
// (SQLite's SQLITE_FULL, or ENOSPC).
func StorageError(err error) error {
	var se *sqlite.Error
	switch {
	case err == nil, errors.Is(err, record.ErrDiskFull):
		return err
	case errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL, errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %w", record.ErrDiskFull, err)
	}
	return err
}
