package etcdapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
)

// Leases (docs/compat.md, "Leases"). A lease with keys has a record in
// the store, keyspace.LeaseKey(id): its TTL and, for each key attached,
// the key's mod_rev when it was attached, written in the revision of the
// put that attaches it. A key belongs to the lease while its mod_rev is
// still that one: a later write of the key through any door (a put
// without the lease, a delete) detaches it, as in etcd, without the other
// doors knowing of leases. The deadlines are kept in memory only: a
// keep-alive writes nothing, and after a restart every lease has its full
// TTL again (etcd's rule after a leader change). A lease without keys
// lives in memory only (granting writes no revision), and a restart ends
// it. A lease not kept alive for its TTL is ended by configd: its keys and
// its record deleted in one revision by Origin, its reason naming the
// lease.

const (
	// minLeaseTTL is etcd's minimum TTL with its default timing (1.5
	// election timeouts of 1 s, rounded up): a shorter TTL is raised to it.
	minLeaseTTL = 2
	// maxLeaseTTL is etcd's largest TTL (lease.MaxLeaseTTL).
	maxLeaseTTL = 9_000_000_000
	// endRetry is how soon an expiry that failed (the store refused or was
	// unavailable) is tried again, doubling at each failure up to
	// maxEndRetry.
	endRetry    = time.Second
	maxEndRetry = time.Minute
)

// leaseRecord is a lease's record, at keyspace.LeaseKey(id).
type leaseRecord struct {
	TTL int64 `json:"ttl"`
	// Keys maps each key attached to the lease to its mod_rev when it was
	// attached.
	Keys map[string]int64 `json:"keys"`
	// modRev is the record's own mod_rev, as read.
	modRev int64
}

// attachment is a key's lease, and the key's mod_rev when attached.
type attachment struct{ lease, modRev int64 }

// lease is a live lease.
type lease struct {
	ttl      int64
	deadline time.Time
	timer    *time.Timer
	// ending: a revoke or expiry is under way; the lease takes no keys
	// and no keep-alive.
	ending bool
	// retry is how soon a failed expiry is tried again: endRetry,
	// doubling up to maxEndRetry.
	retry time.Duration
}

// leases are the live leases of one configd, and the index of their keys.
type leases struct {
	s *server
	// refused, when set, is why leases are not served.
	refused string
	// cl, on a replica of a configd cluster, keeps the leases in the
	// cluster's etcd (lease_cluster.go); byID is then unused.
	cl *clusterLeases

	// ctx ends with stop: the expiries under way give up.
	ctx  context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	stopped bool
	byID    map[int64]*lease
	keys    map[string]attachment
}

// leaseChange attaches key to a lease (modRev: the key's mod_rev once
// written) or, with modRev 0, detaches it.
type leaseChange struct {
	lease  int64
	key    string
	modRev int64
}

func newLeases(ctx context.Context, s *server) *leases {
	l := &leases{s: s, byID: map[int64]*lease{}, keys: map[string]attachment{}}
	l.ctx, l.stop = context.WithCancel(context.WithoutCancel(ctx))
	if s.st.Replication().Replica {
		if s.opts.cluster == nil {
			// Each replica would keep its own deadlines and end the leases
			// on its own.
			l.refused = "leases are not served by this replica of a configd cluster (configd on etcd): it was started " +
				"without the cluster's etcd client (etcdapi.WithCluster); see docs/compat.md, \"Leases\""
			return l
		}
		l.cl = newClusterLeases(s.opts.cluster, s.opts.clusterPrefix, s.opts.logger)
		go l.cl.watch(l.ctx, l)
		return l
	}
	if err := l.load(ctx); err != nil {
		s.opts.logger.Error("etcd api: the leases' records do not load: their keys will not expire", "err", err)
	}
	return l
}

