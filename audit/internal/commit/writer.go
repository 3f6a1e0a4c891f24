package commit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/audit/internal/layer"
	"github.com/configd/configd/audit/internal/read"
	"github.com/configd/configd/audit/internal/schema"
	"github.com/configd/configd/audit/record"
)

// Config is what a Writer needs.
type Config struct {
	// Log makes the batches durable and applies them.
	Log Log
	// Deferred, when set, is Log, whose database takes the batches after
	// they are durable (see Deferred). The writer settles it once it has
	// had no request for IdleSettle, or after a batch when the oldest
	// unsettled one is MaxUnsettled old (zero: DefaultIdleSettle,
	// DefaultMaxUnsettled).
	Deferred                 Deferred
	IdleSettle, MaxUnsettled time.Duration
	// Current is the newest durable state in memory, which the writer
	// advances after each batch.
	Current *read.Current
	// Head is the chain's head as of Current's revision (chain.NewHead).
	Head *chain.Head
	// Keys seals, opens and withholds secrets.
	Keys *keyring.Keyring
	// NewDataKeys creates data keys for prefixes (keyring.NewDataKeys on
	// the store's database); the writer runs it alone, before a commit
	// that needs them.
	NewDataKeys func(ctx context.Context, prefixes []string) error
	// Layers is the layers' order.
	Layers *layer.Order
	// Layered: the database holds layer rows beyond the store layer's
	// mirror of kv (sqlitedb.Layered).
	Layered bool
	// Sealed: the store has no master key for the secrets it holds (a
	// restore's check): Current holds their ciphertext, and old values are
	// read from the database.
	Sealed bool
	// MaxValueSize is the largest value accepted, in bytes; MaxBatch the
	// most requests decided in one batch.
	MaxValueSize, MaxBatch int
	// SyncKeys, for a replicated Log, takes the data keys that other
	// replicas created: the writer calls it when a record it applies is
	// sealed with a data key the keyring lacks.
	SyncKeys func(ctx context.Context) error
	// RefreshTokens, for a replicated Log, brings the replica's copy of
	// the cluster's tokens up to date from the shared log, and has whoever
	// allows writes by them (the server's principals, record.Authorization)
	// reload them, before it returns the copy's token epoch: the writer
	// calls it when a batch was refused because the tokens changed
	// (TokensMovedError).
	RefreshTokens func(ctx context.Context) (int64, error)
	// Now is the clock of revision times.
	Now func() time.Time
	// Logger logs failed batches.
	Logger *slog.Logger
	// OnCommit are called with every revision, plain, once it is durable,
	// in revision order, from the writer goroutine.
	OnCommit []func(record.Revision)
	// CheckBatch, when set (by tests), is called with each batch, flushed,
	// before it commits; an error fails the batch.
	CheckBatch func(ctx context.Context, v BatchView) error
}

// BatchView is what Config.CheckBatch sees of a batch about to commit.
type BatchView struct {
	Batch Batch
	// State is the decider's LtHash of the state after the batch.
	State chain.LtHash
	// Overlay is what the batch changed, plain (nil: deleted), as the
	// decider sees it; nil when the decider reads old values from the
	// database (a sealed store).
	Overlay map[string]*record.KeyValue
	// Layered reports whether the decider reads the layer rows of every
	// key it writes.
	Layered bool
	Layers  []string
	Keys    *keyring.Keyring
}

