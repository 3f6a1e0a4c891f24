package audit

import (
	"context"
	"time"

	"github.com/configd/configd/audit/internal/retention"
)

// DefaultCompactInterval is how often a store with retention compacts.
const DefaultCompactInterval = time.Hour

// defaultCompactBatch is how many revisions one compaction step (one write
// transaction) removes at most.
const defaultCompactBatch = 2000

// WithRetention sets how much history the store keeps: at least the newest
// keepRevisions revisions and at least the revisions of the last keepAge
// (0: no limit of that kind; both 0, the default: keep everything). A
// revision is removed only when both limits allow it: the limits combine as
// "keep whichever is more" (see package retention). With retention set,
// the store compacts when it opens and then every compaction interval
// (WithCompactInterval).
//
// On a replica (WithEtcd) a compaction is the cluster's: the replica whose
// retention asks for one decides it and records it in the shared log, every
// replica applies it (with or without retention of its own), and the log's
// records below the horizon leave etcd. Give every replica the same
// retention (see docs/ha.md).
func WithRetention(keepRevisions int, keepAge time.Duration) Option {
	return func(o *options) { o.keepRevisions, o.keepAge = keepRevisions, keepAge }
}

// WithCompactInterval sets how often a store with retention compacts in
// the background (default DefaultCompactInterval). A negative interval
// turns the background compaction off: only Compact compacts.
func WithCompactInterval(d time.Duration) Option {
	return func(o *options) { o.compactInterval = d }
}

// WithClock sets the clock the store reads for revision times and for the
// age of revisions (default time.Now). For tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// CompactResult is what one Compact did (see retention.Result).
type CompactResult = retention.Result

// Compaction is the record of one compaction (see retention.Compaction).
type Compaction = retention.Compaction

// Horizon returns the oldest revision the store still keeps whole:
// revisions before it were compacted away. 0 means nothing was ever
// removed (every revision from 1 is kept).
func (s *Store) Horizon() int64 { return s.compactor.Horizon() }

// Compact removes the revisions that the retention (WithRetention) no
// longer keeps, in steps of a bounded number of revisions, each one write
// transaction that goes through the writer between commits. It records
// itself in Compactions and logs at Info. Without retention it does
// nothing. If ctx ends between steps, Compact returns what was done with
// ctx.Err(). On a replica it decides the cluster's next compaction and
// runs it; it does nothing when another replica decided that compaction
// first (it reaches this one through the log).
func (s *Store) Compact(ctx context.Context) (CompactResult, error) { return s.compactor.Compact(ctx) }

// Compactions returns the compaction records, newest first.
func (s *Store) Compactions(ctx context.Context) ([]Compaction, error) {
	return retention.Compactions(ctx, s.rdb)
}
