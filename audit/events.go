package audit

import (
	"context"

	"github.com/configd/configd/audit/internal/events"
)

// SourceEvent is a change in a source's health: it failed to read its
// scope, its snapshot was refused, or it recovered. Events change no key and
// are not revisions; they complete the audit trail.
type SourceEvent = events.SourceEvent

// RecordSourceEvent stores e (its ID and, when zero, its Time are set
// here).
func (s *Store) RecordSourceEvent(ctx context.Context, e SourceEvent) error {
	if s.isClosed() {
		return ErrClosed
	}
	return events.Record(ctx, s.wdb, e)
}

// SourceEvents returns the newest events, newest first, of one source or
// (source "") of all; limit 0 means 50.
func (s *Store) SourceEvents(ctx context.Context, source string, limit int) ([]SourceEvent, error) {
	return events.List(ctx, s.rdb, source, limit)
}
