package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/internal/etcdlog"
	"github.com/configd/configd/audit/internal/retention"
	"github.com/configd/configd/migrations"
)

// DefaultEtcdTimeout bounds each request of a replica to etcd (WithEtcd):
// a commit that etcd does not acknowledge within it fails with
// ErrStoreUnavailable.
const DefaultEtcdTimeout = 5 * time.Second

// ErrDiverged: the replicated commit log holds a record that does not
// follow this replica's audit chain (its hash or its state digest differs
// from what the local state gives): the replica applies nothing more and
// refuses writes; rebuild it from an empty data dir.
var ErrDiverged = commit.ErrDiverged

// ErrReplicaMode: the data dir belongs to the other mode (a SQLite-only
// store opened as a replica, or a replica opened without etcd), or to
// another cluster.
var ErrReplicaMode = errors.New("the data dir belongs to another store mode or cluster")

// ErrBehindHorizon: a replica's data dir stopped at a revision that the
// cluster has compacted away since (see WithRetention): the log no longer
// holds what it lacks. Start it on an empty data dir: it starts from the
// cluster's snapshot at the horizon.
var ErrBehindHorizon = etcdlog.ErrBehindHorizon

// ErrNotALog: the etcd prefix given to WithEtcd holds keys that are not a
// configd commit log.
var ErrNotALog = etcdlog.ErrNotALog

// ErrLogFormat: the cluster's commit log is of another format than this
// configd reads and writes (an older or newer release): the replica is
// refused at Open, with both formats named (docs/ha.md, "Versions and
// upgrades"). A data dir that joined a cluster under a release of an
// older format is refused so, from its schema level, even when etcd does
// not answer, and before it is migrated.
var ErrLogFormat = etcdlog.ErrFormat

// WithEtcd makes the store a replica of a configd cluster on etcd: its
// revisions are appended to the commit log under prefix in the etcd that
// client reaches (acknowledged = a quorum of etcd has them) and every
// replica applies the log, in order, into its own database, so that
// revision numbers, history and the audit chain are the same on every
// replica. See docs/ha.md.
//
// Open creates the log when the prefix is empty, refuses a prefix that
// holds something else (ErrNotALog), and a data dir of the SQLite-only mode
// or of another cluster (ErrReplicaMode). It applies everything the log
// holds before it returns: a new replica on an empty data dir serves reads
// once Open returns. A replica whose data dir has joined the cluster
// before (under a release of this log format) opens even when etcd does
// not answer, and catches up once it does. The client stays the caller's:
// Close does not close it.
func WithEtcd(client *clientv3.Client, prefix string) Option {
	return func(o *options) { o.etcd, o.etcdPrefix = client, prefix }
}

// WithEtcdTimeout bounds each request to etcd (default
// DefaultEtcdTimeout).
func WithEtcdTimeout(d time.Duration) Option { return func(o *options) { o.etcdTimeout = d } }

// WithHorizonFloor makes a replica's compactions wait for the replicas
// that are behind. floor returns the lowest revision that a replica alive
// now has applied (ok false: it knows of none), and a compaction this
// replica decides stops its horizon at the revision after that one, so a
// replica that is slow or briefly behind catches up from the log instead
// of being cut off (ErrBehindHorizon). An error of floor fails that
// compaction (Compact returns it; the background compaction logs it and
// tries again at its next interval). configd gives it the replicas'
// registrations in etcd: a replica that is down is not waited for, its
// registration ends with its lease (docs/ha.md, "A new replica after a
// compaction"). Without it, nothing is waited for.
func WithHorizonFloor(floor func(ctx context.Context) (rev int64, ok bool, err error)) Option {
	return func(o *options) { o.horizonFloor = floor }
}