// Writer is the commit path: one goroutine that takes queued requests in
// batches, decides each batch's revisions and has the Log make them
// durable, then advances the in-memory state and tells the hooks. It is
// safe for concurrent use.
type Writer struct {
	log          Log
	replica      Replicated // log, when it is shared by several replicas
	deferred     Deferred   // log, when the database takes batches after they are durable
	idleSettle   time.Duration
	maxUnsettled time.Duration
	nudge        chan struct{}
	settledMu    sync.Mutex
	settledCh    chan struct{} // closed (and replaced) after each Settle
	settledErr   error         // the last Settle's
	diverged     error         // set by the writer goroutine: see ErrDiverged
	d            decider
	keys         *keyring.Keyring
	newDataKeys  func(ctx context.Context, prefixes []string) error
	syncKeys     func(ctx context.Context) error
	refresh      func(ctx context.Context) (int64, error)
	tokenEpoch   int64 // the newest token epoch the writer knows of; writer goroutine only
	maxValueSize int
	maxBatch     int
	logger       *slog.Logger
	onCommit     []func(record.Revision)
	checkBatch   func(ctx context.Context, v BatchView) error
	diskFull     atomic.Int64 // see DiskFullErrors
	avgBatch     float64      // requests a batch, a moving average over the last 8 or so; writer goroutine only

	mu      sync.RWMutex // guards closed and sends on queue
	closed  bool
	queue   chan request
	stopped chan struct{} // closed when the writer goroutine has exited
}

// Start starts the writer of cfg.
func Start(cfg Config) *Writer {
	w := &Writer{
		log: cfg.Log, keys: cfg.Keys, newDataKeys: cfg.NewDataKeys, syncKeys: cfg.SyncKeys, refresh: cfg.RefreshTokens,
		maxValueSize: cfg.MaxValueSize, maxBatch: cfg.MaxBatch, logger: cfg.Logger,
		onCommit: cfg.OnCommit, checkBatch: cfg.CheckBatch,
		queue: make(chan request, 4*cfg.MaxBatch), stopped: make(chan struct{}),
		d: decider{keys: cfg.Keys, layers: cfg.Layers, schemas: &schema.Cache{}, cur: cfg.Current, head: cfg.Head, now: cfg.Now,
			mirror: !cfg.Sealed, layered: cfg.Layered, overlay: map[string]*record.KeyValue{},
			batchSchemas: map[string]*record.KeyValue{}},
	}
	w.replica, _ = cfg.Log.(Replicated)
	w.deferred = cfg.Deferred
	w.idleSettle, w.maxUnsettled = cmp.Or(cfg.IdleSettle, DefaultIdleSettle), cmp.Or(cfg.MaxUnsettled, DefaultMaxUnsettled)
	w.nudge, w.settledCh = make(chan struct{}, 1), make(chan struct{})
	go w.run()
	return w
}

// Commit applies txn as one revision and returns it once it is durable.
// Puts whose value and content type equal the current ones, and deletes of
// missing keys, change nothing; a transaction that changes nothing records
// nothing and returns a Revision with the current Rev and no Changes.
// A failed IfModRev condition returns a *ConflictError and changes nothing.
//
// If ctx ends while the commit waits in the queue, Commit returns ctx.Err()
// and the commit is dropped; once the writer has taken it, Commit waits for
// the outcome.
func (w *Writer) Commit(ctx context.Context, txn record.Txn) (record.Revision, error) {
	p, err := w.QueueCommit(ctx, txn)
	if err != nil {
		return record.Revision{}, err
	}
	return p.Wait()
}

// QueueCommit is Commit without the wait: it validates txn, queues it and
// returns; Wait gives the outcome. Requests queued one after another are
// decided in that order, in one batch when the writer takes them
// together.
func (w *Writer) QueueCommit(ctx context.Context, txn record.Txn) (Pending, error) {
	if err := w.validateTxn(&txn); err != nil {
		return Pending{}, err
	}
	var secretKeys []string
	for _, op := range txn.Ops {
		if op.Type == record.OpPut && (op.Secret || w.d.cur.IsSecret(op.Key)) {
			secretKeys = append(secretKeys, op.Key)
		}
	}
	if len(secretKeys) > 0 {
		if err := w.ensureDataKeys(ctx, secretKeys); err != nil {
			return Pending{}, err
		}
	}
	return w.enqueue(ctx, &txnRequest{txn: txn})
}

// ensureDataKeys makes sure that every prefix of keys has a data key,
// creating the missing ones alone on the writer.
func (w *Writer) ensureDataKeys(ctx context.Context, keys []string) error {
	missing, err := w.keys.Missing(keys)
	if err != nil || len(missing) == 0 {
		return err
	}
	return w.Alone(ctx, func(ctx context.Context) error { return w.newDataKeys(ctx, missing) })
}

