package etcdlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/commit"
)

// How long Follow waits before it reads the log again after a failure: it
// doubles from retryMin up to retryMax while etcd does not answer.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
)

// Follower is what Follow needs of the replica.
type Follower struct {
	// Cluster is the identity of the log the replica belongs to (Join):
	// a log of another identity under the prefix stops Follow.
	Cluster string
	// Applied returns the newest revision applied locally.
	Applied func() int64
	// Apply applies records, in order (commit.Writer.Apply): it skips
	// those applied already, and fails with commit.ErrGap when some are
	// missing before them.
	Apply func(ctx context.Context, recs []commit.Record) error
	// Compact applies a compaction the cluster decided
	// (retention.Compactor.Apply), once every revision before its horizon
	// is applied: it skips one applied already.
	Compact func(ctx context.Context, rec chain.Compaction) error
	// Status is told, after each attempt to read the log, whether the
	// replica follows it (nil) or why not.
	Status func(err error)
}

// Follow applies every record of the log, in order, until ctx ends or a
// record does not follow the local chain (commit.ErrDiverged, which it
// returns). It reads what the replica has not applied yet (Scan), then
// watches the log from there; when etcd does not answer or has no leader,
// or a watch ends, it reads again from the newest applied revision, after a
// pause that grows while etcd stays away.
func (l *Log) Follow(ctx context.Context, f Follower) error {
	return retry(ctx, f.Status, func(ctx context.Context) error { return l.follow(ctx, f) })
}

// retry runs fn until ctx ends, again after each failure, after a pause
// that grows while it keeps failing, and tells status of each outcome. It
// stops at an error that a retry cannot mend (commit.ErrDiverged,
// ErrNotALog), which it returns.
func retry(ctx context.Context, status func(error), fn func(ctx context.Context) error) error {
	wait := retryMin
	for ctx.Err() == nil {
		err := fn(ctx)
		switch {
		case errors.Is(err, commit.ErrDiverged), errors.Is(err, ErrNotALog), errors.Is(err, ErrBehindHorizon):
			status(err)
			return err
		case ctx.Err() != nil:
			return nil
		case err != nil:
			status(err)
		default:
			wait = retryMin
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
	return nil
}

// FollowTokens keeps a copy of the cluster's tokens until ctx ends: it
// reads them all, calls mirror with them, and again at each change etcd's
// watch reports; when etcd does not answer, it starts again after a pause
// (see Follow), telling status.
func (l *Log) FollowTokens(ctx context.Context, mirror func(ctx context.Context, set TokenSet) error, status func(error)) error {
	// A revocation or change of grants puts a token too: watching
	// P/tokens/ sees every move of the epoch.
	return l.keepCopy(ctx, l.tokensDir(), func(ctx context.Context) (int64, error) {
		set, err := l.Tokens(ctx)
		if err == nil {
			err = mirror(ctx, set)
		}
		return set.Rev, err
	}, nil, status)
}

// keepCopy keeps a copy of what etcd holds under dir until ctx ends: it
// calls load, which reads it all, copies it and returns the etcd revision
// it read at, then again at each change a watch of dir reports and each
// time poke receives (nil: never); when etcd does not answer, it starts
// again after a pause (see Follow), telling status.
func (l *Log) keepCopy(ctx context.Context, dir string, load func(ctx context.Context) (int64, error), poke <-chan struct{}, status func(error)) error {
	return retry(ctx, status, func(ctx context.Context) error {
		rev, err := load(ctx)
		if err != nil {
			return err
		}
		status(nil)
		wctx, cancel := l.watching(clientv3.WithRequireLeader(ctx))
		defer cancel()
		changes := l.cli.Watch(wctx, dir, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for {
			select {
			case resp, ok := <-changes:
				if !ok {
					return watchEnded(ctx, wctx)
				}
				if err := resp.Err(); err != nil {
					return unavailable("watch "+dir, err)
				}
			case <-poke:
			}
			if _, err := load(ctx); err != nil {
				return err
			}
		}
	})
}

// CatchUp applies the records and compactions of the log that the replica
// lacks, and returns the etcd revision it read them at. Records that the
// cluster compacted away before the replica applied them are
// ErrBehindHorizon.
func (l *Log) CatchUp(ctx context.Context, f Follower) (int64, error) {
	apply, compact := f.appliers(ctx, l)
	return l.Scan(ctx, f.Applied(), apply, compact)
}

// appliers returns f's Apply and Compact for ctx; a gap before the records
// is ErrBehindHorizon when the cluster compacted the missing ones away.
func (f *Follower) appliers(ctx context.Context, l *Log) (func([]commit.Record) error, func(chain.Compaction) error) {
	apply := func(recs []commit.Record) error {
		err := f.Apply(ctx, recs)
		if errors.Is(err, commit.ErrGap) {
			return l.behindHorizon(ctx, f.Applied(), err)
		}
		return err
	}
	return apply, func(rec chain.Compaction) error { return f.Compact(ctx, rec) }
}

// follow catches up and applies what the log's watch brings, until the
// watch fails.
func (l *Log) follow(ctx context.Context, f Follower) error {
	cluster, err := l.Join(ctx)
	if err != nil {
		return err
	}
	if cluster != f.Cluster {
		return fmt.Errorf("audit: %w: the log under %s is now cluster %s, this replica's is %s", ErrNotALog, l.prefix, cluster, f.Cluster)
	}
	apply, compact := f.appliers(ctx, l)
	at, err := l.Scan(ctx, f.Applied(), apply, compact)
	if err != nil {
		return err
	}
	f.Status(nil)
	wctx, cancel := l.watching(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range l.cli.Watch(wctx, l.logDir(), clientv3.WithPrefix(), clientv3.WithRev(at+1)) {
		if err := resp.Err(); err != nil {
			return unavailable("watch the log", err)
		}
		// Records and compaction records, in the order the log has them:
		// a compaction is applied after the records before it.
		recs := make([]commit.Record, 0, len(resp.Events))
		for _, ev := range resp.Events {
			if ev.Type != clientv3.EventTypePut {
				continue // a record removed by retention
			}
			if !bytes.HasPrefix(ev.Kv.Key, []byte(l.compactionDir())) {
				rec, err := l.decode(ev.Kv.Key, ev.Kv.Value)
				if err != nil {
					return err
				}
				recs = append(recs, rec)
				continue
			}
			c, err := l.decodeCompaction(ev.Kv.Key, ev.Kv.Value)
			if err != nil {
				return err
			}
			if len(recs) > 0 {
				if err := apply(recs); err != nil {
					return err
				}
				recs = recs[:0]
			}
			if err := compact(c.record()); err != nil {
				return err
			}
		}
		if len(recs) == 0 {
			continue
		}
		if err := apply(recs); err != nil {
			return err // ErrGap included: read the log again
		}
	}
	return watchEnded(ctx, wctx)
}
