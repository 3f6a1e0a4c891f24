// Package watcher is configd's watch hub: it receives every committed
// revision from the store, in order, and fans it out to watchers subscribed
// to keys and prefixes. A watcher can start from any revision it has
// applied (since): the hub replays what it missed from memory, or from the
// store when it is older than the in-memory window, or sends a snapshot of
// its scope when since is 0.
//
// The hub never blocks a commit on a watcher: each watcher has a bounded
// queue, and one that falls too far behind is cut off with a Resync batch
// telling it to come back with its since.
//
// Watchers of one scope (the same keys and prefixes) share what they are
// sent: a revision's batch is built once per scope, and a snapshot is read
// once per scope and revision however many watchers ask for it at once
// (share.go); transports encode a shared batch once (Batch.Encoded).
package watcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/rollout"
)

// Kind says what a Batch carries.
type Kind uint8

// The kinds of batch.
const (
	// KindChanges carries the changes of one revision within the scope.
	KindChanges Kind = iota + 1
	// KindSnapshot carries every live key of the scope at Rev; the watcher
	// replaces its copy of the scope with it.
	KindSnapshot
	// KindResync says the watcher fell behind and was cut off; it must
	// watch again from the last revision it applied.
	KindResync
)

func (k Kind) String() string {
	switch k {
	case KindChanges:
		return "changes"
	case KindSnapshot:
		return "snapshot"
	case KindResync:
		return "resync"
	}
	return "unknown"
}

// Event is what happened to one key.
type Event struct {
	Key         string
	Type        audit.OpType
	Value       []byte
	ContentType string
	CreateRev   int64
	ModRev      int64
	Version     int64
	// Secret: the key is secret (audit.KeyValue.Secret); Value is its
	// plaintext, for connections that may carry it.
	Secret bool
}

// SecretKey returns the first key of b whose value is secret, if any.
func (b Batch) SecretKey() (string, bool) {
	for _, e := range b.Events {
		if e.Secret && e.Type == audit.OpPut {
			return e.Key, true
		}
	}
	return "", false
}

// Batch is one message to a watcher. Every batch brings the watcher to
// revision Rev. The hub may hand the same batch to many watchers: its
// Events are shared and must not be modified.
type Batch struct {
	Kind   Kind
	Rev    int64
	Actor  string
	Origin string
	// Time is when the revision was committed (zero for snapshots).
	Time   time.Time
	Events []Event

	shared *encodings // nil: this batch is one watcher's own
}

// Filter selects keys: exact keys and prefixes (in any form keyspace.Prefix
// accepts). An empty Filter selects nothing.
type Filter struct {
	Keys     []string
	Prefixes []string
}

// normalize validates f and returns it with canonical prefixes, and its
// scope: a name that two filters share exactly when they select the same
// keys in the same order.
func (f Filter) normalize() (Filter, string, error) {
	var out Filter
	for _, k := range f.Keys {
		if err := keyspace.Validate(k); err != nil {
			return Filter{}, "", err
		}
		out.Keys = append(out.Keys, k)
	}
	for _, p := range f.Prefixes {
		cp, err := keyspace.Prefix(p)
		if err != nil {
			return Filter{}, "", err
		}
		out.Prefixes = append(out.Prefixes, cp)
	}
	if len(out.Keys) == 0 && len(out.Prefixes) == 0 {
		return Filter{}, "", fmt.Errorf("%w: watch needs at least one key or prefix", audit.ErrBadRequest)
	}
	return out, fmt.Sprintf("%q %q", out.Keys, out.Prefixes), nil
}

// Match reports whether key is selected by f (whose prefixes are canonical).
func (f Filter) Match(key string) bool {
	for _, k := range f.Keys {
		if k == key {
			return true
		}
	}
	for _, p := range f.Prefixes {
		if keyspace.InPrefix(key, p) {
			return true
		}
	}
	return false
}

// Store is what the hub reads to catch a watcher up. *audit.Store
// implements it.
type Store interface {
	Get(ctx context.Context, key string, opts ...audit.ReadOption) (audit.KeyValue, error)
	List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error)
	RevisionsAfter(ctx context.Context, since int64, limit int) ([]audit.Revision, error)
}

// Errors of Watch and Next.
var (
	// ErrClosed: the watcher or the hub was closed.
	ErrClosed = errors.New("watcher closed")
	// ErrResync: the watcher fell behind and was cut off after its Resync
	// batch; watch again from the last applied revision.
	ErrResync = errors.New("watcher fell behind; resync from the last applied revision")
)

// Option configures a Hub.
type Option func(*Hub)

