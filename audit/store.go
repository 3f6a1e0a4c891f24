// Package audit is configd's versioned, audited store, on SQLite.
//
// Every change is a numbered revision: one global int64 counter, assigned at
// commit, with who (actor), why (reason), where from (origin), when (UTC) and
// the old and new value of each key it touched. History is never rewritten;
// a rollback is a new revision whose content is an old one. By default it
// is kept forever; WithRetention lets Compact remove its oldest part, up to
// a recorded horizon (see package retention).
//
// Writes go through one writer goroutine that batches concurrent commits
// into one SQLite transaction (group commit): each commit still gets its own
// revision, in order, and Commit returns only once its batch is durable on
// disk (WAL, synchronous=FULL), so an acknowledged write survives kill -9.
//
// A key marked secret (Op.Secret) has its values encrypted at rest under
// a master key (WithMasterKey, package secrets); reads that serve values
// decrypt them, and the audit views (History, Revision, Diff) show a keyed
// digest and a length instead (see package keyring).
//
// # Rooms
//
// Package audit is the facade: Open, Store and its methods, the options,
// and under audit's own names the records and errors, so that callers
// import it alone. The work is done in rooms below it, each with one
// purpose; each imports only the rooms listed before it:
//
//   - record: the records (Revision, Change, KeyValue, Op, Txn, Scope, ...),
//     content types and errors; the leaf.
//   - internal/sqlitedb: the database on disk: opening it, the lock, its
//     files, and how its rows read into records.
//   - internal/keyring: the keys of secrets, and sealing, opening and
//     withholding values.
//   - internal/layer: the layers' order and which value is effective.
//   - internal/chain: tamper evidence: the revisions' hash chain, the state
//     digest, the compaction records' chain, Verify.
//   - internal/read: the read path: the current state in memory (Current)
//     and every read of the database; the plan of a rollback.
//   - internal/commit: the commit path: the writer, its batches, and the
//     decisions of what each request commits; Log, the seam below it.
//   - internal/sqlitelog: the Log on SQLite alone, one transaction a batch.
//   - internal/etcdlog: the Log of a cluster of replicas: the commit log in
//     etcd, over sqlitelog's local transaction (WithEtcd, docs/ha.md).
//   - internal/retention: removing old history (compaction).
//   - internal/tokens, internal/events, internal/backup: API tokens, source
//     events, backup and restore.
//   - migrations (beside audit): the schema.
//
// # The commit path and its seam
//
// A commit goes through two halves (package commit). The first decides
// what a batch of requests commits: validation, conflicts, layers, and the
// revision records with their chain hashes and state digests. The second,
// a commit.Log, makes the batch durable and applies it to the local
// database; by default that is one SQLite transaction (package
// sqlitelog). A replica (WithEtcd) plugs the replicated log into the same
// seam (package etcdlog): it appends the records to the log in etcd before
// the local transaction commits, and each replica applies them. The read
// path (package read) never sees the difference.
//
// Two invariants hold whatever the Log: revisions are numbered in commit
// order without gaps, each one following the chain of the one before; and
// apply-then-advance: the in-memory state, the commit hooks (the watch
// hub) and Commit's caller see a revision only after the Log made it
// durable. Acknowledged means durable.
//
// Store and its rooms are the one place in configd that writes SQL.
package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/commit"
	"github.com/configd/configd/audit/internal/etcdlog"
	"github.com/configd/configd/audit/internal/events"
	"github.com/configd/configd/audit/internal/journal"
	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/audit/internal/layer"
	"github.com/configd/configd/audit/internal/read"
	"github.com/configd/configd/audit/internal/retention"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/internal/sqlitelog"
	"github.com/configd/configd/migrations"
	"github.com/configd/configd/secrets"
)

// Option configures a Store.
type Option func(*options)

