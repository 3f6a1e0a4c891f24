package config

import (
	"fmt"
	"strings"
	"sync"

	"github.com/configd/configd/keyspace"
)

// Update is one change to a watched key or prefix: the changes of one
// revision of configd's store within the watched path (a commit that
// changed several keys is one Update), or, after the client took a fresh
// snapshot (for example after configd lost its history), every key whose
// value the snapshot changed.
type Update struct {
	// Rev is the revision the update brings the path to.
	Rev int64
	// Actor and Origin say who made the change and where it came from
	// ("api", "source:<name>"); both are empty for a snapshot.
	Actor, Origin string
	// Changes are the keys that changed, in the order configd sent them
	// (key order for a snapshot). Keys are relative to the client's prefix.
	Changes []Change
	// Value is the watched path's value at Rev.
	Value Value
}

// Change is what happened to one key.
type Change struct {
	// Key is the key, relative to the client's prefix.
	Key string
	// Deleted reports that the key was deleted; Value then does not exist.
	Deleted bool
	// Value is the key's new value.
	Value Value
}

// Watcher receives the changes of one key or prefix, each once, in
// revision order. Make it with Client.Watch; Stop it when done. Its
// methods are safe for concurrent use.
//
// Updates wait in the Watcher's queue until Next or NextUpdate takes them,
// so none is lost or merged with another; a Watcher that is never read
// keeps every update until it is stopped.
type Watcher struct {
	c     *Client
	path  string   // relative to the client's prefix; "" is its whole scope
	under string   // path + "/", or "" for the whole scope
	segs  []string // path for lookup
	wake  chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	queue []Update
	err   error // ErrStopped or ErrClosed once ended
}

// watchPath joins path into one relative path and checks it.
func watchPath(path []string) (string, error) {
	var segs []string
	for _, p := range path {
		for seg := range strings.SplitSeq(p, "/") {
			if seg != "" {
				segs = append(segs, seg)
			}
		}
	}
	joined := strings.Join(segs, "/")
	if joined == "" {
		return "", nil
	}
	if err := keyspace.Validate(joined); err != nil {
		return "", fmt.Errorf("config: Watch: %w", err)
	}
	return joined, nil
}

// Watch returns a Watcher of the key or prefix at path (segments as for
// Get; no path watches every key of the client). Its first update is the
// first change after Watch returns. Every Watcher of a client shares the
// client's one stream to configd, which carries the client's scope
// (WithPrefix, WithKeys) and nothing more: to watch a key or a prefix with
// a token that may read only that, give the client that scope. A Watcher
// costs no goroutine. Once configd has refused the client, Watch returns
// the client's Err.
func (c *Client) Watch(path ...string) (*Watcher, error) {
	p, err := watchPath(path)
	if err != nil {
		return nil, err
	}
	w := &Watcher{c: c, path: p, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if p != "" {
		w.under = p + "/"
		w.segs = []string{p}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.halted != nil:
		return nil, c.halted
	case c.closed:
		return nil, ErrClosed
	}
	c.watchers[w] = struct{}{}
	return w, nil
}

// matches reports whether the watched path covers key.
func (w *Watcher) matches(key string) bool {
	return w.path == "" || key == w.path || strings.HasPrefix(key, w.under)
}

// push queues u; called with the client's lock held. It never blocks.
func (w *Watcher) push(u Update) {
	w.mu.Lock()
	if w.err == nil {
		w.queue = append(w.queue, u)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Next waits for the next change of the watched path and returns the
// path's value after it. Each change is returned once, in order, even when
// several happened since the last call. After Stop it returns ErrStopped,
// after the client's Close ErrClosed, and after configd refused the
// client's token the client's Err (wrapping ErrUnauthenticated or
// ErrForbidden); a failure configd or the network may recover from is
// retried by the client and never ends a Watcher.
func (w *Watcher) Next() (Value, error) {
	u, err := w.NextUpdate()
	return u.Value, err
}

// NextUpdate is Next with the details of the change: its revision, who
// made it, and the keys it changed.
func (w *Watcher) NextUpdate() (Update, error) {
	for {
		w.mu.Lock()
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return Update{}, err
		}
		if len(w.queue) > 0 {
			u := w.queue[0]
			w.queue[0] = Update{}
			w.queue = w.queue[1:]
			if len(w.queue) > 0 {
				// Another goroutine may be waiting for the rest.
				select {
				case w.wake <- struct{}{}:
				default:
				}
			}
			w.mu.Unlock()
			return u, nil
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-w.done:
		}
	}
}

// Stop ends the Watcher: updates not yet taken are dropped, and Next,
// including a call blocked in another goroutine, returns ErrStopped. Stop
// may be called more than once.
func (w *Watcher) Stop() {
	w.c.mu.Lock()
	delete(w.c.watchers, w)
	w.c.mu.Unlock()
	w.end(ErrStopped)
}

func (w *Watcher) end(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		w.queue = nil
		close(w.done)
	}
}