// Replication is what a replica knows of the shared log.
type Replication struct {
	// Replica is true for a store opened WithEtcd; the other fields are
	// zero otherwise.
	Replica bool
	// Cluster is the log's identity, Prefix its etcd prefix.
	Cluster, Prefix string
	// Applied is the newest revision applied locally (Rev).
	Applied int64
	// Format is the format of the log this replica reads and writes, the
	// cluster's (a replica of another format is refused, ErrLogFormat);
	// Schema is the schema level of its data dir (its migrations).
	// Replicas of one format may differ in schema level (docs/ha.md,
	// "Versions and upgrades").
	Format, Schema int
	// Err is why the replica does not follow the log now (etcd does not
	// answer: ErrStoreUnavailable; a record that does not verify:
	// ErrDiverged), nil when it does.
	Err error
}

// Replication reports whether the store follows its shared log.
func (s *Store) Replication() Replication {
	if s.elog == nil {
		return Replication{}
	}
	r := Replication{Replica: true, Cluster: s.cluster, Prefix: s.elog.Prefix(), Applied: s.Rev(), Format: etcdlog.Format, Schema: s.schema}
	if p := s.followErr.Load(); p != nil {
		r.Err = *p
	}
	return r
}

// WaitRev waits until revision rev is applied here (Rev() >= rev), or ctx
// ends: a read after it sees at least what rev committed, whichever
// replica committed it.
func (s *Store) WaitRev(ctx context.Context, rev int64) error {
	for {
		ch := s.revs.wait()
		if s.Rev() >= rev {
			s.revs.done()
			return nil
		}
		select {
		case <-ch:
			s.revs.done()
		case <-ctx.Done():
			s.revs.done()
			return ctx.Err()
		}
		if s.isClosed() {
			return ErrClosed
		}
	}
}

// Sync returns a revision at least as new as every revision acknowledged
// before Sync was called, once it is applied here: a read after it is
// linearizable. For a replica it reads the shared log's head from etcd's
// quorum (ErrStoreUnavailable when etcd does not answer) and waits for it;
// a SQLite-only store has every revision already.
func (s *Store) Sync(ctx context.Context) (int64, error) {
	if s.elog == nil {
		return s.Rev(), nil
	}
	head, err := s.elog.Head(ctx)
	if err != nil {
		return 0, err
	}
	if err := s.WaitRev(ctx, head); err != nil {
		return 0, err
	}
	return head, nil
}

// revWaiter wakes the WaitRev calls when the store advances.
type revWaiter struct {
	waiting atomic.Int64 // WaitRev calls under way
	mu      sync.Mutex
	ch      chan struct{} // closed at the next advance
}

func (w *revWaiter) wait() <-chan struct{} {
	w.waiting.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *revWaiter) done() { w.waiting.Add(-1) }

// advanced is a commit hook: it wakes the waiters, if any.
func (w *revWaiter) advanced(Revision) {
	if w.waiting.Load() == 0 {
		return
	}
	w.mu.Lock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
	w.mu.Unlock()
}

// joinCluster checks the data dir against the mode and the log under the
// prefix, and binds an empty data dir to the log. It returns whether the
// data dir had joined the cluster before. A data dir that joined before
// opens when etcd does not answer (ErrStoreUnavailable).
func (s *Store) joinCluster(ctx context.Context, rev int64) (bool, error) {
	o := &s.opts
	var cluster, prefix string
	err := s.wdb.QueryRowContext(ctx, `SELECT cluster, prefix FROM replica WHERE id = 1`).Scan(&cluster, &prefix)
	joined := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("audit: read the replica's cluster: %w", err)
	}
	if o.etcd == nil {
		if joined && !o.inspect { // a restore's check reads any data dir
			return false, fmt.Errorf("audit: %s: %w: it is a replica of configd cluster %s on etcd (prefix %s): open it with the etcd store",
				s.path, ErrReplicaMode, cluster, prefix)
		}
		return false, nil
	}
	if !joined && rev > 0 {
		return false, fmt.Errorf("audit: %s: %w: it holds a SQLite-only store (%d revisions); a replica starts from an empty data dir and fills it from etcd",
			s.path, ErrReplicaMode, rev)
	}
	s.cluster = cluster
	id, err := s.elog.Join(ctx)
	switch {
	case err != nil && joined && errors.Is(err, ErrStoreUnavailable):
		o.logger.Warn("audit: etcd does not answer: the replica serves reads from its data dir and catches up once etcd is back", "err", err)
		return true, nil
	case err != nil:
		return false, err
	case joined && id != cluster:
		return false, fmt.Errorf("audit: %s: %w: it is a replica of cluster %s, and the etcd prefix %s holds cluster %s",
			s.path, ErrReplicaMode, cluster, s.elog.Prefix(), id)
	case joined:
		return true, nil
	}
	if _, err := s.wdb.ExecContext(ctx, `INSERT INTO replica (id, cluster, prefix, joined_at) VALUES (1, ?, ?, ?)`,
		id, s.elog.Prefix(), o.now().UnixNano()); err != nil {
		return false, fmt.Errorf("audit: record the replica's cluster: %w", err)
	}
	s.cluster = id
	return false, nil
}

