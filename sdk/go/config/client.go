package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/configd/configd/api"
)

// Client keeps a copy of configd's configuration (or of one prefix of it)
// current through one watch stream, and answers Get from that copy without
// a network call. Make it with New and Close it when done. It is safe for
// concurrent use.
type Client struct {
	opts options
	log  *slog.Logger

	state atomic.Pointer[state]

	// mu serializes changes of the copy with watcher registration, so that
	// a Watcher gets exactly the changes published after Watch.
	mu       sync.Mutex
	watchers map[*Watcher]struct{}
	gen      uint64 // the last builder generation, see builder
	closed   bool
	synced   bool // a snapshot from configd has been applied
	failed   map[string]bool
	lastErr  error // of the last failed connection, for New's error
	halted   error // the refusal that stopped the stream, see halt

	validators map[string]func(Value) error // by relative key, see Validate
	rejected   map[string]api.ClientRejection
	wake       chan struct{} // the reporter's, see dirty
	reported   chan struct{} // closed when the reporter has returned

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream goroutine has returned

	// watched is the address of the configd whose watch was last created:
	// where writes go (write.go).
	watched atomic.Pointer[string]
	wmu     sync.Mutex
	wconns  map[string]*grpc.ClientConn // the writes' connections, by address

	ready       chan struct{} // closed when synced
	unreachable chan struct{} // closed when every address failed before ready
	stopped     chan struct{} // closed by halt
	once        struct{ ready, unreachable sync.Once }
}

