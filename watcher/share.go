package watcher

import (
	"context"
	"runtime"
	"sync"
	"weak"
)

// What watchers share. Two thousand watchers of a 3 MB scope that start at
// once with since 0 would otherwise each read their own copy of the scope
// from the store and each encode their own snapshot message: gigabytes of
// garbage for one scope. Instead:
//
//   - a revision's batch is built once per scope (Publish), and a snapshot
//     is read once per scope and revision (Hub.snapshot): every watcher
//     that asks while another read of it is under way, or while any
//     watcher still holds the result, gets the same batch;
//   - a shared batch carries its encodings (Batch.Encoded), so a transport
//     encodes it once, however many watchers it goes to;
//   - at most DefaultSnapshotReads snapshots (WithSnapshotReads) are read
//     at once: a stampede on many scopes queues instead of allocating.
//
// Nothing is cached beyond its use: a snapshot is forgotten when the last
// batch holding it is dropped (a weak pointer), so the hub keeps no scope's
// data for watchers that are gone.

// DefaultSnapshotReads is how many snapshots the hub reads from the store
// at once, unless WithSnapshotReads says otherwise.
const DefaultSnapshotReads = 4

// encodings are the encodings of one batch handed to many watchers.
type encodings struct {
	m sync.Map // key → *encoding, see Batch.Encoded
}

type encoding struct {
	once  sync.Once
	bytes []byte
}

// Encoded returns encode(b), calling encode once for every watcher that
// was handed this same batch (the hub hands one batch of a revision to all
// the watchers of a scope, and one snapshot to all those of a scope that
// start at the same revision), and for each call on a batch of one
// watcher's own. key tells one encoding from another, as a context key
// does: use an unexported type of your own. The result is shared: do not
// modify it. encode must not call Encoded on b with the same key.
func (b Batch) Encoded(key any, encode func(Batch) []byte) []byte {
	if b.shared == nil {
		return encode(b)
	}
	v, ok := b.shared.m.Load(key)
	if !ok {
		v, _ = b.shared.m.LoadOrStore(key, &encoding{})
	}
	e := v.(*encoding)
	e.once.Do(func() { e.bytes = encode(b) })
	return e.bytes
}

// snapshots are the snapshots being read or still held, by scope and
// revision.
type snapshots struct {
	mu sync.Mutex
	m  map[snapshotKey]*snapshotRead
}

type snapshotKey struct {
	scope string
	rev   int64
}

// snapshotRead is one read of a scope at a revision.
type snapshotRead struct {
	done chan struct{} // closed when the read ends

	// Under snapshots.mu:
	waiters int                        // Watch calls waiting for it or taking its result
	ended   bool                       // done is closed
	cancel  func()                     // abandons the read
	result  *snapshotData              // held while waiters take it
	held    weak.Pointer[snapshotData] // the result, while any batch holds it
	err     error
}

// snapshotData is a snapshot's events and the encodings of the batches
// that carry them.
type snapshotData struct {
	encodings
	events []Event
}

func (d *snapshotData) batch(rev int64) Batch {
	return Batch{Kind: KindSnapshot, Rev: rev, Events: d.events, shared: &d.encodings}
}

// snapshot returns f's scope (named sc) at revision at, reading it from
// the store unless a read of it is under way or its result is still held.
func (h *Hub) snapshot(ctx context.Context, f Filter, sc string, at int64) (Batch, error) {
	if at == 0 {
		return Batch{Kind: KindSnapshot}, nil
	}
	key := snapshotKey{sc, at}
	s := &h.snaps
	s.mu.Lock()
	r := s.m[key]
	if r != nil && r.ended {
		if d := r.held.Value(); d != nil {
			s.mu.Unlock()
			return d.batch(at), nil
		}
		r = nil // failed, or no longer held by anyone: read it again
	}
	if r == nil {
		// The read is the waiters', not the first one's: it goes on when
		// that one gives up, and ends when all of them have.
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r = &snapshotRead{done: make(chan struct{}), cancel: cancel}
		if s.m == nil {
			s.m = map[snapshotKey]*snapshotRead{}
		}
		s.m[key] = r
		go h.read(rctx, key, f, r)
	}
	r.waiters++
	s.mu.Unlock()

	select {
	case <-r.done:
	case <-ctx.Done():
		s.leave(key, r)
		return Batch{}, ctx.Err()
	}
	s.mu.Lock()
	d, err := r.result, r.err
	s.mu.Unlock()
	s.leave(key, r)
	if err != nil {
		return Batch{}, err
	}
	return d.batch(at), nil
}

// leave ends one waiter's interest in r: when none is left, an unfinished
// read is abandoned and a finished one's result is only held weakly.
func (s *snapshots) leave(key snapshotKey, r *snapshotRead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.waiters--
	if r.waiters > 0 {
		return
	}
	r.result = nil
	if !r.ended {
		r.cancel()
		if s.m[key] == r {
			delete(s.m, key)
		}
	}
}

// read reads a snapshot, waiting for its turn among the snapshot reads.
func (h *Hub) read(ctx context.Context, key snapshotKey, f Filter, r *snapshotRead) {
	defer r.cancel()
	var events []Event
	var err error
	select {
	case h.snapReads <- struct{}{}:
		events, err = readScope(ctx, h.st, f, key.rev)
		<-h.snapReads
	case <-ctx.Done():
		err = ctx.Err()
	}
	s := &h.snaps
	s.mu.Lock()
	r.ended = true
	if err != nil {
		r.err = err
		if s.m[key] == r {
			delete(s.m, key) // a failed read is not reused
		}
	} else {
		d := &snapshotData{events: events}
		r.held = weak.Make(d)
		if r.waiters > 0 {
			r.result = d
		}
		runtime.AddCleanup(d, s.forget, key)
	}
	s.mu.Unlock()
	close(r.done)
}

// forget removes the entry of a snapshot that no batch holds any more.
func (s *snapshots) forget(key snapshotKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.m[key]; r != nil && r.ended && r.held.Value() == nil {
		delete(s.m, key)
	}
}