// checkLogFormat refuses, before the migrations touch it, a data dir that
// joined a cluster of another log format than this configd's, from what
// the data dir records: the schema level the last configd that opened it
// left (etcdlog.CheckDataDir). It needs no etcd, so a replica of another
// format is refused at start even when etcd does not answer, and the
// data dir stays as it was for the release that can open it.
func (s *Store) checkLogFormat(ctx context.Context) error {
	level, err := migrations.Level(ctx, s.wdb)
	if err != nil || level == 0 {
		return err
	}
	var joined bool
	if err := s.wdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'replica')`).Scan(&joined); err != nil {
		return fmt.Errorf("audit: read the replica's cluster: %w", err)
	}
	if joined {
		if err := s.wdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM replica)`).Scan(&joined); err != nil {
			return fmt.Errorf("audit: read the replica's cluster: %w", err)
		}
	}
	if !joined {
		return nil
	}
	return s.opts.formatSchemas.CheckDataDir(s.path, level)
}

// shareDataKeys gives prefixes a data key shared with every replica
// through etcd: each one that has none or, with renew, each of them a new
// one. It first takes the keys other replicas shared; a new key gets the
// next id free in etcd, and is stored here once etcd has it. It runs
// alone on the writer (commit.Config.NewDataKeys, RotateDataKeys).
func (s *Store) shareDataKeys(ctx context.Context, prefixes []string, renew bool) error {
	for range 8 {
		if err := s.syncDataKeys(ctx); err != nil {
			return err
		}
		todo := prefixes
		if !renew {
			var err error
			if todo, err = s.keys.Missing(prefixes); err != nil {
				return err
			}
		}
		if len(todo) == 0 {
			return nil
		}
		next := int64(1)
		for _, id := range s.keys.IDs() {
			next = max(next, id+1)
		}
		created, err := s.keys.Create(todo, next, s.opts.now())
		if err != nil {
			return err
		}
		ok, err := s.elog.PutDataKeys(ctx, created)
		if err != nil {
			return err
		}
		if ok {
			return s.keys.Add(ctx, s.wdb, created)
		}
	}
	return errors.New("audit: data keys: other replicas kept taking the next ids; try again")
}

// syncKeysHook is commit.Config.SyncKeys: a replica takes the shared data
// keys when it meets a record sealed with one it lacks.
func (s *Store) syncKeysHook() func(ctx context.Context) error {
	if s.opts.etcd == nil {
		return nil
	}
	return s.syncDataKeys
}

// syncDataKeys takes the data keys the cluster shares that this replica
// lacks.
func (s *Store) syncDataKeys(ctx context.Context) error {
	rows, err := s.elog.DataKeys(ctx)
	if err != nil {
		return err
	}
	return s.keys.Add(ctx, s.wdb, rows)
}

