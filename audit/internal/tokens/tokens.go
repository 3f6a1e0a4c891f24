// Package tokens keeps the bearer tokens of the API and their grants: a
// token is stored as the SHA-256 hash of its secret, never the secret; the
// store keeps grants as given, and what they allow is the server's
// business.
package tokens

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/configd/configd/audit/record"
)

// ErrExists: a token that is not revoked already has this name.
var ErrExists = errors.New("a token with this name exists")

// Grant is one right of a token: Permission ("read", "write" or "admin")
// on the keys under Prefix ("" is every key). The store keeps grants as
// given; what they allow is the server's business.
type Grant struct {
	Permission string
	Prefix     string
}

// Token is a stored bearer token: its name, the SHA-256 hash of its secret
// (the secret itself is never stored) and its grants.
type Token struct {
	Name      string
	Hash      []byte
	Grants    []Grant
	CreatedAt time.Time
	// RevokedAt is zero while the token is valid.
	RevokedAt time.Time
}

// Create stores a new token in db. It fails with ErrExists when a valid
// token already has t's name.
func Create(ctx context.Context, db *sql.DB, t Token) error {
	t, err := Prepare(t, time.Now())
	if err != nil {
		return err
	}
	created := t.CreatedAt
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: create token: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO tokens (name, hash, created_at) VALUES (?, ?, ?)`,
		t.Name, t.Hash, created.UnixNano())
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return fmt.Errorf("%w: %q", ErrExists, t.Name)
		}
		return fmt.Errorf("audit: create token: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("audit: create token: %w", err)
	}
	if err := insertGrants(ctx, tx, id, t.Grants); err != nil {
		return fmt.Errorf("audit: create token: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: create token: %w", err)
	}
	return nil
}

// Prepare checks a new token and gives it its creation time, now unless
// it has one.
func Prepare(t Token, now time.Time) (Token, error) {
	if t.Name == "" || len(t.Hash) == 0 {
		return t, fmt.Errorf("%w: a token needs a name and a hash", record.ErrBadRequest)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	return t, nil
}

// NotValid is the error for a name that no valid token has.
func NotValid(name string) error {
	return fmt.Errorf("%w: no valid token named %q", record.ErrNotFound, name)
}

// Replace makes db's tokens ts, in one transaction: a replica's copy of
// the tokens its cluster shares.
func Replace(ctx context.Context, db *sql.DB, ts []Token) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: copy tokens: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM token_grants`, `DELETE FROM tokens`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("audit: copy tokens: %w", err)
		}
	}
	for _, t := range ts {
		var revoked sql.NullInt64
		if !t.RevokedAt.IsZero() {
			revoked = sql.NullInt64{Int64: t.RevokedAt.UnixNano(), Valid: true}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (name, hash, created_at, revoked_at) VALUES (?, ?, ?, ?)`,
			t.Name, t.Hash, t.CreatedAt.UnixNano(), revoked)
		if err != nil {
			return fmt.Errorf("audit: copy token %q: %w", t.Name, err)
		}
		id, err := res.LastInsertId()
		if err == nil {
			err = insertGrants(ctx, tx, id, t.Grants)
		}
		if err != nil {
			return fmt.Errorf("audit: copy token %q: %w", t.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: copy tokens: %w", err)
	}
	return nil
}

// Revoke marks the valid token named name as revoked. It fails with
// record.ErrNotFound when no valid token has that name.
func Revoke(ctx context.Context, db *sql.DB, name string) error {
	res, err := db.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`,
		time.Now().UnixNano(), name)
	if err != nil {
		return fmt.Errorf("audit: revoke token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("audit: revoke token: %w", err)
	} else if n == 0 {
		return NotValid(name)
	}
	return nil
}

// List returns every token, the revoked ones included, by name then
// creation time.
func List(ctx context.Context, db *sql.DB) ([]Token, error) {
	rows, err := db.QueryContext(ctx, `SELECT t.id, t.name, t.hash, t.created_at, t.revoked_at, g.permission, g.prefix
		FROM tokens t LEFT JOIN token_grants g ON g.token_id = t.id
		ORDER BY t.name, t.created_at, t.id, g.prefix, g.permission`)
	if err != nil {
		return nil, fmt.Errorf("audit: list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	lastID := int64(-1)
	for rows.Next() {
		var (
			id, created int64
			revoked     sql.NullInt64
			name        string
			hash        []byte
			perm, pfx   sql.NullString
		)
		if err := rows.Scan(&id, &name, &hash, &created, &revoked, &perm, &pfx); err != nil {
			return nil, fmt.Errorf("audit: list tokens: %w", err)
		}
		if id != lastID {
			t := Token{Name: name, Hash: hash, CreatedAt: time.Unix(0, created).UTC()}
			if revoked.Valid {
				t.RevokedAt = time.Unix(0, revoked.Int64).UTC()
			}
			out = append(out, t)
			lastID = id
		}
		if perm.Valid {
			t := &out[len(out)-1]
			t.Grants = append(t.Grants, Grant{Permission: perm.String, Prefix: pfx.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: list tokens: %w", err)
	}
	return out, nil
}

// SetGrants replaces the grants of the valid token named name. It fails
// with record.ErrNotFound when no valid token has that name.
func SetGrants(ctx context.Context, db *sql.DB, name string, grants []Grant) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: set token grants: %w", err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM tokens WHERE name = ? AND revoked_at IS NULL`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return NotValid(name)
	}
	if err != nil {
		return fmt.Errorf("audit: set token grants: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM token_grants WHERE token_id = ?`, id); err != nil {
		return fmt.Errorf("audit: set token grants: %w", err)
	}
	if err := insertGrants(ctx, tx, id, grants); err != nil {
		return fmt.Errorf("audit: set token grants: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: set token grants: %w", err)
	}
	return nil
}

func insertGrants(ctx context.Context, tx *sql.Tx, id int64, grants []Grant) error {
	for _, g := range grants {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO token_grants (token_id, permission, prefix) VALUES (?, ?, ?)`,
			id, g.Permission, g.Prefix); err != nil {
			return fmt.Errorf("grant %s:%s: %w", g.Permission, g.Prefix, err)
		}
	}
	return nil
}