// Rollback commits req, validated, its origin set (see audit's Rollback),
// as one revision planned inside its batch, and returns it once it is
// durable.
func (w *Writer) Rollback(ctx context.Context, req record.RollbackRequest) (record.Revision, error) {
	p, err := w.enqueue(ctx, &rollbackRequest{req: req})
	if err != nil {
		return record.Revision{}, err
	}
	return p.Wait()
}

// ApplySource replaces the raw values of a source's layer with snapshot in
// one revision (see audit's ApplySource), once it is durable. A non-zero
// fence must hold when the revision is made durable (the Log checks it,
// see Fencer), or nothing is recorded and the error wraps
// record.ErrFenced; only a replicated Log checks fences.
func (w *Writer) ApplySource(ctx context.Context, layer string, snapshot map[string]record.LayerValue, fence record.Fence) (record.Revision, error) {
	p, err := w.QueueSource(ctx, layer, snapshot, fence)
	if err != nil {
		return record.Revision{}, err
	}
	return p.Wait()
}

// QueueSource is ApplySource without the wait, as QueueCommit is Commit.
func (w *Writer) QueueSource(ctx context.Context, layer string, snapshot map[string]record.LayerValue, fence record.Fence) (Pending, error) {
	if !fence.IsZero() && w.replica == nil {
		return Pending{}, fmt.Errorf("audit: %w: a fence (%v) needs a replicated log, and this store has none", record.ErrBadRequest, fence)
	}
	snap, err := w.validateSnapshot(layer, snapshot)
	if err != nil {
		return Pending{}, err
	}
	return w.enqueue(ctx, &sourceRequest{layer: layer, snap: snap, fence: fence})
}

// Alone runs fn on the writer, alone: after the batch under way and before
// the next one, with ctx's values but not its end (once fn starts, it
// finishes). If ctx ends while fn waits in the queue, fn does not run.
func (w *Writer) Alone(ctx context.Context, fn func(ctx context.Context) error) error {
	p, err := w.enqueue(ctx, &aloneRequest{fn: fn})
	if err != nil {
		return err
	}
	_, err = p.Wait()
	return err
}

// Pending is a queued request.
type Pending struct{ t *ticket }

// Wait waits for the request's outcome: its revision, as the caller sees
// it (secrets withheld), once it is durable.
func (p Pending) Wait() (record.Revision, error) {
	res := <-p.t.done
	return res.rev, res.err
}

func (w *Writer) enqueue(ctx context.Context, req request) (Pending, error) {
	if err := ctx.Err(); err != nil {
		return Pending{}, err
	}
	t := req.base()
	t.ctx, t.done = ctx, make(chan result, 1)
	if _, ok := req.(revisionRequest); ok && w.replica != nil {
		if t.auth = record.AuthorizationFrom(ctx); t.auth != nil {
			t.epoch = t.auth.TokenEpoch()
		}
	}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return Pending{}, record.ErrClosed
	}
	select {
	case w.queue <- req:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return Pending{}, ctx.Err()
	}
	return Pending{t}, nil
}

// Close stops taking requests and waits for the queued ones to finish. It
// reports whether this call closed the writer (false: it was closed
// already).
func (w *Writer) Close() bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.stopped
		return false
	}
	w.closed = true
	close(w.queue)
	w.mu.Unlock()
	<-w.stopped
	return true
}

// Closed reports whether Close was called.
func (w *Writer) Closed() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.closed
}

// DiskFullErrors returns how many batches failed because the disk was
// full (record.ErrDiskFull).
func (w *Writer) DiskFullErrors() int64 { return w.diskFull.Load() }