// startFollowing catches up with the log, then follows it in the
// background until Close. A replica that had joined before opens even
// when etcd does not answer.
func (s *Store) startFollowing(ctx context.Context, joined bool) error {
	f := etcdlog.Follower{
		Cluster: s.cluster, Applied: s.Rev,
		Apply: func(ctx context.Context, recs []commit.Record) error { return s.w.Apply(ctx, recs) },
		Compact: func(ctx context.Context, rec chain.Compaction) error {
			res, err := s.compactor.Apply(ctx, rec)
			if hook := s.opts.onCompact; hook != nil && (res.Revisions > 0 || err != nil) {
				hook(res, err)
			}
			if errors.Is(err, ErrDiverged) {
				return errors.Join(err, s.w.Diverge(ctx, err))
			}
			return err
		},
	}
	err := s.syncDataKeys(ctx)
	if err == nil {
		_, err = s.elog.CatchUp(ctx, f)
	}
	if err != nil {
		if !joined || !errors.Is(err, ErrStoreUnavailable) {
			return err
		}
		s.followErr.Store(&err)
	}
	if set, err := s.elog.Tokens(ctx); err == nil {
		if err := s.copyTokens(ctx, set); err != nil {
			return err
		}
	} else if !joined || !errors.Is(err, ErrStoreUnavailable) {
		return err
	}
	if _, err := s.events.Load(ctx); err != nil && (!joined || !errors.Is(err, ErrStoreUnavailable)) {
		return err
	}
	fctx, cancel := context.WithCancel(context.Background())
	s.followCancel = cancel
	s.following.Add(3)
	go func() {
		defer s.following.Done()
		s.followEvents(fctx)
	}()
	go func() {
		defer s.following.Done()
		s.elog.FollowTokens(fctx, s.mirrorTokens, func(err error) {
			if err != nil && fctx.Err() == nil {
				s.opts.logger.Debug("audit: the replica's copy of the tokens waits for etcd", "err", err)
			}
		})
	}()
	go func() {
		defer s.following.Done()
		f.Status = func(err error) {
			if err == nil {
				s.followErr.Store(nil)
				return
			}
			if prev := s.followErr.Load(); prev == nil || (*prev).Error() != err.Error() {
				s.opts.logger.Warn("audit: the replica does not follow the commit log", "err", err)
			}
			s.followErr.Store(&err)
		}
		if err := s.elog.Follow(fctx, f); errors.Is(err, ErrBehindHorizon) {
			// It cannot catch up: its writes would fail on a gap, or
			// worse. Say why instead.
			_ = s.w.Diverge(fctx, err)
		}
	}()
	return nil
}

// compactionCluster is where the store's compactions are decided: the
// shared log for a replica, nowhere else (nil) for a store on SQLite
// alone.
func (s *Store) compactionCluster() retention.Cluster {
	if s.elog == nil {
		return nil
	}
	return replicaCluster{Log: s.elog, floor: s.opts.horizonFloor}
}

// replicaCluster is a replica's retention.Cluster: the shared log decides
// the compactions, and the floor (WithHorizonFloor) bounds their horizon.
type replicaCluster struct {
	*etcdlog.Log
	floor func(ctx context.Context) (int64, bool, error)
}

// Floor implements retention.Cluster.
func (c replicaCluster) Floor(ctx context.Context) (int64, bool, error) {
	if c.floor == nil {
		return 0, false, nil
	}
	return c.floor(ctx)
}

// restoreAtHorizon starts an empty replica's database at the cluster's
// history horizon, when the cluster compacted its log: the records before
// it are gone, so the replica takes the compaction records and the state
// before the horizon from etcd, and then applies the log from the horizon
// on (whose first record's state digest checks that state). It returns the
// newest compaction record (none when the cluster never compacted).
func (s *Store) restoreAtHorizon(ctx context.Context) (chain.Compaction, error) {
	recs, base, layers, err := s.elog.Restore(ctx)
	if err != nil || len(recs) == 0 {
		return chain.Compaction{}, err
	}
	if err := retention.Install(ctx, s.wdb, recs, base, layers); err != nil {
		return chain.Compaction{}, err
	}
	newest := recs[len(recs)-1]
	s.opts.logger.Info("audit: the replica starts from the cluster's snapshot at the history horizon",
		"horizon", newest.Horizon, "compaction", newest.ID, "keys", len(base))
	return newest, nil
}
