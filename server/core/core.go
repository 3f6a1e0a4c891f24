// Package core opens configd's store and its watch hub wired together, in
// one place, and closes them in order. Every part of the daemon that
// serves the configuration or feeds it (the HTTP and gRPC APIs, the web
// UI, the source pump) is handed the Core's Store and Hub, each through an
// interface of its own that says what it reads.
//
// The wiring keeps one rule that every watch transport relies on: the hub
// starts at the revision the store holds when it opens, and then learns of
// each revision the store applies, once, in revision order, before the
// Commit that made it returns to its caller. The hub hears of a revision
// only from the store's commit hook (audit.WithCommitHook), never from
// whoever wrote it. With a replicated log under the store's commit path
// (configd on etcd: each replica applies the log, in order, into its own
// store), that hook runs in each replica's apply loop, so every replica's
// hub is fed the same revisions in the same order, whichever replica took
// the write, and nothing here changes.
package core

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/watcher"
)

// Core is configd's store and the watch hub it feeds.
type Core struct {
	// Store holds the configuration, its history and the audit chain.
	Store *audit.Store
	// Hub fans every revision of Store out to the open watches.
	Hub *watcher.Hub
}

// Option configures Open.
type Option func(*options)

type options struct {
	store    []audit.Option
	hub      []watcher.Option
	hubReads func(*audit.Store) watcher.Store
}

// WithStoreOptions configures the store (audit.Open's options). A commit
// hook among them runs before the hub hears of the revision.
func WithStoreOptions(opts ...audit.Option) Option {
	return func(o *options) { o.store = append(o.store, opts...) }
}

// WithHubOptions configures the hub (watcher.New's options).
func WithHubOptions(opts ...watcher.Option) Option {
	return func(o *options) { o.hub = append(o.hub, opts...) }
}

// WithHubReads makes the hub read the store (snapshots, catch-up) through
// wrap(store) instead of the store itself: for tests that count or hold
// those reads.
func WithHubReads(wrap func(*audit.Store) watcher.Store) Option {
	return func(o *options) { o.hubReads = wrap }
}

// Open opens the store at path and its hub. The store's errors are
// returned as audit.Open gives them (audit.ErrLocked, ErrSchemaTooNew, ...),
// for the caller to explain.
func Open(ctx context.Context, path string, opts ...Option) (*Core, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c := &Core{}
	// ready holds back the hook until the hub exists: no revision can slip
	// between the store's revision the hub starts at and its first Publish.
	// A replica applies the log's revisions while it opens (catching up):
	// the hub starts after them, so the hook lets those pass. The store
	// advances before it runs the hooks, so a revision passed over while
	// opening is still set is at or below the revision read after it is
	// cleared.
	ready := make(chan struct{})
	var opening atomic.Bool
	opening.Store(true)
	publish := audit.WithCommitHook(func(r audit.Revision) {
		select {
		case <-ready:
		default:
			if opening.Load() {
				return
			}
			<-ready
		}
		c.Hub.Publish(r)
	})
	st, err := audit.Open(ctx, path, append(o.store[:len(o.store):len(o.store)], publish)...)
	if err != nil {
		return nil, err
	}
	opening.Store(false)
	var reads watcher.Store = st
	if o.hubReads != nil {
		reads = o.hubReads(st)
	}
	rev := st.Rev()
	running, err := runningRollouts(ctx, st, rev)
	if err != nil {
		st.Close()
		return nil, err
	}
	c.Store, c.Hub = st, watcher.New(reads, rev, append(o.hub[:len(o.hub):len(o.hub)], watcher.WithRollouts(running))...)
	close(ready)
	return c, nil
}

// runningRollouts reads the rollouts' records at rev, for the hub to show
// the clients in their steps what they were shown before a restart.
func runningRollouts(ctx context.Context, st *audit.Store, rev int64) ([]*rollout.Rollout, error) {
	kvs, _, err := st.List(ctx, keyspace.RolloutsPrefix(), audit.AtRev(rev))
	if err != nil {
		return nil, fmt.Errorf("core: the rollouts at revision %d: %w", rev, err)
	}
	var out []*rollout.Rollout
	for _, kv := range kvs {
		if !keyspace.IsRollout(kv.Key) {
			continue // the rollouts' other keys (an index)
		}
		r, err := rollout.Decode(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("core: %s: %w", kv.Key, err)
		}
		if rollout.Running(r.State) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Close closes the hub, which ends every open watch, then the store, and
// returns the store's error. It may be called more than once.
func (c *Core) Close() error {
	c.Hub.Close()
	return c.Store.Close()
}