// WithWindow sets how many recent revisions the hub keeps in memory for
// resuming watchers (default 10,000). Older ones come from the store.
func WithWindow(n int) Option { return func(h *Hub) { h.window = n } }

// WithQueueLimit sets how many batches may wait for a watcher before it is
// cut off with a Resync (default 1,024).
func WithQueueLimit(n int) Option { return func(h *Hub) { h.queueLimit = n } }

// WithResyncHook registers fn, called each time a watcher is cut off for
// falling behind (for a metric).
func WithResyncHook(fn func()) Option { return func(h *Hub) { h.onResync = fn } }

// WithSnapshotReads sets how many snapshots the hub reads from the store
// at once (default DefaultSnapshotReads); more wait their turn. n < 1
// means 1.
func WithSnapshotReads(n int) Option {
	return func(h *Hub) { h.snapReads = make(chan struct{}, max(n, 1)) }
}

// Hub fans revisions out to watchers. It is safe for concurrent use.
type Hub struct {
	st         Store
	window     int
	queueLimit int
	onResync   func()

	mu     sync.Mutex
	rev    atomic.Int64      // newest published revision; written under mu
	recent ring              // the newest revisions, at most window
	scopes map[string]*scope // the open watchers, by scope
	count  int               // open watchers
	closed bool
	// running are the rollouts running at rev, by id (rollouts.go).
	running map[int64]*rollout.Rollout

	snaps snapshots
	// snapReads holds a token for each snapshot being read from the store.
	snapReads chan struct{}
}

// scope is the open watchers of one scope.
type scope struct {
	filter   Filter
	watchers map[*Watcher]struct{}
}

// New returns a hub over st whose newest revision is rev (the store's
// current revision when the hub starts). Feed it with Publish, for example
// from audit.WithCommitHook.
func New(st Store, rev int64, opts ...Option) *Hub {
	h := &Hub{st: st, window: 10_000, queueLimit: 1024, scopes: map[string]*scope{},
		running: map[int64]*rollout.Rollout{}, snapReads: make(chan struct{}, DefaultSnapshotReads)}
	h.rev.Store(rev)
	for _, o := range opts {
		o(h)
	}
	return h
}

// add registers w; called with mu held.
func (h *Hub) add(w *Watcher) {
	sc := h.scopes[w.scope]
	if sc == nil {
		sc = &scope{filter: w.filter, watchers: map[*Watcher]struct{}{}}
		h.scopes[w.scope] = sc
	}
	sc.watchers[w] = struct{}{}
	h.count++
}

// remove unregisters w if it is registered; called with mu held.
func (h *Hub) remove(w *Watcher) {
	sc := h.scopes[w.scope]
	if sc == nil {
		return
	}
	if _, ok := sc.watchers[w]; !ok {
		return
	}
	delete(sc.watchers, w)
	h.count--
	if len(sc.watchers) == 0 {
		delete(h.scopes, w.scope)
	}
}

// Publish hands the hub a committed revision. Revisions must be published
// in order, each once; Publish never blocks on a watcher.
func (h *Hub) Publish(r audit.Revision) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || r.Rev <= h.rev.Load() {
		return
	}
	if h.window > 0 {
		h.recent.push(r, h.window)
	}
	if rs := rolloutsOf(r); rs != nil {
		h.track(rs)
		h.publishMoves(r, rs)
		h.rev.Store(r.Rev)
		return
	}
	for _, sc := range h.scopes {
		b, ok := batchFor(r, sc.filter)
		if !ok {
			continue
		}
		if len(sc.watchers) > 1 {
			b.shared = &encodings{} // one batch, and one encoding, for the scope
		}
		for w := range sc.watchers {
			w.push(b) // may remove w from sc.watchers, and sc from h.scopes
		}
	}
	// Last: whoever reads Rev without the lock then finds every batch up
	// to it queued (PROGRESS relies on it).
	h.rev.Store(r.Rev)
}

// publishMoves hands out r, which writes the records of the rollouts rs:
// each watcher gets the revision's changes in its scope and the moves of
// its client (rollouts.go). The scope's watchers that no rollout moves
// share one batch. Called with mu held.
func (h *Hub) publishMoves(r audit.Revision, rs []*rollout.Rollout) {
	for _, sc := range h.scopes {
		b, ok := batchFor(r, sc.filter)
		if ok && len(sc.watchers) > 1 {
			b.shared = &encodings{}
		}
		for w := range sc.watchers {
			if extra := moves(rs, w.id, sc.filter, r.Rev); len(extra) > 0 {
				w.push(Batch{Kind: KindChanges, Rev: r.Rev, Actor: r.Actor, Origin: r.Origin, Time: r.Time,
					Events: slices.Concat(b.Events, extra)})
			} else if ok {
				w.push(b)
			}
		}
	}
}