// When the writer settles a Deferred log by default (Config.IdleSettle,
// Config.MaxUnsettled). Under load, a settle every 250 ms rather than
// every 100 ms writes each hot b-tree page (the kv, layer_kv and
// changes_key indexes, where new keys land) once for more writes: with
// the writer's larger page cache (sqlitedb.DSN) it took 13% less CPU a
// write and 20% more writes a second at 64 writers (BENCHMARKS.md,
// "Durable writes against etcd"). A reader never waits for it: it has
// the writer settle at once (AwaitSettled). Idle means 10 ms without a
// request, not 1 ms: closed-loop writers on a busy machine often take
// more than a millisecond to send their next write, and a settle then
// held their batch behind SQLite's commit (with 10 ms, 5% less CPU a
// write and a lower p99 at 64 writers; BENCHMARKS.md, issue 17).
const (
	DefaultIdleSettle   = 10 * time.Millisecond
	DefaultMaxUnsettled = 250 * time.Millisecond
)

func (w *Writer) run() {
	defer close(w.stopped)
	defer w.settle()
	batch := make([]revisionRequest, 0, w.maxBatch)
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	for {
		req, ok := w.next(idle)
		if !ok {
			return
		}
		first, ok := req.(revisionRequest)
		if !ok {
			w.runAlone(req.(*aloneRequest))
			continue
		}
		batch = append(batch[:0], first)
		alone := w.take(&batch, w.maxBatch, nil) // taken while draining: runs after the batch
		if alone == nil && w.lingers(len(batch)) {
			t := time.NewTimer(lingerFor)
			if alone = w.take(&batch, min(lingerUpTo, w.maxBatch), t.C); alone == nil {
				alone = w.take(&batch, w.maxBatch, nil)
			}
			t.Stop()
		}
		w.avgBatch += (float64(len(batch)) - w.avgBatch) / 8
		w.commitBatch(batch)
		if d := w.deferred; d != nil {
			if since := d.Unsettled(); !since.IsZero() && (time.Since(since) >= w.maxUnsettled || d.Full()) {
				w.settle()
			}
		}
		if alone != nil {
			w.runAlone(alone)
		}
	}
}

// A lone request between larger batches (their moving average above
// lingerAbove requests) waits up to lingerFor for company: under load the
// callers of the batch just answered are on their way back, and
// committing the one request alone spends a whole journal sync on it while
// they queue behind it. At 16 and 64 writers a third of the batches were
// such lone ones; waiting up to 100 µs for up to lingerUpTo requests gave
// 1–10% more writes a second at 16 writers (all of eight alternated
// pairs) and -3 to +10% at 64 (five of eight ahead), at less CPU a write
// (BENCHMARKS.md, issue 17). A lone writer never waits: its batches
// average one request. Nor does a replica: its batches commit in an etcd
// round trip, not a local sync, and the linger was measured on the local
// journal only.
const (
	lingerAbove = 4
	lingerUpTo  = 4
	lingerFor   = 100 * time.Microsecond
)

// lingers says whether a batch of n requests waits for company (see
// lingerFor).
func (w *Writer) lingers(n int) bool {
	return n == 1 && w.replica == nil && w.avgBatch > lingerAbove
}

// take adds queued requests to *batch until it holds upTo: those queued
// already when until is nil, else those that come before until fires. It
// stops at a request that must run alone, and returns it.
func (w *Writer) take(batch *[]revisionRequest, upTo int, until <-chan time.Time) *aloneRequest {
	for len(*batch) < upTo {
		var r request
		var ok bool
		if until == nil {
			select {
			case r, ok = <-w.queue:
			default:
				return nil
			}
		} else {
			select {
			case r, ok = <-w.queue:
			case <-until:
				return nil
			}
		}
		if !ok {
			return nil
		}
		rr, isRev := r.(revisionRequest)
		if !isRev {
			return r.(*aloneRequest)
		}
		*batch = append(*batch, rr)
	}
	return nil
}

// next waits for the next request. Meanwhile it settles a Deferred log
// when the writer is idle or a reader asks for it (AwaitSettled).
func (w *Writer) next(idle *time.Timer) (request, bool) {
	for {
		select {
		case <-w.nudge:
			w.settle()
			continue
		default:
		}
		if w.deferred == nil || w.deferred.Unsettled().IsZero() {
			select {
			case req, ok := <-w.queue:
				return req, ok
			case <-w.nudge:
				w.settle()
			}
			continue
		}
		idle.Reset(w.idleSettle)
		select {
		case req, ok := <-w.queue:
			idle.Stop()
			return req, ok
		case <-idle.C:
			w.settle()
		case <-w.nudge:
			idle.Stop()
			w.settle()
		}
	}
}

