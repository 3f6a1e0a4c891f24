package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/configd/configd/audit/record"
)

// The bounds of the events a cluster of replicas shares through etcd:
// each source keeps its newest PerSource events, the transaction that
// records one deleting those it pushes out, and a message is cut to
// MaxMessage bytes (an event is then at most about 1.2 kB in etcd, key
// and value, unless the message is full of characters JSON escapes; a
// source's events at most about 120 kB).
const (
	PerSource  = 100
	MaxMessage = 1024
)

// Cluster is where a replica shares its source events: the commit log's
// etcd (etcdlog.Log).
type Cluster interface {
	// RecordEvent appends e to its source's events, keeping the newest
	// PerSource, and returns the etcd revision that recorded it.
	RecordEvent(ctx context.Context, e SourceEvent) (int64, error)
	// Events returns every source's events, each with its ID (the etcd
	// revision that recorded it), and the etcd revision read at.
	Events(ctx context.Context) ([]SourceEvent, int64, error)
}

// Shared keeps the source events of a replica: shared with its cluster
// (the replica that syncs a source records them, every replica lists
// them), with a copy in the replica's own table that List reads, so that
// listing goes on when etcd does not answer. An event's ID is the etcd
// revision that recorded it: the same on every replica, in the order etcd
// recorded the events, whichever replica did. It is safe for concurrent
// use; no lock is held across a call to etcd.
type Shared struct {
	db      *sql.DB
	cluster Cluster
	logger  *slog.Logger
	poke    chan struct{}

	loading sync.Mutex // one Load at a time
	mu      sync.Mutex // the fields below, and the writes to the table
	// pending are the events recorded here while etcd did not answer,
	// oldest first: listed here (in the table, after the shared ones),
	// shared by the next Load that reaches etcd.
	pending []SourceEvent
	// fresh are the events Record shared since the last Load read the
	// cluster's, with their IDs: a Load that read before etcd had them
	// keeps them in the copy.
	fresh []SourceEvent
}

// NewShared returns the source events of a replica whose table is db
// (the writer's connection), shared through cluster.
func NewShared(db *sql.DB, cluster Cluster, logger *slog.Logger) *Shared {
	return &Shared{db: db, cluster: cluster, logger: logger, poke: make(chan struct{}, 1)}
}

// Poked receives when events wait to be shared: call Load then.
func (s *Shared) Poked() <-chan struct{} { return s.poke }

// Record shares e with the cluster and puts it in the local copy (its
// Time, when zero, is now; a message longer than MaxMessage is cut), so
// that List sees it when Record returns. When etcd does not answer
// (within the etcd timeout), or events recorded before wait to be shared,
// e is kept here, listed here after the shared events, and shared by the
// next Load that reaches etcd: Record returns nil, having waited at most
// that timeout. Up to PerSource events of a source wait; older ones are
// dropped from the wait (the log says so).
func (s *Shared) Record(ctx context.Context, e SourceEvent) error {
	e = prepare(e)
	s.mu.Lock()
	waiting := len(s.pending) > 0
	s.mu.Unlock()
	if !waiting {
		id, err := s.cluster.RecordEvent(ctx, e)
		if err == nil {
			e.ID = id
			s.mu.Lock()
			defer s.mu.Unlock()
			s.fresh = append(s.fresh, e)
			return s.insert(ctx, e)
		}
		if ctx.Err() != nil || !errors.Is(err, record.ErrStoreUnavailable) {
			return err // the caller gave up, or etcd refused it for good
		}
		s.logger.Warn("audit: etcd does not answer: the source event is kept on this replica and shared once etcd answers",
			"source", e.Source, "state", e.State, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wait(e)
	select {
	case s.poke <- struct{}{}:
	default:
	}
	return s.insert(ctx, e) // after the shared ones: its ID is the table's next
}

// wait keeps e to share later, at most PerSource of its source.
func (s *Shared) wait(e SourceEvent) {
	n, oldest := 0, -1
	for i, p := range s.pending {
		if p.Source == e.Source {
			if n++; oldest < 0 {
				oldest = i
			}
		}
	}
	if n >= PerSource {
		s.logger.Warn("audit: too many source events wait for etcd: the oldest is dropped (it is in the log)",
			"source", e.Source, "dropped", s.pending[oldest].Time)
		s.pending = slices.Delete(s.pending, oldest, oldest+1)
	}
	s.pending = append(s.pending, e)
}

// insert puts e in the local copy (its ID, if zero, the table's next)
// and trims its source's events there to the newest PerSource.
func (s *Shared) insert(ctx context.Context, e SourceEvent) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: copy a source event: %w", err)
	}
	defer tx.Rollback()
	if err := insert(ctx, tx, e); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM source_events WHERE source = ? AND id NOT IN
		(SELECT id FROM source_events WHERE source = ? ORDER BY id DESC LIMIT ?)`, e.Source, e.Source, PerSource); err != nil {
		return fmt.Errorf("audit: copy a source event: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: copy a source event: %w", err)
	}
	return nil
}

// insert puts e in the copy, replacing the row of its ID: a Load may
// have copied it from etcd already, or a row waiting to be shared taken
// the ID before it is copied again with an ID of its own.
func insert(ctx context.Context, tx *sql.Tx, e SourceEvent) error {
	var id sql.NullInt64
	if e.ID != 0 {
		id = sql.NullInt64{Int64: e.ID, Valid: true}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO source_events (id, ts, source, state, message) VALUES (?, ?, ?, ?, ?)`,
		id, e.Time.UTC().UnixNano(), e.Source, e.State, e.Message); err != nil {
		return fmt.Errorf("audit: copy a source event: %w", err)
	}
	return nil
}

// Load shares the events that wait, oldest first, then makes the local
// copy the cluster's events followed by those that still wait, and
// returns the etcd revision it read them at: a watch from the one after
// it misses nothing.
func (s *Shared) Load(ctx context.Context) (int64, error) {
	s.loading.Lock()
	defer s.loading.Unlock()
	for {
		s.mu.Lock()
		if len(s.pending) == 0 {
			s.mu.Unlock()
			break
		}
		e := s.pending[0]
		s.mu.Unlock()
		if _, err := s.cluster.RecordEvent(ctx, e); err != nil {
			return 0, err
		}
		s.mu.Lock()
		if len(s.pending) > 0 && s.pending[0] == e { // (unless wait dropped it meanwhile)
			s.pending = s.pending[1:]
		}
		s.mu.Unlock()
	}
	evs, rev, err := s.cluster.Events(ctx)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fresh = slices.DeleteFunc(s.fresh, func(e SourceEvent) bool { return e.ID <= rev })
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("audit: copy the source events: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM source_events`); err != nil {
		return 0, fmt.Errorf("audit: copy the source events: %w", err)
	}
	for _, e := range slices.Concat(evs, s.fresh) {
		if err := insert(ctx, tx, e); err != nil {
			return 0, err
		}
	}
	for _, e := range s.pending {
		e.ID = 0 // the table's next
		if err := insert(ctx, tx, e); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("audit: copy the source events: %w", err)
	}
	return rev, nil
}

// prepare gives e its time, now unless it has one, in UTC, and cuts its
// message to MaxMessage bytes (at a character's boundary, "…" marking the
// cut).
func prepare(e SourceEvent) SourceEvent {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time, e.ID = e.Time.UTC(), 0
	if len(e.Message) > MaxMessage {
		const mark = "…"
		i := MaxMessage - len(mark)
		for i > 0 && !utf8.RuneStart(e.Message[i]) {
			i--
		}
		e.Message = e.Message[:i] + mark
	}
	return e
}