// Rev returns the newest revision the hub has published.
func (h *Hub) Rev() int64 { return h.rev.Load() }

// Len returns the number of open watchers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// Close closes every watcher; later Watch calls fail with ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	scopes := h.scopes
	h.scopes, h.count = map[string]*scope{}, 0
	h.mu.Unlock()
	for _, sc := range scopes {
		for w := range sc.watchers {
			w.finish(ErrClosed)
		}
	}
}

// batchFor returns the part of r that f selects.
func batchFor(r audit.Revision, f Filter) (Batch, bool) {
	var evs []Event
	for _, c := range r.Changes {
		if !f.Match(c.Key) {
			continue
		}
		evs = append(evs, eventOf(c))
	}
	if len(evs) == 0 {
		return Batch{}, false
	}
	return Batch{Kind: KindChanges, Rev: r.Rev, Actor: r.Actor, Origin: r.Origin, Time: r.Time, Events: evs}, true
}

func eventOf(c audit.Change) Event {
	e := Event{Key: c.Key, Type: c.Type}
	if c.New != nil {
		e.Value, e.ContentType = c.New.Value, c.New.ContentType
		e.CreateRev, e.ModRev, e.Version = c.New.CreateRev, c.New.ModRev, c.New.Version
		e.Secret = c.New.Secret
	}
	return e
}

// Watch starts a watcher on f that has applied revision since: it first
// receives what happened after since (or, for since 0, a snapshot of its
// scope), then every new revision that touches its scope, in order, each
// once. since newer than the hub's revision is audit.ErrFutureRevision.
func (h *Hub) Watch(ctx context.Context, f Filter, since int64, opts ...WatchOption) (*Watcher, error) {
	f, sc, err := f.normalize()
	if err != nil {
		return nil, err
	}
	if since < 0 {
		return nil, fmt.Errorf("%w: since %d (revisions start at 1)", audit.ErrRevisionGone, since)
	}
	w := &Watcher{hub: h, filter: f, scope: sc, limit: h.queueLimit, notify: make(chan struct{}, 1), done: make(chan struct{})}
	for _, o := range opts {
		o(w)
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	at := h.rev.Load()
	if since > at {
		h.mu.Unlock()
		return nil, fmt.Errorf("%w: since %d (current revision is %d)", audit.ErrFutureRevision, since, at)
	}
	// Register first, under the lock: every revision after at reaches the
	// queue, and catch-up covers (since, at].
	h.add(w)
	var fromMemory []Batch
	oldest := h.recent.oldest()
	inMemory := since > 0 && (since == at || oldest != nil && oldest.Rev <= since+1)
	if inMemory {
		for r := range h.recent.all() {
			if r.Rev > since {
				if b, ok := batchForWatcher(*r, rolloutsOf(*r), f, w); ok {
					fromMemory = append(fromMemory, b)
				}
			}
		}
	}
	steps := h.inStep(f, w.id)
	h.mu.Unlock()

	var catchUp []Batch
	switch {
	case inMemory:
		catchUp = fromMemory
	case since == 0:
		snap, err := h.snapshot(ctx, f, sc, at)
		if err != nil {
			w.Close()
			return nil, err
		}
		catchUp = []Batch{overlay(snap, steps, f)}
	default:
		catchUp, err = replay(ctx, h.st, f, w, since, at)
		if errors.Is(err, audit.ErrRevisionGone) {
			// since is below the store's history horizon (compacted
			// away): beyond retention, a snapshot of the scope at at.
			var snap Batch
			snap, err = h.snapshot(ctx, f, sc, at)
			catchUp = []Batch{overlay(snap, steps, f)}
		}
		if err != nil {
			w.Close()
			return nil, err
		}
	}
	w.mu.Lock()
	w.queue = append(catchUp, w.queue...)
	w.mu.Unlock()
	w.signal()
	return w, nil
}

// readScope reads the live keys of f's scope at revision at (not 0).
func readScope(ctx context.Context, st Store, f Filter, at int64) ([]Event, error) {
	var events []Event
	seen := map[string]bool{}
	add := func(kv audit.KeyValue) {
		if seen[kv.Key] {
			return
		}
		seen[kv.Key] = true
		events = append(events, Event{Key: kv.Key, Type: audit.OpPut, Value: kv.Value, ContentType: kv.ContentType, Secret: kv.Secret,
			CreateRev: kv.CreateRev, ModRev: kv.ModRev, Version: kv.Version})
	}
	for _, p := range f.Prefixes {
		kvs, _, err := st.List(ctx, p, audit.AtRev(at))
		if err != nil {
			return nil, fmt.Errorf("watch: snapshot of %q: %w", p, err)
		}
		for _, kv := range kvs {
			add(kv)
		}
	}
	for _, k := range f.Keys {
		kv, err := st.Get(ctx, k, audit.AtRev(at))
		if errors.Is(err, audit.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("watch: snapshot of %q: %w", k, err)
		}
		add(kv)
	}
	return events, nil
}

// replay reads the revisions (since, at] from the store. A since below
// the store's history horizon is an error wrapping audit.ErrRevisionGone.
func replay(ctx context.Context, st Store, f Filter, w *Watcher, since, at int64) ([]Batch, error) {
	var out []Batch
	for since < at {
		revs, err := st.RevisionsAfter(ctx, since, 1000)
		if err != nil {
			return nil, fmt.Errorf("watch: replay after %d: %w", since, err)
		}
		if len(revs) == 0 {
			break
		}
		for _, r := range revs {
			if r.Rev > at {
				return out, nil
			}
			if b, ok := batchForWatcher(r, rolloutsOf(r), f, w); ok {
				out = append(out, b)
			}
			since = r.Rev
		}
	}
	return out, nil
}

// WatchOption configures one watcher.
type WatchOption func(*Watcher)

// WithNotify makes the watcher signal ch (without blocking) whenever a batch
// is queued or it ends, in addition to its own signal. Many watchers can
// share one channel, so that one goroutine serves them all with TryNext.
func WithNotify(ch chan struct{}) WatchOption { return func(w *Watcher) { w.shared = ch } }

// WithCallback makes the watcher call fn whenever a batch is queued or it
// ends, instead of needing a goroutine parked in Next. fn runs with the
// hub's lock held: it must return at once and must not call the hub or the
// watcher (start a goroutine that calls TryNext, for example).
func WithCallback(fn func()) WatchOption { return func(w *Watcher) { w.callback = fn } }

// Watcher receives batches for one Filter. Next is meant for one goroutine;
// Close may be called from any.
type Watcher struct {
	hub      *Hub
	filter   Filter
	scope    string
	limit    int
	notify   chan struct{}
	shared   chan struct{}    // optional, see WithNotify
	callback func()           // optional, see WithCallback
	id       rollout.Identity // optional, see WithIdentity
	done     chan struct{}

	mu     sync.Mutex
	queue  []Batch
	err    error // set once the watcher ends
	closed bool  // done is closed
}

func (w *Watcher) signal() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
	if w.shared != nil {
		select {
		case w.shared <- struct{}{}:
		default:
		}
	}
	if w.callback != nil {
		w.callback()
	}
}