type options struct {
	maxValueSize int
	maxBatch     int
	logger       *slog.Logger
	onCommit     []func(Revision)
	layers       []string // lowest precedence first

	keepRevisions   int
	keepAge         time.Duration
	compactInterval time.Duration
	compactBatch    int
	now             func() time.Time
	onCompact       func(CompactResult, error) // tests: after each background compaction, and each one applied from the cluster

	masterKey *secrets.MasterKey
	// sealed opens a database with secrets without their master key, for
	// Restore's check: the chain needs no key, and nothing reads a value.
	sealed bool
	// inspect opens a database whose state disagrees with its history
	// (ErrStateMismatch), for Restore's check, which reports it through
	// Verify; it leaves the data dir's files as they are.
	inspect bool

	onTokens []func() // WithTokenHook

	etcd        *clientv3.Client // WithEtcd: a replica of the log under etcdPrefix
	etcdPrefix  string
	etcdTimeout time.Duration
	// formatSchemas are the schema levels of this release's log format
	// (etcdlog.FormatSchemas; tests pretend a later format's).
	formatSchemas etcdlog.Schemas
	// horizonFloor bounds the horizon of the compactions a replica
	// decides (WithHorizonFloor).
	horizonFloor func(ctx context.Context) (int64, bool, error)

	noJournal bool // WithJournal(false)
	// settleAfter, when set (by tests), is when the writer settles the
	// journaled batches: after this long idle or this old.
	settleAfter time.Duration
}

// WithJournal(false) makes each batch durable by its own SQLite COMMIT,
// as configd did before the journal (see JournalPath), for comparisons.
// The default, true, journals the batches of a store on SQLite alone; a
// replica (WithEtcd) has none: etcd is its log.
func WithJournal(on bool) Option { return func(o *options) { o.noJournal = !on } }

// JournalPath is the path of the journal of the database at path: the
// records of the batches acknowledged and not yet committed to the
// database. It lives and moves with the database.
func JournalPath(path string) string { return sqlitedb.JournalPath(path) }

// WithMaxValueSize sets the largest value, in bytes, that the store accepts.
func WithMaxValueSize(n int) Option { return func(o *options) { o.maxValueSize = n } }

// WithMaxBatch sets how many commits the writer groups into one SQLite
// transaction at most (default 256).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithCommitHook registers fn to be called with every revision, with its
// changes, after it is durable and before Commit returns to its caller.
// Hooks are called from the writer goroutine, one revision at a time, in
// revision order: fn must not block or call back into the Store's writes.
func WithCommitHook(fn func(Revision)) Option {
	return func(o *options) { o.onCommit = append(o.onCommit, fn) }
}

// WithLayers sets the layers, lowest precedence first; it must name
// StoreLayer once. The default is just the store layer. The effective value
// of a key is the one of the highest layer that defines it; a tombstone
// there means the key does not exist.
func WithLayers(order ...string) Option {
	return func(o *options) { o.layers = append([]string(nil), order...) }
}

// checkBatch, when set (by tests), checks each batch before it commits
// (commit.Config.CheckBatch).
var checkBatch func(ctx context.Context, v commit.BatchView) error

// Store is the versioned, audited key-value store. It is safe for concurrent
// use.
type Store struct {
	opts   options
	path   string
	lock   *sqlitedb.Lock
	layers *layer.Order
	keys   *keyring.Keyring // the master key and data keys of secrets

	wdb *sql.DB // the writer's single connection
	rdb *sql.DB // readers

	cur       *read.Current // the newest durable state, in memory
	r         *read.Reader
	log       *sqlitelog.Log
	elog      *etcdlog.Log   // WithEtcd: the shared log over log; nil otherwise
	events    *events.Shared // WithEtcd: the source events shared with the cluster; nil otherwise
	cluster   string         // WithEtcd: the shared log's identity
	schema    int            // the database's schema level (migrations)
	w         *commit.Writer
	revs      revWaiter
	compactor *retention.Compactor

	compactCancel context.CancelFunc // stops the background compaction
	compactDone   chan struct{}      // closed when it has stopped

	followCancel context.CancelFunc // stops following the shared log, tokens and source events
	following    sync.WaitGroup     // the goroutines that follow them
	followErr    atomic.Pointer[error]

	tokenCopy tokenCopy // WithEtcd: what the replica's copy of the tokens reflects
}