// settle settles a Deferred log and wakes the readers that wait for it.
func (w *Writer) settle() {
	if w.deferred == nil {
		return
	}
	err := w.deferred.Settle(context.Background())
	if err != nil {
		w.logger.Error("audit: the database could not take the journaled batches; it will try again", "err", err)
	}
	w.settledMu.Lock()
	w.settledErr = err
	close(w.settledCh)
	w.settledCh = make(chan struct{})
	w.settledMu.Unlock()
}

// AwaitSettled waits until the database holds revision rev, a durable
// one: at once with a Log that is not Deferred; with a Deferred one, it
// has the writer settle (between two batches) and waits for that. A
// Settle that ends after the call began holds every revision durable
// before it (the writer makes batches durable and settles them in turn).
// It fails when ctx ends, the writer stops first, or the database cannot
// take the journaled batches.
func (w *Writer) AwaitSettled(ctx context.Context, rev int64) error {
	if w.deferred == nil || w.deferred.Settled() >= rev {
		return nil
	}
	w.settledMu.Lock()
	ch := w.settledCh
	w.settledMu.Unlock()
	select {
	case w.nudge <- struct{}{}:
	default:
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.stopped:
		return record.ErrClosed
	}
	w.settledMu.Lock()
	err := w.settledErr
	w.settledMu.Unlock()
	if err != nil && w.deferred.Settled() < rev {
		return err
	}
	return nil
}

// runAlone runs a request's work alone, between batches of commits, with
// a Deferred log settled first: the work may use the database's
// connection, or read what the batches wrote.
func (w *Writer) runAlone(req *aloneRequest) {
	w.settle()
	if err := req.ctx.Err(); err != nil {
		req.done <- result{err: err}
		return
	}
	req.done <- result{err: req.fn(context.WithoutCancel(req.ctx))}
}

// maxAttempts bounds how many times the writer decides a batch that a
// replicated Log keeps refusing because another replica committed first
// (ErrHeadMoved), catching up between attempts. Replicas that write at
// once each win a race about as often (a lost race brings the records
// that won it back in the same round trip): with three, a batch loses 64
// in a row once in 10^11 — as long as their rounds do not fall into step.
// They can: a replica with writes queued commits its next batch while the
// loser catches up, every round, and a CI run saw a batch lose 64 times in
// a row. So from the second loss on, the loser waits a random while before
// it catches up (lostRaceWait), which breaks the step.
const maxAttempts = 64

// lostRaceWait is how long the writer waits before it catches up after its
// batch lost the log's head for the n-th time in a row: nothing after the
// first, then a random while below 1 ms·2^(n-2), at most 32 ms.
func lostRaceWait(n int) time.Duration {
	if n < 2 {
		return 0
	}
	return rand.N(min(time.Millisecond<<min(n-2, 5), 32*time.Millisecond))
}