// Pending reports whether TryNext has something to return now: a queued
// batch, or the reason the watcher ended.
func (w *Watcher) Pending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) > 0 || w.err != nil
}

// TryNext returns the next queued batch without waiting: ok is false when
// none is queued. Once the watcher has ended and its queue is drained it
// returns the reason (ErrResync, ErrClosed).
func (w *Watcher) TryNext() (b Batch, ok bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) > 0 {
		b = w.queue[0]
		w.queue[0] = Batch{}
		w.queue = w.queue[1:]
		return b, true, nil
	}
	return Batch{}, false, w.err
}

// push queues b; called by the hub with its lock held. It never blocks.
func (w *Watcher) push(b Batch) {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return
	}
	if len(w.queue) >= w.limit {
		// Too far behind: drop what is queued and tell the watcher to
		// come back from the last revision it applied.
		w.queue = []Batch{{Kind: KindResync, Rev: b.Rev}}
		w.err = ErrResync
		w.mu.Unlock()
		w.hub.remove(w)
		if w.hub.onResync != nil {
			w.hub.onResync()
		}
		w.signal()
		return
	}
	w.queue = append(w.queue, b)
	w.mu.Unlock()
	w.signal()
}

// Next returns the next batch, waiting for one. After a KindResync batch,
// and after Close, it returns an error (ErrResync, ErrClosed).
func (w *Watcher) Next(ctx context.Context) (Batch, error) {
	for {
		b, ok, err := w.TryNext()
		if ok {
			return b, nil
		}
		if err != nil {
			return Batch{}, err
		}
		select {
		case <-w.notify:
		case <-w.done:
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		}
	}
}

// Close stops the watcher and releases it from the hub.
func (w *Watcher) Close() {
	w.hub.mu.Lock()
	w.hub.remove(w)
	w.hub.mu.Unlock()
	w.finish(ErrClosed)
}

func (w *Watcher) finish(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
		w.queue = nil
	}
	if !w.closed {
		w.closed = true
		close(w.done)
	}
	w.mu.Unlock()
	w.signal()
}