// load makes a live lease of every record, with its full TTL.
func (l *leases) load(ctx context.Context) error {
	kvs, _, err := l.s.st.List(ctx, keyspace.LeasesPrefix())
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, kv := range kvs {
		id, ok := keyspace.LeaseID(kv.Key)
		if !ok {
			continue
		}
		var rec leaseRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return fmt.Errorf("%s: %w", kv.Key, err)
		}
		l.start(id, rec.TTL)
		for k, mr := range rec.Keys {
			l.keys[k] = attachment{lease: id, modRev: mr}
		}
	}
	return nil
}

// start makes lease id live, its deadline ttl from now; l.mu is held.
func (l *leases) start(id, ttl int64) {
	d := time.Duration(ttl) * time.Second
	l.byID[id] = &lease{ttl: ttl, deadline: time.Now().Add(d), timer: time.AfterFunc(d, func() { l.expire(id) })}
}

// close stops the expiries: the server stops, and the leases' deadlines
// go with it (the next start gives every lease its full TTL).
func (l *leases) close() {
	l.mu.Lock()
	l.stopped = true
	for _, le := range l.byID {
		le.timer.Stop()
	}
	l.stop()
	l.mu.Unlock()
	if l.cl != nil {
		<-l.cl.done
	}
}

func (l *leases) check() error {
	if l.refused != "" {
		return status.Error(codes.Unimplemented, l.refused)
	}
	return nil
}

