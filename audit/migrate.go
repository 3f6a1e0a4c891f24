package audit

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/configd/configd/migrations"
)

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migration files, sorted by number.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
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
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d (migrations are numbered 1, 2, 3, ...)", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate brings db's schema up to the newest embedded migration, in one
// transaction. It refuses a database whose schema is newer than it knows.
func migrate(ctx context.Context, db *sql.DB) (int, error) {
	ms, err := loadMigrations(migrations.FS)
	if err != nil {
		return 0, err
	}
	return applyMigrations(ctx, db, ms)
}

func applyMigrations(ctx context.Context, db *sql.DB, ms []migration) (int, error) {
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
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return current, fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		current = m.version
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, current); err != nil {
		return 0, fmt.Errorf("record schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit migrations: %w", err)
	}
	return current, nil
}
