// Package sourcelead elects, for each external source, the one replica of
// a configd cluster that syncs it: one etcd election per source under the
// cluster's prefix P, at P/elect/source/<name>/, held by a session (a lease
// with a TTL) of each replica. A replica that dies stops renewing its
// lease; etcd deletes its keys once the TTL runs out, and the next replica
// in line takes the role. See docs/ha.md, "External sources in a cluster".
//
// Elections is what server/pump's WithLeadership takes.
package sourcelead

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/configd/configd/audit"
)

// DefaultTTL is the default TTL of a replica's session: how long a source
// goes unsynced when its replica dies without resigning.
const DefaultTTL = 10 * time.Second

// DefaultTimeout bounds each request to etcd that is not a wait for the
// role (granting a lease, resigning, reading the leaders).
const DefaultTimeout = 5 * time.Second

// ErrSessionEnded: the replica's session (its lease) ended, so it holds no
// role: etcd did not hear from it within the TTL, or Close was called.
var ErrSessionEnded = errors.New("sourcelead: the replica's etcd session ended")

// Elections campaigns for the sources of one replica. It is safe for
// concurrent use: the pump campaigns for each source from its own
// goroutine, all on one session.
type Elections struct {
	cli     *clientv3.Client
	dir     string // P/elect/source/
	id      string
	ttl     time.Duration
	timeout time.Duration

	life   context.Context // the sessions live until Close
	cancel context.CancelFunc

	mu   sync.Mutex
	sess *concurrency.Session
}

// Option configures Elections.
type Option func(*Elections)

// WithTTL sets the session's TTL (default DefaultTTL, at least 1 s, in
// whole seconds as etcd's leases are).
func WithTTL(d time.Duration) Option { return func(e *Elections) { e.ttl = d } }

// WithTimeout bounds each request to etcd but the wait for a role (default
// DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(e *Elections) { e.timeout = d } }

// WithReplica sets the name this replica proclaims in the elections it
// wins, what Leaders reports (default "<hostname>/<pid>").
func WithReplica(name string) Option { return func(e *Elections) { e.id = name } }

// New returns the elections of the cluster whose etcd prefix is prefix
// (the one given to audit.WithEtcd), through cli, which stays the
// caller's. It talks to etcd only once a campaign starts.
func New(cli *clientv3.Client, prefix string, opts ...Option) (*Elections, error) {
	e := &Elections{cli: cli, dir: prefix + "/elect/source/", ttl: DefaultTTL, timeout: DefaultTimeout}
	for _, o := range opts {
		o(e)
	}
	if e.id == "" {
		host, _ := os.Hostname()
		e.id = cmp.Or(host, "replica") + "/" + strconv.Itoa(os.Getpid())
	}
	switch {
	case cli == nil:
		return nil, errors.New("sourcelead: no etcd client")
	case e.ttl < time.Second || e.ttl%time.Second != 0:
		return nil, fmt.Errorf("sourcelead: TTL %v: it must be whole seconds, at least 1s", e.ttl)
	case e.timeout <= 0:
		return nil, fmt.Errorf("sourcelead: timeout %v: it must be positive", e.timeout)
	}
	e.life, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Replica is the name this replica proclaims.
func (e *Elections) Replica() string { return e.id }

// Campaign blocks until this replica holds the role of syncing source,
// then returns a channel that is closed when it no longer does: its
// session ended (etcd did not hear from it within the TTL; another replica
// may hold the role by then), or ctx ended, in which case the role is
// resigned first so that the next replica takes it at once. It returns
// ctx.Err() when ctx ends before, and another error when it cannot
// campaign now (etcd does not answer, the session ended while waiting):
// the caller tries again later.
//
// The channel closes a moment after etcd ended the role (a round trip,
// longer for a replica paused meanwhile), so the role is also returned as
// a fence: the replica's election key and its creation revision, which
// the store checks in the etcd transaction of each revision the source
// records (audit.Fenced). Once the key is gone, the replica records
// nothing more for the source, whether it knows yet or not.
func (e *Elections) Campaign(ctx context.Context, source string) (lost <-chan struct{}, fence audit.Fence, err error) {
	s, err := e.session(ctx)
	if err != nil {
		return nil, audit.Fence{}, err
	}
	// The wait for the role ends with the session: a replica whose lease
	// is gone must not believe it won.
	wait, stop := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.Ctx(), stop)
	el := concurrency.NewElection(s, e.dir+source)
	err = el.Campaign(wait, e.id)
	if err == nil {
		if err = e.confirm(wait, el); err != nil {
			e.resign(ctx, el) // do not hold a role nobody runs
		}
	}
	unhook()
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, audit.Fence{}, ctx.Err()
		}
		if done(s) {
			return nil, audit.Fence{}, fmt.Errorf("campaign for source %s: %w", source, ErrSessionEnded)
		}
		return nil, audit.Fence{}, fmt.Errorf("sourcelead: campaign for source %s: %w", source, err)
	}
	end := make(chan struct{})
	go func() {
		defer close(end)
		select {
		case <-s.Done():
		case <-ctx.Done():
			e.resign(ctx, el)
		}
	}()
	return end, audit.Fence{Key: el.Key(), Rev: el.Rev()}, nil
}

