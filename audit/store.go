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
// digest and a length instead (see secrets.go).
//
// Store is the one place in configd that writes SQL.
package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/audit/internal/retention"
	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/migrations"
	"github.com/configd/configd/secrets"
)

// DefaultMaxValueSize is the default limit on a value's size: 1 MiB.
const DefaultMaxValueSize = 1 << 20

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
	onCompact       func(CompactResult, error) // tests: after each background compaction

	masterKey *secrets.MasterKey
	// sealed opens a database with secrets without their master key, for
	// Restore's check: the chain needs no key, and nothing reads a value.
	sealed bool
	// inspect opens a database whose state disagrees with its history
	// (ErrStateMismatch), for Restore's check, which reports it through
	// Verify; it leaves the data dir's files as they are.
	inspect bool
}

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

// ReadOption modifies a read.
type ReadOption func(*readOptions)

type readOptions struct{ rev int64 }

// AtRev reads the state as of revision rev instead of the current one.
func AtRev(rev int64) ReadOption { return func(o *readOptions) { o.rev = rev } }

// Store is the versioned, audited key-value store. It is safe for concurrent
// use.
type Store struct {
	opts options
	rank map[string]int // layer → position in opts.layers
	// qLayerRows reads a key's rows in the configured layers (layerRowsQuery).
	qLayerRows string
	path       string
	lock       *sqlitedb.Lock
	keys       *keyring.Keyring // the master key and data keys of secrets

	wdb *sql.DB // the writer's single connection
	rdb *sql.DB // readers

	// current mirrors the kv table in memory for Get: the writer updates
	// it once a batch is durable. Values in it are never modified.
	currentMu sync.RWMutex
	current   map[string]*KeyValue

	rev       atomic.Int64 // newest durable revision
	compactor *retention.Compactor
	diskFull  atomic.Int64 // see DiskFullErrors

	compactCancel context.CancelFunc // stops the background compaction
	compactDone   chan struct{}      // closed when it has stopped

	mu      sync.RWMutex // guards closed and sends on queue
	closed  bool
	queue   chan *request
	stopped chan struct{} // closed when the writer has exited
}

// Open opens (creating if needed) the SQLite database at path, applies the
// embedded migrations and starts the writer. A database that another process
// has open is refused with ErrLocked, one written by a newer binary with
// ErrSchemaTooNew, one whose current state disagrees with its audit history
// (chain.CheckState) with ErrStateMismatch. The database's files are made
// private and the leftovers of interrupted backups and restores beside it
// removed (see files.go).
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{maxValueSize: DefaultMaxValueSize, maxBatch: 256, logger: slog.Default(), layers: []string{StoreLayer},
		compactInterval: DefaultCompactInterval, compactBatch: defaultCompactBatch, now: time.Now}
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
	rank, err := checkLayers(o.layers)
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
	s := &Store{opts: o, path: path, lock: lock, rank: rank, qLayerRows: sqlitedb.LayerRowsQuery(o.layers)}
	if !o.inspect {
		if err := sqlitedb.PrepareFiles(path, o.logger); err != nil {
			lock.Release()
			return nil, err
		}
	}
	state, horizon, err := s.open(ctx)
	if err != nil {
		s.closeDBs()
		lock.Release()
		return nil, err
	}
	s.queue = make(chan *request, 4*o.maxBatch)
	s.stopped = make(chan struct{})
	w, err := newWriter(ctx, s, state)
	if err != nil {
		s.closeDBs()
		lock.Release()
		return nil, err
	}
	go w.run()
	s.compactor = retention.NewCompactor(retention.Policy{KeepRevisions: o.keepRevisions, KeepAge: o.keepAge, Batch: o.compactBatch},
		s.rdb, s.wdb, storeWriter{s}, s.Rev, o.now, o.logger, horizon)
	if (o.keepRevisions > 0 || o.keepAge > 0) && o.compactInterval > 0 {
		var cctx context.Context
		cctx, s.compactCancel = context.WithCancel(context.Background())
		s.compactDone = make(chan struct{})
		go func() {
			defer close(s.compactDone)
			s.compactor.Run(cctx, o.compactInterval, o.onCompact)
		}()
	}
	return s, nil
}

// open opens the database and loads the mirror. It returns the LtHash of
// the current state, which it has checked against the history.
func (s *Store) open(ctx context.Context) (state chain.LtHash, horizon int64, err error) {
	if s.wdb, err = sqlitedb.OpenWriter(ctx, s.path); err != nil {
		return chain.LtHash{}, 0, err
	}
	if _, err := migrations.Up(ctx, s.wdb); err != nil {
		return chain.LtHash{}, 0, fmt.Errorf("audit: %s: %w", s.path, err)
	}
	var rev sql.NullInt64
	if err := s.wdb.QueryRowContext(ctx, `SELECT max(rev) FROM revisions`).Scan(&rev); err != nil {
		return chain.LtHash{}, 0, fmt.Errorf("audit: read current revision: %w", err)
	}
	s.rev.Store(rev.Int64)
	h, err := chain.LoadHorizon(ctx, s.wdb)
	if err != nil {
		return chain.LtHash{}, 0, fmt.Errorf("audit: %s: %w", s.path, err)
	}
	// Before anything reads a value: a state that disagrees with the
	// history is named as such, whatever else is wrong with it. The same
	// scan of kv fills the mirror.
	var kvs []KeyValue
	st, err := chain.CheckState(ctx, s.wdb, func(kv KeyValue) { kvs = append(kvs, kv) })
	if err != nil {
		return chain.LtHash{}, 0, err
	}
	if st.Problem != "" && !s.opts.inspect {
		return chain.LtHash{}, 0, fmt.Errorf("audit: %s: %w: %s", s.path, ErrStateMismatch, st.Problem)
	}

	if s.rdb, err = sqlitedb.OpenReaders(ctx, s.path, 8); err != nil {
		return chain.LtHash{}, 0, err
	}
	if s.keys, err = keyring.Load(ctx, s.rdb, s.opts.masterKey, s.opts.sealed); err != nil {
		return chain.LtHash{}, 0, err
	}
	if !s.opts.sealed {
		if err := s.keys.RevealKVs(kvs); err != nil {
			return chain.LtHash{}, 0, fmt.Errorf("audit: load current state: %w", err)
		}
	}
	s.current = make(map[string]*KeyValue, len(kvs))
	for i := range kvs {
		s.current[kvs[i].Key] = &kvs[i]
	}
	return st.Sum, h.Horizon, nil
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
	if s.compactCancel != nil {
		s.compactCancel()
		<-s.compactDone
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.stopped
		return nil
	}
	s.closed = true
	close(s.queue)
	s.mu.Unlock()
	<-s.stopped
	err := s.closeDBs()
	if lerr := s.lock.Release(); err == nil {
		err = lerr
	}
	return err
}

// Rev returns the current (newest committed) revision; 0 for an empty store.
func (s *Store) Rev() int64 { return s.rev.Load() }

// MaxValueSize returns the largest value the store accepts, in bytes.
func (s *Store) MaxValueSize() int { return s.opts.maxValueSize }

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

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
func (s *Store) DiskFullErrors() int64 { return s.diskFull.Load() }

// storeWriter is the store's writer as package retention needs it.
type storeWriter struct{ s *Store }

func (w storeWriter) Alone(ctx context.Context, fn func(ctx context.Context) error) error {
	return w.s.alone(ctx, fn)
}

// isClosed reports whether Close was called.
func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}
