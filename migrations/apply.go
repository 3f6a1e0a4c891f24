package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// ErrSchemaTooNew: the database was written by a newer configd.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// Migration is one migration file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load reads the migration files of fsys, sorted by number.
func Load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", name)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d (migrations are numbered 1, 2, 3, ...)", m.Name, i+1)
		}
	}
	return ms, nil
}

// Up brings db's schema up to the newest embedded migration, in one
// transaction, and returns its version. It refuses a database whose schema
// is newer than it knows (ErrSchemaTooNew).
func Up(ctx context.Context, db *sql.DB) (int, error) {
	ms, err := Load(FS)
	if err != nil {
		return 0, err
	}
	return Apply(ctx, db, ms)
}

// Apply brings db's schema up to the last of ms (the first migrations, in
// order), in one transaction, and returns its version.
func Apply(ctx context.Context, db *sql.DB, ms []Migration) (int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return 0, fmt.Errorf("create schema_version: %w", err)
	}
	var current int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&current)
	switch {
	case err == sql.ErrNoRows:
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return 0, fmt.Errorf("init schema_version: %w", err)
		}
	case err != nil:
		return 0, fmt.Errorf("read schema_version: %w", err)
	}
	known := len(ms)
	if current > known {
		return current, fmt.Errorf("%w: the database is at schema version %d, this configd knows up to %d; run a newer configd", ErrSchemaTooNew, current, known)
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return current, fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		current = m.Version
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, current); err != nil {
		return 0, fmt.Errorf("record schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit migrations: %w", err)
	}
	return current, nil
}

// Level returns db's schema level as it is, before Up brings it to the
// newest: 0 for a database that no migration has touched.
func Level(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read schema_version: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	var level int
	switch err := db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&level); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read schema_version: %w", err)
	}
	return level, nil
}
