// Package uisessions is the web UI's session table shared by the replicas
// of a cluster (web.SessionTable), so that a load balancer may send a
// logged-in user to any replica.
//
// A session is one etcd key, P/uisessions/<hex of the SHA-256 of its id>
// (never the id), bound to a lease of its own: the lease ends the session
// after the idle time without a renewal, etcd deletes the key, and every
// replica drops it. Each replica keeps a copy of the table filled by one
// watch of P/uisessions/, so that a request reads no etcd; a session in
// use renews its lease at most once per RenewEvery on each replica. The
// maximum age is checked against the session's creation time.
//
// When etcd does not answer, the sessions in the copy go on working (and
// do not expire by idleness until etcd is back), a login fails with an
// error, and a logout ends the session on this replica only.
package uisessions

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/web"
)

// RenewEvery is how often, at most, a replica renews the lease of a
// session in use (a third of the idle time if that is shorter).
const RenewEvery = time.Minute

// ErrUnavailable is wrapped by the errors of a table whose etcd does not
// answer.
var ErrUnavailable = errors.New("the cluster's session table (etcd) is unavailable")

// Codec turns a principal into the bytes a session keeps, and back. It
// must keep what web.Authenticator.Recheck needs, never a token's secret
// (httpapi.UIPrincipalCodec).
type Codec interface {
	Encode(p web.Principal) ([]byte, error)
	Decode(b []byte) (web.Principal, error)
}

// Option configures New.
type Option func(*options)

type options struct {
	idle, maxAge time.Duration
	timeout      time.Duration
	logger       *slog.Logger
}

// WithLifetime sets how long a session lives without a request (idle,
// default web.SessionIdle) and at most (maxAge, default
// web.SessionMaxAge). etcd raises an idle time under its minimum lease
// TTL (a few seconds) to that minimum.
func WithLifetime(idle, maxAge time.Duration) Option {
	return func(o *options) { o.idle, o.maxAge = idle, maxAge }
}

// WithTimeout bounds each request to etcd (default 5 s).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Table is the shared session table. Close stops its watch.
type Table struct {
	cli   *clientv3.Client
	dir   string
	codec Codec
	opts  options
	now   func() time.Time

	mu     sync.Mutex
	m      map[string]*entry // by the key's last segment (hex of the id's hash)
	synced chan struct{}     // closed once the copy has been filled

	cancel context.CancelFunc
	done   chan struct{}
}

var _ web.SessionTable = (*Table)(nil)

// entry is a session in the replica's copy.
type entry struct {
	p       web.Principal
	created time.Time
	lease   clientv3.LeaseID
	renewed time.Time // when this replica last renewed the lease
}

// record is a session's value in etcd.
type record struct {
	Principal json.RawMessage `json:"principal"`
	Created   int64           `json:"created_unix_ms"`
}

