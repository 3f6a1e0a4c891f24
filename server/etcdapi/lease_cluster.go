package etcdapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

// The leases of a replica of a configd cluster (docs/compat.md, "Leases"):
// each configd lease is a lease of the cluster's etcd, of the same ID,
// with a marker key attached to it, P/leases/<id> (its value: the TTL
// granted). Its deadline is etcd's, whichever replica the keep-alives
// reach; granting, keeping alive and revoking are etcd's. The records of
// the leases' keys are configd's, as on a configd alone. When a marker is
// deleted (its lease expired or was revoked), every replica ends the
// configd lease, conditionally on the record as it read it (IfRev): one of
// them commits the revision that deletes the keys, the others find the
// record gone. An ID a client sends is served only when its marker exists,
// so that no client keeps alive, revokes or reads the replicas' own etcd
// leases (their registrations, their elections).

// WithCluster serves the leases of a replica of a configd cluster through
// the cluster's etcd: cli, with the cluster's prefix (the store's, e.g.
// --etcd-prefix). Without it a replica refuses leases.
func WithCluster(cli *clientv3.Client, prefix string) Option {
	return func(o *options) { o.cluster, o.clusterPrefix = cli, prefix }
}

// markersDir is the directory of the leases' markers under the cluster's
// prefix: P/leases/.
func markersDir(prefix string) string { return strings.TrimSuffix(prefix, "/") + "/leases/" }

// clusterLeases are the etcd side of a replica's leases.
type clusterLeases struct {
	logger *slog.Logger
	cli    *clientv3.Client
	lc     pb.LeaseClient
	dir    string
	// done is closed when the markers' watch has stopped.
	done chan struct{}

	mu sync.Mutex
	// granted caches each live lease's TTL as granted, for its record.
	granted map[int64]int64

	// index is which lease each key is attached to, as of the store's
	// revision indexed, read from the records (any replica may have
	// written them): the replica's own commits are not all its records'
	// changes, as they are on a configd alone.
	indexMu sync.Mutex
	indexed int64
	records map[int64]indexedRecord
	index   map[string]attachment
}

// indexedRecord is a lease's record as indexed, and its mod_rev.
type indexedRecord struct {
	modRev int64
	keys   map[string]int64
}

// indexReader reads the leases' records.
type indexReader interface {
	Rev() int64
	List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error)
}

// of returns kv's lease, 0 when none, from the records as of the store's
// revision now, read again when the revision moved on (once per
// revision, only the records that changed parsed).
func (c *clusterLeases) of(ctx context.Context, st indexReader, kv audit.KeyValue) int64 {
	c.indexMu.Lock()
	defer c.indexMu.Unlock()
	if rev := st.Rev(); rev != c.indexed {
		if err := c.reindex(ctx, st, rev); err != nil {
			// An unreadable store reads as unleased keys; the next read
			// tries again.
			c.logger.Error("etcd api: the leases' records do not read: keys read as without a lease", "err", err)
			return 0
		}
	}
	if a, ok := c.index[kv.Key]; ok && a.modRev == kv.ModRev {
		return a.lease
	}
	return 0
}

// reindex reads the records at rev; c.indexMu is held.
func (c *clusterLeases) reindex(ctx context.Context, st indexReader, rev int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kvs, _, err := st.List(ctx, keyspace.LeasesPrefix(), audit.AtRev(rev))
	if err != nil {
		return err
	}
	records := make(map[int64]indexedRecord, len(kvs))
	changed := len(kvs) != len(c.records)
	for _, kv := range kvs {
		id, ok := keyspace.LeaseID(kv.Key)
		if !ok {
			continue
		}
		if r, ok := c.records[id]; ok && r.modRev == kv.ModRev {
			records[id] = r
			continue
		}
		var rec leaseRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return fmt.Errorf("%s: %w", kv.Key, err)
		}
		records[id], changed = indexedRecord{modRev: kv.ModRev, keys: rec.Keys}, true
	}
	if changed {
		index := map[string]attachment{}
		for id, r := range records {
			for k, mr := range r.keys {
				if a, ok := index[k]; !ok || a.modRev < mr {
					index[k] = attachment{lease: id, modRev: mr}
				}
			}
		}
		c.records, c.index = records, index
	}
	c.indexed = rev
	return nil
}

