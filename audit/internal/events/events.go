// Package events keeps the source events: changes in a source's health
// (it failed to read its scope, its snapshot was refused, it recovered).
// They change no key and are not revisions; they complete the audit trail.
package events

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SourceEvent is a change in a source's health: it failed to read its
// scope, its snapshot was refused, or it recovered. Events change no key and
// are not revisions; they complete the audit trail.
type SourceEvent struct {
	// ID orders the events, newest highest: the table's row on a store of
	// its own; on a replica, the etcd revision that recorded the event,
	// the same on every replica (Shared).
	ID      int64
	Time    time.Time // UTC
	Source  string
	State   string // "degraded", "refused", "ok" or "lost"
	Message string
}

// Record stores e in db (its ID and, when zero, its Time are set here).
func Record(ctx context.Context, db *sql.DB, e SourceEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	_, err := db.ExecContext(ctx, `INSERT INTO source_events (ts, source, state, message) VALUES (?, ?, ?, ?)`,
		e.Time.UTC().UnixNano(), e.Source, e.State, e.Message)
	if err != nil {
		return fmt.Errorf("audit: record source event: %w", err)
	}
	return nil
}

// List returns the newest events of db, newest first, of one source or
// (source "") of all; limit 0 means 50.
func List(ctx context.Context, db *sql.DB, source string, limit int) ([]SourceEvent, error) {
	if limit <= 0 {
		limit = 50
	}
	q := `SELECT id, ts, source, state, message FROM source_events`
	args := []any{}
	if source != "" {
		q += ` WHERE source = ?`
		args = append(args, source)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	rows, err := db.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("audit: source events: %w", err)
	}
	defer rows.Close()
	var out []SourceEvent
	for rows.Next() {
		var e SourceEvent
		var ts int64
		if err := rows.Scan(&e.ID, &ts, &e.Source, &e.State, &e.Message); err != nil {
			return nil, fmt.Errorf("audit: source events: %w", err)
		}
		e.Time = time.Unix(0, ts).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
