package audit

import (
	"context"
	"errors"

	"github.com/configd/configd/audit/internal/events"
)

// SourceEvent is a change in a source's health: it failed to read its
// scope, its snapshot was refused, or it recovered. Events change no key and
// are not revisions; they complete the audit trail.
type SourceEvent = events.SourceEvent

// The bounds of the source events a cluster of replicas (WithEtcd) shares
// in etcd: the newest SharedEventsPerSource of each source, each message
// cut to SharedEventMessageMax bytes. A store on SQLite alone keeps every
// event as recorded.
const (
	SharedEventsPerSource = events.PerSource
	SharedEventMessageMax = events.MaxMessage
)

// RecordSourceEvent stores e (its ID and, when zero, its Time are set
// here). A replica (WithEtcd) shares it with the cluster through etcd, and
// has it in its own copy when it returns; when etcd does not answer within
// the etcd timeout, the event is kept in this replica's copy, logged, and
// shared once etcd answers (RecordSourceEvent then returns nil).
func (s *Store) RecordSourceEvent(ctx context.Context, e SourceEvent) error {
	if s.isClosed() {
		return ErrClosed
	}
	if s.events != nil {
		return s.events.Record(ctx, e)
	}
	return events.Record(ctx, s.wdb, e)
}

// SourceEvents returns the newest events, newest first, of one source or
// (source "") of all; limit 0 means 50. A replica answers from its copy
// of the events the cluster shares (and those it keeps until etcd
// answers), also when etcd does not answer: the same events in the same
// order, with the same IDs (the etcd revision that recorded each), on
// every replica.
func (s *Store) SourceEvents(ctx context.Context, source string, limit int) ([]SourceEvent, error) {
	return events.List(ctx, s.rdb, source, limit)
}

// followEvents keeps the replica's copy of the cluster's source events
// until ctx ends.
func (s *Store) followEvents(ctx context.Context) {
	s.elog.FollowEvents(ctx, s.events.Load, s.events.Poked(), func(err error) {
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, ErrStoreUnavailable):
			s.opts.logger.Debug("audit: the replica's copy of the source events waits for etcd", "err", err)
		default:
			s.opts.logger.Warn("audit: the replica's copy of the source events", "err", err)
		}
	})
}