func newClusterLeases(cli *clientv3.Client, prefix string, logger *slog.Logger) *clusterLeases {
	return &clusterLeases{logger: logger, cli: cli, lc: pb.NewLeaseClient(cli.ActiveConnection()), dir: markersDir(prefix),
		done: make(chan struct{}), granted: map[int64]int64{}}
}

func (c *clusterLeases) marker(id int64) string { return c.dir + strconv.FormatInt(id, 10) }

// revokingMark starts the value of the marker of a lease being revoked:
// its keys are being deleted, it takes no key and no keep-alive.
const revokingMark = "revoking "

// parseMarker reads a marker's value: the TTL granted, and whether the
// lease is being revoked.
func parseMarker(v []byte) (ttl int64, revoking bool) {
	s, revoking := strings.CutPrefix(string(v), revokingMark)
	ttl, _ = strconv.ParseInt(s, 10, 64)
	return ttl, revoking
}

// grant grants an etcd lease of ttl (id 0: etcd chooses its ID) and
// attaches its marker to it.
func (c *clusterLeases) grant(ctx context.Context, id, ttl int64) (int64, int64, error) {
	g, err := c.lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: id, TTL: ttl})
	if err != nil {
		return 0, 0, err
	}
	if g.GetError() != "" {
		return 0, 0, fmt.Errorf("the cluster's etcd refused the lease: %s", g.GetError())
	}
	m := c.marker(g.GetID())
	resp, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(m), "=", 0)).
		Then(clientv3.OpPut(m, strconv.FormatInt(g.GetTTL(), 10), clientv3.WithLease(clientv3.LeaseID(g.GetID())))).Commit()
	if err == nil && !resp.Succeeded {
		err = rpctypes.ErrGRPCLeaseExist
	}
	if err != nil {
		// Not a configd lease without its marker: it goes (or expires).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = c.lc.LeaseRevoke(rctx, &pb.LeaseRevokeRequest{ID: g.GetID()})
		cancel()
		return 0, 0, err
	}
	c.mu.Lock()
	c.granted[g.GetID()] = g.GetTTL()
	c.mu.Unlock()
	return g.GetID(), g.GetTTL(), nil
}

// ours reports whether id is a live configd lease (its marker exists),
// read linearizably from etcd.
func (c *clusterLeases) ours(ctx context.Context, id int64) (bool, error) {
	marked, revoking, err := c.marked(ctx, id)
	return marked && !revoking, err
}

// marked reports whether lease id has a marker, and whether it is being
// revoked.
func (c *clusterLeases) marked(ctx context.Context, id int64) (marked, revoking bool, err error) {
	if id <= 0 {
		return false, false, nil
	}
	resp, err := c.cli.Get(ctx, c.marker(id))
	if err != nil || len(resp.Kvs) == 0 {
		return false, false, err
	}
	ttl, revoking := parseMarker(resp.Kvs[0].Value)
	c.mu.Lock()
	c.granted[id] = ttl
	c.mu.Unlock()
	return true, revoking, nil
}

// startRevoke marks lease id as being revoked, when it is live: false
// when it is not (gone, or another revoke under way).
func (c *clusterLeases) startRevoke(ctx context.Context, id int64) (bool, error) {
	m := c.marker(id)
	resp, err := c.cli.Get(ctx, m)
	if err != nil || len(resp.Kvs) == 0 {
		return false, err
	}
	kv := resp.Kvs[0]
	ttl, revoking := parseMarker(kv.Value)
	if revoking {
		return false, nil
	}
	txn, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(m), "=", kv.ModRevision)).
		Then(clientv3.OpPut(m, revokingMark+strconv.FormatInt(ttl, 10), clientv3.WithIgnoreLease())).Commit()
	if err != nil {
		return false, err
	}
	return txn.Succeeded, nil
}