// grant starts a lease of ttl seconds, id 0 choosing its ID.
func (l *leases) grant(ctx context.Context, id, ttl int64) (int64, int64, error) {
	if err := l.check(); err != nil {
		return 0, 0, err
	}
	switch {
	case ttl <= 0:
		return 0, 0, status.Errorf(codes.InvalidArgument, "lease TTL %d: a lease's TTL is a positive number of seconds", ttl)
	case ttl > maxLeaseTTL:
		return 0, 0, rpctypes.ErrGRPCLeaseTTLTooLarge
	case id < 0:
		return 0, 0, status.Errorf(codes.InvalidArgument, "lease ID %d: a lease's ID is positive (0 lets configd choose it)", id)
	}
	ttl = max(ttl, minLeaseTTL)
	if l.cl != nil {
		return l.cl.grant(ctx, id, ttl)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if id == 0 {
		for id == 0 || l.byID[id] != nil {
			id = rand.Int64N(math.MaxInt64) + 1
		}
	} else if l.byID[id] != nil {
		return 0, 0, rpctypes.ErrGRPCLeaseExist
	}
	l.start(id, ttl)
	return id, ttl, nil
}

// keepAlive renews lease id's deadline and returns its TTL, 0 when it
// is not live (etcd's answer to a lease not found).
func (l *leases) keepAlive(ctx context.Context, id int64) (int64, error) {
	if l.cl != nil {
		return l.cl.keepAlive(ctx, id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	le := l.byID[id]
	if le == nil || le.ending {
		return 0, nil
	}
	d := time.Duration(le.ttl) * time.Second
	le.deadline = time.Now().Add(d)
	le.timer.Reset(d)
	return le.ttl, nil
}

// live refuses lease id when it is not live: a put cannot attach a key to
// it.
func (l *leases) live(ctx context.Context, id int64) error {
	if err := l.check(); err != nil {
		return err
	}
	if l.cl != nil {
		ok, err := l.cl.ours(ctx, id)
		if err == nil && !ok {
			err = rpctypes.ErrGRPCLeaseNotFound
		}
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if le := l.byID[id]; le == nil || le.ending {
		return rpctypes.ErrGRPCLeaseNotFound
	}
	return nil
}

// of returns kv's lease, 0 when none.
func (l *leases) of(kv audit.KeyValue) int64 {
	if l.cl != nil {
		return l.cl.of(l.ctx, l.s.st, kv)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.keys[kv.Key]; ok && a.modRev == kv.ModRev {
		return a.lease
	}
	return 0
}

// record reads lease id's record at revision at (0: the current one, from
// memory); false when it has none.
func (l *leases) record(ctx context.Context, id, at int64) (leaseRecord, bool, error) {
	var opts []audit.ReadOption
	if at > 0 {
		opts = append(opts, audit.AtRev(at))
	}
	kv, err := l.s.st.Get(ctx, keyspace.LeaseKey(id), opts...)
	if errors.Is(err, audit.ErrNotFound) {
		return leaseRecord{}, false, nil
	}
	if err != nil {
		return leaseRecord{}, false, err
	}
	rec := leaseRecord{modRev: kv.ModRev}
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return leaseRecord{}, false, fmt.Errorf("%s: %w", kv.Key, err)
	}
	return rec, true, nil
}

// recordOps are the writes of the records of the leases that changes
// attach keys to or detach keys from. The records are read as they are
// now, as planPut reads the key: the commit is guarded (IfRev), so a
// record newer than the plan's revision fails it and the put decides
// again.
func (l *leases) recordOps(ctx context.Context, changes []leaseChange) ([]audit.Op, error) {
	byLease := map[int64][]leaseChange{}
	for _, c := range changes {
		byLease[c.lease] = append(byLease[c.lease], c)
	}
	var ops []audit.Op
	for _, id := range slices.Sorted(maps.Keys(byLease)) {
		rec, found, err := l.record(ctx, id, 0)
		if err != nil {
			return nil, err
		}
		switch {
		case found:
		case l.cl != nil:
			rec.TTL = l.cl.ttl(id)
		default:
			l.mu.Lock()
			if le := l.byID[id]; le != nil {
				rec.TTL = le.ttl
			}
			l.mu.Unlock()
		}
		if rec.Keys == nil {
			rec.Keys = map[string]int64{}
		}
		for _, c := range byLease[id] {
			if c.modRev == 0 {
				delete(rec.Keys, c.key)
			} else {
				rec.Keys[c.key] = c.modRev
			}
		}
		switch {
		case len(rec.Keys) > 0:
			doc, err := json.Marshal(rec)
			if err != nil {
				return nil, err
			}
			if limit := l.s.st.MaxValueSize(); len(doc) > limit {
				return nil, apierror.New(api.CodeTooLarge, "lease %d holds too many keys: its record (%s) would be %d bytes, over the value limit of %d; "+
					"attach the keys to another lease", id, keyspace.LeaseKey(id), len(doc), limit)
			}
			ops = append(ops, audit.Put(keyspace.LeaseKey(id), doc, "application/json"))
		case found:
			ops = append(ops, audit.Delete(keyspace.LeaseKey(id)))
		}
	}
	return ops, nil
}

// committed records changes, now committed, in the index. A key attached
// to a lease that ended meanwhile (its end read the store before the
// attaching revision) is ended at once.
func (l *leases) committed(changes []leaseChange) {
	if l.cl != nil {
		l.committedCluster(changes)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range changes {
		if c.modRev == 0 {
			if a, ok := l.keys[c.key]; ok && a.lease == c.lease {
				delete(l.keys, c.key)
			}
			continue
		}
		if a, ok := l.keys[c.key]; !ok || a.modRev <= c.modRev {
			l.keys[c.key] = attachment{lease: c.lease, modRev: c.modRev}
		}
		if l.byID[c.lease] == nil && !l.stopped {
			go l.expire(c.lease)
		}
	}
}

// expire ends lease id if its deadline has passed (a keep-alive may have
// come as the timer fired), as configd's own act.
func (l *leases) expire(id int64) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	le := l.byID[id]
	var ttl int64
	if le != nil {
		if le.ending {
			l.mu.Unlock()
			return
		}
		if left := time.Until(le.deadline); left > 0 {
			le.timer.Reset(left)
			l.mu.Unlock()
			return
		}
		ttl = le.ttl
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
	defer cancel()
	if _, err := l.end(ctx, id, expiredTxn(id, ttl), nil); err != nil && l.ctx.Err() == nil {
		l.s.opts.logger.Error("etcd api: an expired lease's keys are not deleted; trying again", "lease", id, "err", err)
		l.mu.Lock()
		if le := l.byID[id]; le != nil && !l.stopped {
			le.retry = min(max(2*le.retry, endRetry), maxEndRetry)
			le.timer.Reset(le.retry)
		}
		l.mu.Unlock()
	}
}

// expiredTxn is the revision that ends lease id of ttl when it expires:
// configd's own act.
func expiredTxn(id, ttl int64) audit.Txn {
	return audit.Txn{Actor: Origin, Origin: Origin, Reason: fmt.Sprintf("lease %d expired (TTL %ds, not kept alive)", id, ttl)}
}

// end ends lease id: its keys and its record are deleted in one revision
// (txn's actor, origin and reason), none when it has no keys. check, when
// set, may refuse a key's delete. It returns false when the lease was
// neither live nor recorded.
func (l *leases) end(ctx context.Context, id int64, txn audit.Txn, check func(key string) error) (bool, error) {
	l.mu.Lock()
	le := l.byID[id]
	if le != nil {
		if le.ending {
			l.mu.Unlock()
			return false, nil
		}
		le.ending = true
	}
	l.mu.Unlock()
	ended, err := l.commitEnd(ctx, id, txn, check)
	l.mu.Lock()
	if err != nil {
		if le != nil {
			le.ending = false
		}
		l.mu.Unlock()
		return false, err
	}
	if le != nil {
		le.timer.Stop()
		delete(l.byID, id)
	}
	for k, a := range l.keys {
		if a.lease == id {
			delete(l.keys, k)
		}
	}
	l.mu.Unlock()
	// A put that found the lease live before it was ending may have
	// committed its key after commitEnd read the store: end that key too.
	// One that commits after this read finds the lease gone (committed).
	if _, found, err := l.record(ctx, id, l.s.st.Rev()); err != nil || found {
		if err == nil {
			_, err = l.commitEnd(ctx, id, txn, nil)
		}
		if err != nil {
			l.s.opts.logger.Error("etcd api: a key attached to lease as it ended is not deleted", "lease", id, "err", err)
		}
	}
	return ended || le != nil, nil
}

// commitEnd commits the end of lease id, conditional on its record and
// its keys as read (a put attaching a key changes the record, one
// detaching a key changes the key): other writes meanwhile do not make it
// try again, so that a busy store does not starve an expiry.
func (l *leases) commitEnd(ctx context.Context, id int64, txn audit.Txn, check func(key string) error) (bool, error) {
	for attempt := 1; ; attempt++ {
		at := l.s.st.Rev()
		rec, found, err := l.record(ctx, id, at)
		if err != nil || !found {
			return false, err
		}
		ops, err := l.attached(ctx, rec, at)
		if err != nil {
			return false, err
		}
		for _, op := range ops {
			if check != nil {
				if err := check(op.Key); err != nil {
					return false, err
				}
			}
		}
		txn.Ops = append(ops, audit.Delete(keyspace.LeaseKey(id)).WithModRev(rec.modRev))
		_, err = l.s.st.Commit(ctx, txn)
		var ce *audit.ConflictError
		if errors.As(err, &ce) && attempt < maxTxnAttempts {
			continue
		}
		return err == nil, err
	}
}

// attached returns the deletes of rec's keys still attached at revision
// at, sorted, each conditional on the key's mod_rev as attached.
func (l *leases) attached(ctx context.Context, rec leaseRecord, at int64) ([]audit.Op, error) {
	var ops []audit.Op
	for _, k := range slices.Sorted(maps.Keys(rec.Keys)) {
		kv, err := l.s.st.Get(ctx, k, audit.AtRev(at))
		if errors.Is(err, audit.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if kv.ModRev == rec.Keys[k] {
			ops = append(ops, audit.Delete(k).WithModRev(kv.ModRev))
		}
	}
	return ops, nil
}

// leaseService is etcd's Lease service.
type leaseService struct {
	pb.UnimplementedLeaseServer
	*server
}

func (ls leaseService) LeaseGrant(ctx context.Context, req *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	id, ttl, err := ls.leases.grant(ctx, req.GetID(), req.GetTTL())
	if err != nil {
		return nil, ls.grpcError("LeaseGrant", err)
	}
	return &pb.LeaseGrantResponse{Header: ls.header(ls.st.Rev()), ID: id, TTL: ttl}, nil
}

// LeaseRevoke ends a lease: the token must be allowed to write each of
// its keys, as etcd asks.
func (ls leaseService) LeaseRevoke(ctx context.Context, req *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if err := ls.leases.check(); err != nil {
		return nil, err
	}
	txn := audit.Txn{Actor: ls.actor(ctx), Origin: Origin, Reason: fmt.Sprintf("lease %d revoked", req.GetID())}
	check := func(key string) error { return ls.check(ctx, api.PermissionWrite, key) }
	var (
		found bool
		err   error
	)
	if ls.leases.cl != nil {
		found, err = ls.leases.revokeCluster(ctx, req.GetID(), txn, check)
	} else {
		found, err = ls.leases.end(ctx, req.GetID(), txn, check)
	}
	if err == nil && !found {
		err = rpctypes.ErrGRPCLeaseNotFound
	}
	if err != nil {
		return nil, ls.grpcError("LeaseRevoke", err)
	}
	return &pb.LeaseRevokeResponse{Header: ls.header(ls.st.Rev())}, nil
}

func (ls leaseService) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	if err := ls.leases.check(); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ttl, err := ls.leases.keepAlive(stream.Context(), req.GetID())
		if err != nil {
			return ls.grpcError("LeaseKeepAlive", err)
		}
		if err := stream.Send(&pb.LeaseKeepAliveResponse{Header: ls.header(ls.st.Rev()), ID: req.GetID(), TTL: ttl}); err != nil {
			return err
		}
	}
}

// LeaseTimeToLive answers TTL -1 for a lease not found, as etcd does; the
// keys listed are those the token may read.
func (ls leaseService) LeaseTimeToLive(ctx context.Context, req *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := ls.leases.check(); err != nil {
		return nil, err
	}
	l := ls.leases
	if l.cl != nil {
		// The keys as new as the cluster's log.
		if err := ls.linearizable(ctx); err != nil {
			return nil, ls.grpcError("LeaseTimeToLive", err)
		}
	}
	at := ls.st.Rev()
	resp := &pb.LeaseTimeToLiveResponse{Header: ls.header(at), ID: req.GetID(), TTL: -1}
	if l.cl != nil {
		granted, left, ok, err := l.cl.timeToLive(ctx, req.GetID())
		if err != nil {
			return nil, ls.grpcError("LeaseTimeToLive", err)
		}
		if ok {
			resp.GrantedTTL, resp.TTL = granted, left
		}
	} else {
		l.mu.Lock()
		if le := l.byID[req.GetID()]; le != nil && !le.ending {
			resp.GrantedTTL = le.ttl
			resp.TTL = max(int64(math.Ceil(time.Until(le.deadline).Seconds())), 0)
		}
		l.mu.Unlock()
	}
	if resp.TTL < 0 || !req.GetKeys() {
		return resp, nil
	}
	rec, _, err := l.record(ctx, req.GetID(), at)
	if err != nil {
		return nil, ls.grpcError("LeaseTimeToLive", err)
	}
	ops, err := l.attached(ctx, rec, at)
	if err != nil {
		return nil, ls.grpcError("LeaseTimeToLive", err)
	}
	for _, op := range ops {
		if ls.check(ctx, api.PermissionRead, op.Key) == nil {
			resp.Keys = append(resp.Keys, ls.keys.out(op.Key))
		}
	}
	return resp, nil
}

func (ls leaseService) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := ls.leases.check(); err != nil {
		return nil, err
	}
	l := ls.leases
	var ids []int64
	if l.cl != nil {
		var err error
		if ids, err = l.cl.list(ctx); err != nil {
			return nil, ls.grpcError("LeaseLeases", err)
		}
	} else {
		l.mu.Lock()
		ids = slices.Sorted(maps.Keys(l.byID))
		l.mu.Unlock()
	}
	resp := &pb.LeaseLeasesResponse{Header: ls.header(ls.st.Rev())}
	for _, id := range ids {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
	}
	return resp, nil
}