// commitBatch decides a batch's revisions and has the Log make them
// durable. Then, and only then, it advances: the chain's head, the
// in-memory state and revision (readers see the revisions), the hooks
// (watchers hear of them), and last the callers (acknowledged = durable).
// A request refused while deciding fails alone; a batch the Log cannot
// make durable fails whole, and nothing advances. A batch that a
// replicated Log refuses because another replica committed first is
// decided again once the writer has applied what it missed: the requests
// whose context ended meanwhile fail with its error, the others go on.
func (w *Writer) commitBatch(batch []revisionRequest) {
	ctx := context.Background()
	if w.diverged != nil { // a replica that met a log it cannot follow
		w.failAll(batch, w.diverged)
		return
	}
	for attempt := 1; ; attempt++ {
		// Before Begin: allowing a write again reads the server's
		// tokens, whose changes take the database's connection that
		// Begin holds.
		epoch, fenceTokens := w.reauthorize(&batch)
		if len(batch) == 0 {
			return
		}
		results, committed, rev, err := w.tryBatch(ctx, batch, epoch, fenceTokens)
		var fenced *FenceError
		if errors.As(err, &fenced) {
			// Nothing was durable: those whose fence fell fail, the
			// others are decided again (without a catch-up: the head
			// did not move).
			if rest := w.failFenced(batch, fenced); len(rest) < len(batch) {
				if batch = rest; len(batch) == 0 {
					return
				}
				continue
			}
		}
		var moved *TokensMovedError
		if errors.As(err, &moved) {
			// Nothing was durable: the writes are allowed again on the
			// newest tokens before the batch is decided again.
			if attempt == maxAttempts {
				err = fmt.Errorf("%w (%d attempts)", err, attempt)
			} else if err = w.refreshTokens(ctx, moved.Epoch); err == nil {
				if !moved.HeadMoved {
					continue
				}
				err = ErrHeadMoved
			}
		}
		if errors.Is(err, ErrHeadMoved) && w.replica != nil {
			if attempt == maxAttempts {
				err = fmt.Errorf("%w: %w (%d attempts)", record.ErrContended, err, attempt)
			} else {
				time.Sleep(lostRaceWait(attempt))
				if err = w.catchUp(ctx); err == nil {
					continue
				}
			}
		}
		if err != nil {
			w.failAll(batch, err)
			return
		}
		w.advance(committed, rev)
		for i, req := range batch {
			req.base().done <- results[i]
		}
		return
	}
}