// ttl is lease id's TTL as granted, 0 when not known here.
func (c *clusterLeases) ttl(id int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.granted[id]
}

func (c *clusterLeases) forget(id int64) {
	c.mu.Lock()
	delete(c.granted, id)
	c.mu.Unlock()
}

// keepAlive renews lease id in etcd and returns its TTL, 0 when it is not
// a live configd lease.
func (c *clusterLeases) keepAlive(ctx context.Context, id int64) (int64, error) {
	if ok, err := c.ours(ctx, id); !ok || err != nil {
		return 0, err
	}
	resp, err := c.cli.KeepAliveOnce(ctx, clientv3.LeaseID(id))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return resp.TTL, nil
}

// timeToLive returns lease id's TTL as granted and its seconds left; ok
// false when it is not a live configd lease.
func (c *clusterLeases) timeToLive(ctx context.Context, id int64) (granted, left int64, ok bool, err error) {
	if ok, err := c.ours(ctx, id); !ok || err != nil {
		return 0, 0, false, err
	}
	resp, err := c.cli.TimeToLive(ctx, clientv3.LeaseID(id))
	if err != nil {
		return 0, 0, false, err
	}
	if resp.TTL < 0 {
		return 0, 0, false, nil
	}
	return resp.GrantedTTL, resp.TTL, true, nil
}