// New returns a Client of the configd named by WithAddress (or
// CONFIGD_ADDR, or DefaultAddress), once it holds the configuration: when
// configd has sent it, or, if configd can't be reached, when the snapshot
// file (WithSnapshot) has been loaded; the client then catches up in the
// background as soon as configd answers.
//
// New fails when no configd answers within the timeout (WithTimeout,
// default 5 s) and there is no usable snapshot file: the error wraps
// ErrUnavailable and names the addresses, and also wraps ErrBadSnapshot
// when a file was there but refused (corrupt, or written for another
// prefix). A refused file does not stop New when configd is reachable: it is
// logged and replaced. New fails at once, whatever the snapshot file holds,
// when configd refuses the client's token (an error wrapping
// ErrUnauthenticated or ErrForbidden, see Client.Err). ctx bounds New only;
// the Client lives until Close.
func New(ctx context.Context, opts ...Option) (*Client, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	c := newClient(o)
	if err := c.start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func newClient(o options) *Client {
	c := &Client{
		opts:        o,
		log:         o.logger.With("component", "configd-sdk"),
		watchers:    map[*Watcher]struct{}{},
		failed:      map[string]bool{},
		done:        make(chan struct{}),
		ready:       make(chan struct{}),
		unreachable: make(chan struct{}),
		stopped:     make(chan struct{}),
		wake:        make(chan struct{}, 1),
		reported:    make(chan struct{}),
	}
	c.state.Store(newState(0, &node{}))
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// start runs the stream and waits for the first copy (see New). On error
// the stream keeps running: the caller closes the client, or keeps it to
// catch up later (the default client).
func (c *Client) start(ctx context.Context) error {
	var file *snapshotBody
	var fileErr error
	if c.opts.snapshot != "" {
		body, err := readSnapshotFile(c.opts.snapshot, c.opts.prefix, c.opts.keys)
		switch {
		case err == nil:
			file = &body
		case !errors.Is(err, os.ErrNotExist):
			fileErr = err
		}
	}
	go c.run()
	go c.report()

	timer := time.NewTimer(c.opts.timeout)
	defer timer.Stop()
	unreachable := c.unreachable
	for {
		select {
		case <-c.ready:
			if fileErr != nil {
				c.log.Warn("ignoring the snapshot file; it will be replaced", "err", fileErr)
			}
			return nil
		case <-c.stopped:
			return c.Err()
		case <-unreachable:
			if file != nil {
				c.loadFile(*file)
				return nil
			}
			unreachable = nil // keep trying until the timeout
		case <-timer.C:
			if file != nil {
				c.loadFile(*file)
				return nil
			}
			return c.startError(fmt.Errorf("no answer within %v", c.opts.timeout), fileErr)
		case <-ctx.Done():
			return c.startError(ctx.Err(), fileErr)
		}
	}
}

func (c *Client) startError(why, fileErr error) error {
	c.mu.Lock()
	last := c.lastErr
	c.mu.Unlock()
	err := fmt.Errorf("%w: cannot reach configd at %s: %w", ErrUnavailable, strings.Join(c.opts.addrs, ", "), why)
	if last != nil {
		err = fmt.Errorf("%w (last error: %v)", err, last)
	}
	switch {
	case fileErr != nil:
		return fmt.Errorf("%w; and the snapshot file can't stand in: %w", err, fileErr)
	case c.opts.snapshot != "":
		return fmt.Errorf("%w; and there is no snapshot file at %s yet", err, c.opts.snapshot)
	}
	return err
}

// loadFile makes the snapshot file the client's copy, unless configd's own
// copy has arrived meanwhile.
func (c *Client) loadFile(body snapshotBody) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.synced {
		return
	}
	c.gen++
	b := builder{root: &node{gen: c.gen}, gen: c.gen}
	for _, kv := range body.KVs {
		raw, err := api.DecodeValue(kv.Value, kv.Encoding)
		if err != nil {
			c.log.Warn("snapshot file: skipping a key whose value does not decode", "path", c.opts.snapshot, "key", kv.Key, "err", err)
			continue
		}
		b.put(strings.TrimPrefix(kv.Key, c.opts.prefix), newEntry(raw, kv.ContentType, kv.CreateRev, kv.ModRev, kv.Version))
	}
	c.publish(newState(body.Rev, b.root))
	c.log.Warn("configd unreachable; starting from the snapshot file", "path", c.opts.snapshot,
		"rev", body.Rev, "saved_at", body.SavedAt, "addrs", c.opts.addrs)
}

// publish makes s the current copy; called with mu held.
func (c *Client) publish(s *state) {
	old := c.state.Swap(s)
	close(old.next)
}

// Get returns the value at path, from the client's copy: no network call,
// no lock, no allocation. path is one or more segments, each of which may
// itself contain '/': Get("app", "db", "timeout") and Get("app/db/timeout")
// are the same path. Get with no path returns the client's whole scope
// (for Scan). With WithPrefix, path is relative to the prefix.
func (c *Client) Get(path ...string) Value {
	s := c.state.Load()
	return Value{n: lookup(s.root, path), rev: s.rev}
}

// Rev returns the revision of configd's store that the client's copy is
// at: the last revision it has applied, or that configd reported as
// unchanged for its scope. It is the revision the client resumes from.
func (c *Client) Rev() int64 { return c.state.Load().rev }

// WaitRev waits until the client's copy is at revision rev or later, for
// example to read a write made through configd's API at that revision;
// the updates of watchers up to rev are then queued. It returns ctx's
// error if ctx ends first, ErrClosed if the client is closed, and the
// client's Err if configd refused it.
func (c *Client) WaitRev(ctx context.Context, rev int64) error {
	for {
		s := c.state.Load()
		if s.rev >= rev {
			return nil
		}
		select {
		case <-s.next:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return ErrClosed
		case <-c.stopped:
			return c.Err()
		}
	}
}

// Err returns why the client no longer follows configd, or nil while it
// does (also while it reconnects after a failure, which it does on its
// own). A refusal of the client's token — configd answers 401 or 403 over
// HTTP, Unauthenticated or PermissionDenied over gRPC, or cancels the
// watch with code unauthenticated or forbidden: no token, an unknown or
// revoked one, or one that may not read the client's scope — stops the
// client for good, since every retry would be refused too: Err then
// returns an error that wraps ErrUnauthenticated or ErrForbidden and
// carries configd's message, the Next of every Watcher returns it, Watch
// and WaitRev return it, and Get keeps answering from the last copy.
// After Close, Err returns ErrClosed unless a refusal came first.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.halted != nil:
		return c.halted
	case c.closed:
		return ErrClosed
	}
	return nil
}

// halt stops following configd after a refusal: the watchers end with
// err, and New returns it.
func (c *Client) halt(addr string, err error) {
	c.mu.Lock()
	c.halted = err
	ws := c.watchers
	c.watchers = map[*Watcher]struct{}{}
	c.mu.Unlock()
	c.log.Error("configd refused the client; it no longer follows configd", "addr", addr, "rev", c.Rev(), "err", err)
	for w := range ws {
		w.end(err)
	}
	close(c.stopped)
}

// Close stops the client's stream and ends its watchers (their Next
// returns ErrClosed). Get keeps answering from the last copy. Close may be
// called more than once.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	<-c.reported
	c.mu.Lock()
	c.closed = true
	ws := c.watchers
	c.watchers = map[*Watcher]struct{}{}
	c.mu.Unlock()
	for w := range ws {
		w.end(ErrClosed)
	}
	c.closeWriteConns()
	return nil
}