// tryBatch decides the batch on a batch of the Log and commits it, with
// the token epoch compared when fenceTokens. It returns each request's
// result, the revisions committed (plain) and the newest revision, or the
// error that fails the whole batch.
func (w *Writer) tryBatch(ctx context.Context, batch []revisionRequest, epoch int64, fenceTokens bool) ([]result, []record.Revision, int64, error) {
	results := make([]result, len(batch))
	b, err := w.log.Begin(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	if fenceTokens {
		tf, ok := b.(TokenFencer)
		if !ok {
			b.Abort()
			return nil, nil, 0, fmt.Errorf("audit: a replicated log whose batches do not check the token epoch")
		}
		tf.FenceTokens(epoch)
	}
	rev := w.d.cur.Rev()
	w.d.begin()
	committed := make([]record.Revision, 0, len(batch)) // once, not grown: a revision is 200 bytes
	for i, req := range batch {
		if err := req.base().ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		if w.d.readsDB(req) {
			if err := b.Flush(ctx); err != nil {
				b.Abort()
				return nil, nil, 0, err
			}
		}
		fence := fenceOf(req)
		fb, fences := b.(Fencer)
		if !fence.IsZero() && !fences {
			results[i].err = fmt.Errorf("audit: %w: this log checks no fence (%v)", record.ErrBadRequest, fence)
			continue
		}
		r, err := req.decide(ctx, &w.d, b, rev)
		if err != nil {
			results[i].err = err
			continue
		}
		if !fence.IsZero() {
			fb.Fence(fence)
		}
		// The caller gets r with its secrets withheld; the hooks and the
		// in-memory state get the plain values.
		results[i].rev, err = w.keys.WithholdRevision(r)
		if err != nil {
			results[i] = result{err: err}
		}
		if len(r.Changes) > 0 || len(r.LayerChanges) > 0 {
			rev = r.Rev
			committed = append(committed, r)
		}
	}
	if w.checkBatch != nil {
		if err := w.check(ctx, b); err != nil {
			b.Abort()
			return nil, nil, 0, err
		}
	}
	if err := b.Commit(ctx); err != nil {
		return nil, nil, 0, err
	}
	return results, committed, rev, nil
}

// advance makes durable revisions visible, in this order: the chain's
// head, the in-memory state and revision, the hooks.
func (w *Writer) advance(committed []record.Revision, rev int64) {
	w.d.head.Advance()
	w.d.cur.Advance(committed, rev)
	for _, r := range committed {
		for _, fn := range w.onCommit {
			fn(r)
		}
	}
}

// check flushes the batch and runs Config.CheckBatch on it.
func (w *Writer) check(ctx context.Context, b Batch) error {
	if err := b.Flush(ctx); err != nil {
		return err
	}
	v := BatchView{Batch: b, State: w.d.head.State(), Layered: w.d.layered, Layers: w.d.layers.Names(), Keys: w.keys}
	if w.d.mirror {
		v.Overlay = w.d.overlay
	}
	return w.checkBatch(ctx, v)
}

// errTokensBehind refuses a write whose token the writer cannot allow
// again on the cluster's newest tokens: the replica's copy of them, or
// whoever allows writes by them, stayed behind (etcd, or a reload,
// failed).
var errTokensBehind = fmt.Errorf("%w: this replica could not bring its copy of the tokens up to the cluster's to check the write's token again; try again", record.ErrStoreUnavailable)

// reauthorize makes the writes of *batch that tokens allowed stand on one
// token epoch, the newest the writer knows, which the batch's commit then
// compares in the shared log: a write allowed at an older epoch is
// allowed again (Authorization.Reauthorize) on the newest rights, and one
// no longer allowed fails with its refusal and leaves *batch, the others
// kept in order. It returns the epoch, and whether a write of the batch
// needs it compared (none: no write of the batch was allowed by a token,
// or the log is not replicated).
func (w *Writer) reauthorize(batch *[]revisionRequest) (int64, bool) {
	epoch, any := w.tokenEpoch, false
	for _, req := range *batch {
		if t := req.base(); t.auth != nil {
			epoch, any = max(epoch, t.epoch), true
		}
	}
	if !any {
		return 0, false
	}
	for again := true; again; {
		again, any = false, false
		rest := (*batch)[:0:0]
		for _, req := range *batch {
			t := req.base()
			if t.auth != nil && t.epoch != epoch {
				e, err := t.auth.Reauthorize(req.targets())
				if err == nil && e < epoch {
					err = errTokensBehind
				}
				if err != nil {
					t.done <- result{err: err}
					continue
				}
				if e > epoch { // the rights moved on meanwhile: every write again
					epoch, again = e, true
				}
				t.epoch = e
			}
			any = any || t.auth != nil
			rest = append(rest, req)
		}
		*batch = rest
	}
	w.tokenEpoch = epoch
	return epoch, any
}

// refreshTokens brings the replica's copy of the tokens up to the
// cluster's after a batch was refused because the token epoch moved to
// epoch (etcd's answer); the next attempt allows its writes again.
func (w *Writer) refreshTokens(ctx context.Context, epoch int64) error {
	if w.refresh == nil {
		return fmt.Errorf("audit: the tokens changed, and this replica has no way to read them again")
	}
	got, err := w.refresh(ctx)
	if err != nil {
		return err
	}
	w.tokenEpoch = max(w.tokenEpoch, got, epoch)
	return nil
}

// fenceOf returns the fence req carries, if any.
func fenceOf(req revisionRequest) record.Fence {
	if sr, ok := req.(*sourceRequest); ok {
		return sr.fence
	}
	return record.Fence{}
}

// failFenced fails the requests of batch whose fence fe names and returns
// the others, in order.
func (w *Writer) failFenced(batch []revisionRequest, fe *FenceError) []revisionRequest {
	rest := batch[:0:0]
	for _, req := range batch {
		if f := fenceOf(req); !f.IsZero() && slices.Contains(fe.Fences, f) {
			w.logger.Warn("audit: a fenced write was not recorded: its fence is gone", "fence", f.String())
			req.base().done <- result{err: fmt.Errorf("audit: %w: %v is gone", record.ErrFenced, f)}
			continue
		}
		rest = append(rest, req)
	}
	return rest
}

func (w *Writer) failAll(batch []revisionRequest, err error) {
	if errors.Is(err, record.ErrDiskFull) {
		w.diskFull.Add(1)
	}
	w.logger.Error("audit: commit failed", "err", err, "requests", len(batch))
	for _, req := range batch {
		req.base().done <- result{err: err}
	}
}