// list returns the IDs of the live configd leases.
func (c *clusterLeases) list(ctx context.Context) ([]int64, error) {
	resp, err := c.cli.Get(ctx, c.dir, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, kv := range resp.Kvs {
		id, err := strconv.ParseInt(strings.TrimPrefix(string(kv.Key), c.dir), 10, 64)
		if _, revoking := parseMarker(kv.Value); err == nil && !revoking {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// revoke revokes lease id's etcd lease (its marker goes with it); a lease
// already gone is not an error.
func (c *clusterLeases) revoke(ctx context.Context, id int64) error {
	defer c.forget(id)
	_, err := c.lc.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: id})
	if errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
		return nil
	}
	return err
}

// watch ends the configd leases whose markers are deleted, until ctx
// ends: after each (re)start of the markers' watch, it first ends those
// whose records outlived their markers (deleted while no replica
// watched).
func (c *clusterLeases) watch(ctx context.Context, l *leases) {
	defer close(c.done)
	pause := endRetry
	for ctx.Err() == nil {
		err := c.session(ctx, l)
		if ctx.Err() != nil {
			return
		}
		l.s.opts.logger.Warn("etcd api: the leases' markers are not watched; watching again", "err", err, "in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxEndRetry)
	}
}

func (c *clusterLeases) session(ctx context.Context, l *leases) error {
	// The watch starts after from: a marker deleted later is seen by it.
	// A record read is checked against the markers read after it: its
	// marker was put before it, so a marker missing then is one deleted.
	// A record committed after the read is checked by its put, after its
	// commit (leases.committed), so after from.
	from, err := c.cli.Get(ctx, c.dir, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	if _, err := l.s.st.Sync(ctx); err != nil {
		return err
	}
	recs, _, err := l.s.st.List(ctx, keyspace.LeasesPrefix())
	if err != nil {
		return err
	}
	resp, err := c.cli.Get(ctx, c.dir, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, kv := range resp.Kvs {
		live[string(kv.Key)] = true
	}
	for _, kv := range recs {
		if id, ok := keyspace.LeaseID(kv.Key); ok && !live[c.marker(id)] {
			go l.expireCluster(id, 0)
		}
	}
	wch := c.cli.Watch(clientv3.WithRequireLeader(ctx), c.dir, clientv3.WithPrefix(), clientv3.WithPrevKV(),
		clientv3.WithRev(from.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type != clientv3.EventTypeDelete {
				continue
			}
			id, err := strconv.ParseInt(strings.TrimPrefix(string(ev.Kv.Key), c.dir), 10, 64)
			if err != nil {
				continue
			}
			var ttl int64
			if ev.PrevKv != nil {
				ttl, _ = parseMarker(ev.PrevKv.Value)
			}
			go l.expireCluster(id, ttl)
		}
	}
	return errors.New("the watch ended")
}

// expireCluster ends lease id, whose marker is gone, as configd's own act,
// trying again while the store refuses or is unavailable. Several
// replicas may: the revision is conditional on the record read, so one
// commits and the others find the record gone.
func (l *leases) expireCluster(id, ttl int64) {
	if ttl == 0 {
		ttl = l.cl.ttl(id)
	}
	l.cl.forget(id)
	meta := expiredTxn(id, ttl)
	l.persist("an expired lease's keys are not deleted", id, func(ctx context.Context) error {
		return l.endCluster(ctx, id, meta, nil)
	})
}

// persist calls try, with a bounded context, until it succeeds or the
// leases stop, waiting endRetry after a failure (logged as what, about
// lease id), doubling up to maxEndRetry.
func (l *leases) persist(what string, id int64, try func(ctx context.Context) error) {
	for retry := endRetry; ; retry = min(2*retry, maxEndRetry) {
		ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
		err := try(ctx)
		cancel()
		if err == nil || l.ctx.Err() != nil {
			return
		}
		l.s.opts.logger.Error("etcd api: "+what+"; trying again", "lease", id, "err", err, "in", retry)
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

// endCluster deletes lease id's keys and record in one revision (txn's
// actor, origin and reason), reading the store as new as the cluster's
// log; nothing when it has no record.
func (l *leases) endCluster(ctx context.Context, id int64, txn audit.Txn, check func(key string) error) error {
	if _, err := l.s.st.Sync(ctx); err != nil {
		return err
	}
	_, err := l.commitEnd(ctx, id, txn, check)
	return err
}

// revokeCluster ends lease id as txn, check allowing each key attached:
// its marker is marked first (no put attaches a key to it after that,
// and the other replicas leave it to this one), then its keys are
// deleted, then its etcd lease is revoked (a key a put attached as the
// revoke began goes then, as at an expiry). A revoke that stops halfway
// leaves a lease that no keep-alive renews: it expires. It returns false
// when id is not a live configd lease.
func (l *leases) revokeCluster(ctx context.Context, id int64, txn audit.Txn, check func(key string) error) (bool, error) {
	if ok, err := l.cl.ours(ctx, id); !ok || err != nil {
		return false, err
	}
	at, err := l.s.st.Sync(ctx)
	if err != nil {
		return false, err
	}
	rec, _, err := l.record(ctx, id, at)
	if err != nil {
		return false, err
	}
	ops, err := l.attached(ctx, rec, at)
	if err != nil {
		return false, err
	}
	for _, op := range ops {
		if err := check(op.Key); err != nil {
			return false, err
		}
	}
	if ok, err := l.cl.startRevoke(ctx, id); !ok || err != nil {
		return false, err
	}
	if err := l.endCluster(ctx, id, txn, nil); err != nil {
		return false, err
	}
	return true, l.cl.revoke(ctx, id)
}

// committedCluster checks, after a put attached keys to leases, that their
// markers still exist: a lease whose marker went before the put's record
// was committed (the replicas that ended it read the store before it) is
// ended now. A marker being revoked is left to its revoker, who ends the
// lease's keys again once its etcd lease is revoked.
func (l *leases) committedCluster(changes []leaseChange) {
	seen := map[int64]bool{}
	for _, c := range changes {
		if c.modRev == 0 || seen[c.lease] {
			continue
		}
		seen[c.lease] = true
		go func(id int64) {
			gone := false
			l.persist("a leased key's lease is not checked", id, func(ctx context.Context) error {
				marked, _, err := l.cl.marked(ctx, id)
				gone = err == nil && !marked
				return err
			})
			if gone {
				l.expireCluster(id, 0)
			}
		}(c.lease)
	}
}