// New returns the table under prefix (the cluster's, as given to
// --etcd-prefix) and starts its watch, which runs until Close. It does
// not wait for etcd: until the copy is filled, sessions are unknown.
func New(cli *clientv3.Client, prefix string, codec Codec, opts ...Option) (*Table, error) {
	o := options{idle: web.SessionIdle, maxAge: web.SessionMaxAge, timeout: 5 * time.Second, logger: slog.Default()}
	for _, fn := range opts {
		fn(&o)
	}
	switch {
	case cli == nil || codec == nil:
		return nil, errors.New("uisessions: an etcd client and a codec are required")
	case o.idle <= 0 || o.maxAge <= 0 || o.timeout <= 0:
		return nil, fmt.Errorf("uisessions: idle time %v, maximum age %v and timeout %v must be positive", o.idle, o.maxAge, o.timeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Table{cli: cli, dir: strings.TrimSuffix(prefix, "/") + "/uisessions/", codec: codec, opts: o, now: time.Now,
		m: map[string]*entry{}, synced: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go t.follow(ctx)
	return t, nil
}

// Close stops the table's watch. Sessions stay in etcd until their lease
// ends.
func (t *Table) Close() error {
	t.cancel()
	<-t.done
	return nil
}

// Synced is closed once the replica's copy has been read from etcd.
func (t *Table) Synced() <-chan struct{} { return t.synced }

// Create opens a session in etcd, with a lease of the idle time, and in
// the replica's copy at once (read your writes).
func (t *Table) Create(ctx context.Context, p web.Principal) (string, error) {
	enc, err := t.codec.Encode(p)
	if err != nil {
		return "", err
	}
	now := t.now()
	val, err := json.Marshal(record{Principal: enc, Created: now.UnixMilli()})
	if err != nil {
		return "", err
	}
	id, key := web.NewSessionID()
	name := hex.EncodeToString(key[:])
	ctx, cancel := context.WithTimeout(ctx, t.opts.timeout)
	defer cancel()
	lease, err := t.cli.Grant(ctx, ttlSeconds(t.opts.idle))
	if err != nil {
		return "", fmt.Errorf("%w: grant a lease: %w", ErrUnavailable, err)
	}
	if _, err := t.cli.Put(ctx, t.dir+name, string(val), clientv3.WithLease(lease.ID)); err != nil {
		// The lease ends the key if the put happened after all.
		return "", fmt.Errorf("%w: put the session: %w", ErrUnavailable, err)
	}
	t.mu.Lock()
	t.m[name] = &entry{p: p, created: now, lease: lease.ID, renewed: now}
	t.mu.Unlock()
	return id, nil
}

// Get returns the principal of the live session of id from the replica's
// copy, and renews its lease in the background when this replica has not
// for RenewEvery.
func (t *Table) Get(id string) (web.Principal, bool) {
	key, ok := web.SessionKey(id)
	if !ok {
		return nil, false
	}
	name := hex.EncodeToString(key[:])
	now := t.now()
	t.mu.Lock()
	e, found := t.m[name]
	if !found {
		t.mu.Unlock()
		return nil, false
	}
	if now.Sub(e.created) >= t.opts.maxAge {
		delete(t.m, name)
		t.mu.Unlock()
		go t.revoke(e.lease)
		return nil, false
	}
	renew := now.Sub(e.renewed) >= min(RenewEvery, t.opts.idle/3)
	if renew {
		e.renewed = now
	}
	p := e.p
	t.mu.Unlock()
	if renew {
		go t.renew(e.lease)
	}
	return p, true
}

// End ends the session of id: at once in the replica's copy, then in etcd
// (its lease is revoked), which tells the other replicas.
func (t *Table) End(ctx context.Context, id string) error {
	key, ok := web.SessionKey(id)
	if !ok {
		return nil
	}
	name := hex.EncodeToString(key[:])
	t.mu.Lock()
	e, found := t.m[name]
	delete(t.m, name)
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, t.opts.timeout)
	defer cancel()
	if found {
		if _, err := t.cli.Revoke(ctx, e.lease); err == nil {
			return nil
		}
	}
	// Unknown here (not yet seen by the watch) or the revocation failed:
	// delete the key itself.
	if _, err := t.cli.Delete(ctx, t.dir+name); err != nil {
		return fmt.Errorf("%w: end the session: %w", ErrUnavailable, err)
	}
	return nil
}

// Len is how many sessions the replica's copy holds.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *Table) renew(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.timeout)
	defer cancel()
	if _, err := t.cli.KeepAliveOnce(ctx, lease); err != nil {
		t.opts.logger.Debug("uisessions: renew a session's lease", "err", err)
	}
}

func (t *Table) revoke(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.timeout)
	defer cancel()
	if _, err := t.cli.Revoke(ctx, lease); err != nil {
		t.opts.logger.Debug("uisessions: end an expired session", "err", err)
	}
}

// follow fills the copy and keeps it up to date until ctx ends: it reads
// the table, then watches it from there; when the watch fails, it reads
// it again (the copy is kept meanwhile).
func (t *Table) follow(ctx context.Context) {
	defer close(t.done)
	var once sync.Once
	for wait := 100 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		rev, err := t.load(ctx)
		if err == nil {
			once.Do(func() { close(t.synced) })
			wait = 100 * time.Millisecond
			err = t.watch(ctx, rev)
		}
		if ctx.Err() != nil {
			return
		}
		t.opts.logger.Warn("uisessions: following the shared sessions", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// load replaces the copy by the table in etcd and returns etcd's
// revision it read.
func (t *Table) load(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, t.opts.timeout)
	defer cancel()
	resp, err := t.cli.Get(rctx, t.dir, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	m := make(map[string]*entry, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if name, e, ok := t.decode(kv.Key, kv.Value, kv.Lease); ok {
			m[name] = e
		}
	}
	now := t.now()
	t.mu.Lock()
	for name, e := range m {
		if old, ok := t.m[name]; ok {
			e.renewed = old.renewed
		} else {
			e.renewed = now
		}
	}
	t.m = m
	t.mu.Unlock()
	return resp.Header.Revision, nil
}

func (t *Table) watch(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range t.cli.Watch(wctx, t.dir, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return err
		}
		now := t.now()
		t.mu.Lock()
		for _, ev := range resp.Events {
			name := strings.TrimPrefix(string(ev.Kv.Key), t.dir)
			if ev.Type == clientv3.EventTypeDelete {
				delete(t.m, name)
				continue
			}
			if _, e, ok := t.decode(ev.Kv.Key, ev.Kv.Value, ev.Kv.Lease); ok {
				if old, had := t.m[name]; had {
					e.renewed = old.renewed
				} else {
					e.renewed = now
				}
				t.m[name] = e
			}
		}
		t.mu.Unlock()
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("the watch ended")
}

// decode returns the session of an etcd key and value; one that does not
// decode is left out, and logged.
func (t *Table) decode(key, val []byte, lease int64) (string, *entry, bool) {
	name := strings.TrimPrefix(string(key), t.dir)
	var rec record
	err := json.Unmarshal(val, &rec)
	var p web.Principal
	if err == nil {
		p, err = t.codec.Decode(rec.Principal)
	}
	if err != nil {
		t.opts.logger.Warn("uisessions: a session that does not decode is ignored", "key", string(key), "err", err)
		return "", nil, false
	}
	return name, &entry{p: p, created: time.UnixMilli(rec.Created), lease: clientv3.LeaseID(lease)}, true
}

// ttlSeconds is d in whole seconds, at least one.
func ttlSeconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}