// resign gives up el's role or place in line; if etcd does not answer,
// the lease's TTL ends it.
func (e *Elections) resign(ctx context.Context, el *concurrency.Election) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.timeout)
	defer cancel()
	_ = el.Resign(rctx)
}

// confirm checks, once Campaign returned, that the replica's key is still
// there: its lease may have expired while it waited for the one before.
func (e *Elections) confirm(ctx context.Context, el *concurrency.Election) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, el.Key())
	if err != nil {
		return err
	}
	if len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != el.Rev() {
		return ErrSessionEnded
	}
	return nil
}

// session returns the replica's session, starting a new one when there is
// none or the last one ended.
func (e *Elections) session(ctx context.Context) (*concurrency.Session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.life.Err() != nil {
		return nil, ErrSessionEnded
	}
	if e.sess != nil && !done(e.sess) {
		return e.sess, nil
	}
	// The lease is granted apart so that the request has a timeout of its
	// own: the session's context is its lifetime.
	gctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	lease, err := e.cli.Grant(gctx, int64(e.ttl/time.Second))
	if err != nil {
		return nil, fmt.Errorf("sourcelead: start a session (grant a lease of %v): %w", e.ttl, err)
	}
	s, err := concurrency.NewSession(e.cli, concurrency.WithLease(lease.ID), concurrency.WithContext(e.life))
	if err != nil {
		return nil, fmt.Errorf("sourcelead: start a session: %w", err)
	}
	e.sess = s
	return s, nil
}

// Leaders returns, for each source that has one, the replica that syncs
// it (as it proclaimed itself, WithReplica), as etcd's quorum has it.
func (e *Elections) Leaders(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.dir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("sourcelead: read the leaders: %w", err)
	}
	out := map[string]string{}
	first := map[string]int64{}
	for _, kv := range resp.Kvs {
		// P/elect/source/<name>/<lease in hex>
		rest := strings.TrimPrefix(string(kv.Key), e.dir)
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 {
			continue
		}
		name := rest[:i]
		if r, ok := first[name]; !ok || kv.CreateRevision < r {
			first[name], out[name] = kv.CreateRevision, string(kv.Value)
		}
	}
	return out, nil
}

// Close ends the replica's session: its lease is revoked, so every role it
// holds goes to the next replica in line at once. Campaigns fail with
// ErrSessionEnded afterwards.
func (e *Elections) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cancel()
	if e.sess == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	_, err := e.cli.Revoke(ctx, e.sess.Lease())
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("sourcelead: revoke the session's lease: %w", err)
	}
	return nil
}

func done(s *concurrency.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}