// Open opens (creating if needed) the SQLite database at path, applies the
// embedded migrations and starts the writer. A database that another process
// has open is refused with ErrLocked, one written by a newer binary with
// ErrSchemaTooNew, one whose current state disagrees with its audit history
// (chain.CheckState) with ErrStateMismatch. The database's files are made
// private and the leftovers of interrupted backups and restores beside it
// removed (see sqlitedb.PrepareFiles).
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{maxValueSize: DefaultMaxValueSize, maxBatch: 256, logger: slog.Default(), layers: []string{StoreLayer},
		compactInterval: DefaultCompactInterval, compactBatch: defaultCompactBatch, now: time.Now,
		etcdTimeout: DefaultEtcdTimeout, formatSchemas: etcdlog.FormatSchemas()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxValueSize <= 0 {
		return nil, fmt.Errorf("audit: max value size must be positive, got %d", o.maxValueSize)
	}
	if o.maxBatch <= 0 {
		return nil, fmt.Errorf("audit: max batch must be positive, got %d", o.maxBatch)
	}
	if o.keepRevisions < 0 || o.keepAge < 0 {
		return nil, fmt.Errorf("audit: retention must not be negative, got %d revisions and %s", o.keepRevisions, o.keepAge)
	}
	if o.compactBatch <= 0 {
		return nil, fmt.Errorf("audit: compaction batch must be positive, got %d", o.compactBatch)
	}
	if o.etcd != nil && (o.etcdPrefix == "" || o.etcdTimeout <= 0) {
		return nil, fmt.Errorf("audit: etcd needs a prefix and a positive timeout, got %q and %s", o.etcdPrefix, o.etcdTimeout)
	}
	layers, err := layer.New(o.layers)
	if err != nil {
		return nil, err
	}
	if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("audit: database directory: %w", err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("audit: database directory %s is not a directory", dir)
		}
	}
	lock, err := sqlitedb.LockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	s := &Store{opts: o, path: path, lock: lock, layers: layers}
	if !o.inspect {
		if err := sqlitedb.PrepareFiles(path, o.logger); err != nil {
			lock.Release()
			return nil, err
		}
	}
	joined, err := s.open(ctx)
	if err != nil {
		if s.log != nil {
			s.log.Close()
		}
		s.closeDBs()
		lock.Release()
		return nil, err
	}
	if s.elog != nil {
		if err := s.startFollowing(ctx, joined); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// open opens the database, checks its state against its history, loads
// the state into memory and starts the writer and the compaction. For a
// replica (WithEtcd) it checks the data dir against the shared log first
// and reports whether the data dir had joined the cluster before.
func (s *Store) open(ctx context.Context) (joined bool, err error) {
	err = s.openDB(ctx, &joined)
	return joined, err
}

func (s *Store) openDB(ctx context.Context, joined *bool) error {
	o := &s.opts
	var err error
	if s.wdb, err = sqlitedb.OpenWriter(ctx, s.path); err != nil {
		return err
	}
	if !o.inspect {
		if err := s.checkLogFormat(ctx); err != nil {
			return err
		}
	}
	if s.schema, err = migrations.Up(ctx, s.wdb); err != nil {
		return fmt.Errorf("audit: %s: %w", s.path, err)
	}
	var rev sql.NullInt64
	if err := s.wdb.QueryRowContext(ctx, `SELECT max(rev) FROM revisions`).Scan(&rev); err != nil {
		return fmt.Errorf("audit: read current revision: %w", err)
	}
	j, recovered, err := s.openJournal(rev.Int64)
	if err != nil {
		return err
	}
	if s.log, err = sqlitelog.New(ctx, s.wdb, o.layers); err != nil {
		if j != nil {
			j.Close(rev.Int64)
		}
		return err
	}
	if j != nil {
		s.log.Journal(j, rev.Int64)
	}
	if o.etcd != nil {
		s.elog = etcdlog.New(o.etcd, o.etcdPrefix, s.log, func() int64 { return s.cur.Rev() }, o.etcdTimeout)
		s.events = events.NewShared(s.wdb, s.elog, o.logger)
	}
	if *joined, err = s.joinCluster(ctx, rev.Int64); err != nil {
		return err
	}
	h, err := chain.LoadHorizon(ctx, s.wdb)
	if err != nil {
		return fmt.Errorf("audit: %s: %w", s.path, err)
	}
	restored := false
	if s.elog != nil && !rev.Valid && !h.Found {
		if h, err = s.restoreAtHorizon(ctx); err != nil && !(*joined && errors.Is(err, ErrStoreUnavailable)) {
			return err
		}
		restored = h.Found
	}
	if h.Found && rev.Int64 < h.Horizon-1 {
		// A replica restored at the cluster's horizon, before it applies
		// the horizon's revision.
		rev = sql.NullInt64{Int64: h.Horizon - 1, Valid: true}
	}
	// Before anything reads a value: a state that disagrees with the
	// history is named as such, whatever else is wrong with it. The same
	// scan of kv fills the mirror.
	var kvs []KeyValue
	st, err := chain.CheckState(ctx, s.wdb, func(kv KeyValue) { kvs = append(kvs, kv) })
	if err != nil {
		return err
	}
	if st.Problem != "" && !o.inspect {
		return fmt.Errorf("audit: %s: %w: %s", s.path, ErrStateMismatch, st.Problem)
	}
	if s.rdb, err = sqlitedb.OpenReaders(ctx, s.path, 8); err != nil {
		return err
	}
	if s.keys, err = keyring.Load(ctx, s.rdb, o.masterKey, o.sealed); err != nil {
		return err
	}
	if restored {
		// The snapshot's secrets are sealed with the cluster's data keys.
		if err := s.syncDataKeys(ctx); err != nil {
			return err
		}
	}
	if !o.sealed {
		if err := s.keys.RevealKVs(kvs); err != nil {
			return fmt.Errorf("audit: load current state: %w", err)
		}
	}
	s.cur = read.NewCurrent(kvs, rev.Int64)
	s.r = read.New(s.rdb, s.keys, s.layers, s.cur)

	head, err := chain.Prepare(ctx, s.wdb)
	if err != nil {
		return err
	}
	if head == nil && h.Found {
		head = h.Anchor // restored at the horizon: the chain goes on from it
	}
	layered, err := sqlitedb.Layered(ctx, s.wdb, o.layers)
	if err != nil {
		return err
	}
	// A database that keeps the store layer's values once, in kv, goes on
	// doing so until a source writes a row (issue 17).
	if implied, err := sqlitedb.Implied(ctx, s.wdb); err != nil {
		return err
	} else if implied {
		s.log.ImplyStoreRows()
	}
	var log commit.Log = s.log
	var deferred commit.Deferred
	switch {
	case s.elog != nil:
		log = s.elog
	case j != nil:
		deferred = s.log
		s.r.AwaitDatabase(func(ctx context.Context, rev int64) error { return s.w.AwaitSettled(ctx, rev) })
	}
	s.w = commit.Start(commit.Config{
		Log: log, Deferred: deferred, IdleSettle: o.settleAfter, MaxUnsettled: o.settleAfter, Current: s.cur, Head: chain.NewHead(head, st.Sum), Keys: s.keys,
		NewDataKeys: func(ctx context.Context, prefixes []string) error {
			if s.elog != nil {
				return s.shareDataKeys(ctx, prefixes, false)
			}
			return s.keys.NewDataKeys(ctx, s.wdb, prefixes, false, o.now(), o.logger)
		},
		Layers: s.layers, Layered: layered, Sealed: o.sealed,
		MaxValueSize: o.maxValueSize, MaxBatch: o.maxBatch, Now: o.now, Logger: o.logger,
		OnCommit: append(slices.Clip(o.onCommit), s.revs.advanced), CheckBatch: checkBatch,
		SyncKeys: s.syncKeysHook(), RefreshTokens: s.refreshTokensHook(),
	})
	if len(recovered) > 0 {
		if err := s.w.Recover(ctx, recovered); err != nil {
			s.w.Close()
			return fmt.Errorf("audit: %s: apply the %d revisions that its journal %s holds: %w", s.path, len(recovered), JournalPath(s.path), err)
		}
		o.logger.Info("audit: applied the journal's revisions that the database lacked (configd stopped before it committed them)",
			"from", recovered[0].Rev.Rev, "to", recovered[len(recovered)-1].Rev.Rev)
	}
	s.compactor = retention.NewCompactor(retention.Policy{KeepRevisions: o.keepRevisions, KeepAge: o.keepAge, Batch: o.compactBatch},
		s.rdb, s.wdb, s.w, s.cur.Rev, o.now, o.logger, h.Horizon, s.compactionCluster())
	if (o.keepRevisions > 0 || o.keepAge > 0) && o.compactInterval > 0 {
		var cctx context.Context
		cctx, s.compactCancel = context.WithCancel(context.Background())
		s.compactDone = make(chan struct{})
		go func() {
			defer close(s.compactDone)
			s.compactor.Run(cctx, o.compactInterval, o.onCompact)
		}()
	}
	return nil
}

// openJournal opens the journal of a store on SQLite alone whose
// database's newest revision is rev, and returns the records it holds
// after rev. A replica has no journal: one left by a store on SQLite
// alone that holds revisions its database lacks is refused (the data dir
// was used by another mode). A journal whose cycle starts after rev
// belongs to a database newer than this one (replaced by hand): refused.
func (s *Store) openJournal(rev int64) (*journal.File, []commit.Record, error) {
	o, path := &s.opts, JournalPath(s.path)
	if o.etcd != nil || o.inspect || o.noJournal {
		rec, err := journal.Peek(path)
		if err == nil && rec.Valid && rec.Last() > rev {
			err = fmt.Errorf("audit: %s holds revisions %d to %d, which the database %s lacks: open it once without etcd "+
				"(configd --store sqlite) to apply them", path, max(rec.Base, rev)+1, rec.Last(), s.path)
		}
		return nil, nil, err
	}
	j, rec, err := journal.Open(path, 0)
	if err != nil {
		return nil, nil, err
	}
	if rec.Valid && rec.Base > rev && len(rec.Records) > 0 {
		j.Close(rev)
		return nil, nil, fmt.Errorf("audit: the journal %s starts after revision %d, but the database %s ends at revision %d: "+
			"the database is older than its journal (was it replaced by hand? Restore moves the journal aside); "+
			"move the journal away to open the database as it is", path, rec.Base, s.path, rev)
	}
	var after []commit.Record
	for _, r := range rec.Records {
		if r.Rev.Rev > rev {
			after = append(after, r)
		}
	}
	return j, after, nil
}

func (s *Store) closeDBs() error {
	var errs []error
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	return errors.Join(errs...)
}

// Close stops accepting commits, waits for queued ones to finish and closes
// the database. It is safe to call more than once.
func (s *Store) Close() error {
	if s.followCancel != nil {
		s.followCancel()
		s.following.Wait()
	}
	if s.compactCancel != nil {
		s.compactCancel()
		<-s.compactDone
	}
	if !s.w.Close() {
		return nil
	}
	err := errors.Join(s.log.Close(), s.closeDBs())
	if lerr := s.lock.Release(); err == nil {
		err = lerr
	}
	return err
}

// Rev returns the current (newest committed) revision; 0 for an empty store.
func (s *Store) Rev() int64 { return s.cur.Rev() }

// MaxValueSize returns the largest value the store accepts, in bytes.
func (s *Store) MaxValueSize() int { return s.opts.maxValueSize }

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Layers returns the layers, lowest precedence first.
func (s *Store) Layers() []string { return s.layers.Names() }

// Ping reports whether the store is open and its database answers a read.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return ErrClosed
	}
	var one int
	if err := s.rdb.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("audit: database does not answer: %w", err)
	}
	return nil
}

// DiskFullErrors returns how many commits failed because the disk was full
// (ErrDiskFull) since the store was opened.
func (s *Store) DiskFullErrors() int64 { return s.w.DiskFullErrors() }

// isClosed reports whether Close was called.
func (s *Store) isClosed() bool { return s.w.Closed() }
