package etcdapi

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/writeops"
)

// A transaction (and every Put and DeleteRange, each a transaction of one
// op) is decided optimistically: read the state at the store's revision
// R, evaluate the compares, pick each branch, build the writes from what
// was read, and commit them as one revision conditional on the store
// still being at R (audit.Txn.IfRev). When another revision came first,
// nothing was written: read again and decide again. So the compares
// (over single keys and ranges, nested txns included) and the writes are
// one atomic step, and of two racing compare-and-sets exactly one wins
// (the other, deciding again, finds its compare false). A transaction
// that writes nothing is answered from the reads at R, without a
// revision.

// maxTxnAttempts bounds the decisions of one transaction that keeps
// losing to other writes.
const maxTxnAttempts = 64

// txnPlan is one decision of a transaction: what it writes, and how to
// fill its responses once the revision is known.
type txnPlan struct {
	at     int64
	writes []writeops.Op
	// guard: what is written depends on what was read (compares, ranges,
	// prev_kv, ignore_value, deletes), so the commit needs IfRev.
	guard bool
	// fill completes the responses given the revision the transaction
	// is answered at.
	fill []func(ctx context.Context, rev int64) error
	// leases are the keys the writes attach to leases or detach from
	// them.
	leases []leaseChange
}

func (s *server) txn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := s.checkTxn(ctx, req); err != nil {
		return nil, err
	}
	if err := s.linearizable(ctx); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		p := &txnPlan{at: s.st.Rev()}
		resp, err := s.planTxn(ctx, p, req)
		if err != nil {
			return nil, err
		}
		rev := p.at
		if len(p.writes) > 0 {
			ops, err := writeops.Ops(s.st, p.writes)
			if err != nil {
				return nil, err
			}
			own, err := s.leases.recordOps(ctx, p.leases)
			if err != nil {
				return nil, err
			}
			var ifRev *int64
			if p.guard {
				ifRev = &p.at
			}
			r, err := s.commit(ctx, ops, own, ifRev)
			var ce *audit.ConflictError
			if errors.As(err, &ce) && ce.Key == "" {
				if attempt < maxTxnAttempts {
					continue
				}
				return nil, apierror.New(api.CodeConflict, "the keys changed under the transaction %d times in a row (other writes came first); retry", attempt)
			}
			if err != nil {
				return nil, err
			}
			rev = r.Rev
			s.leases.committed(p.leases)
		}
		for _, fill := range p.fill {
			if err := fill(ctx, rev); err != nil {
				return nil, err
			}
		}
		return resp, nil
	}
}

// checkTxn checks the grants of every op of req, in both branches, as
// etcd does (read for compares and ranges, write, which includes read,
// for puts and deletes), and that no branch writes a key twice (etcd's
// duplicate key).
func (s *server) checkTxn(ctx context.Context, req *pb.TxnRequest) error {
	for _, branch := range [][]*pb.RequestOp{req.GetSuccess(), req.GetFailure()} {
		var puts []string
		var dels []keyRange
		if err := s.writesOf(branch, &puts, &dels); err != nil {
			return err
		}
		slices.Sort(puts)
		for i, k := range puts {
			if i > 0 && puts[i-1] == k || slices.ContainsFunc(dels, func(r keyRange) bool { return r.holds(k) || r.single && r.key == k }) {
				return rpctypes.ErrGRPCDuplicateKey
			}
		}
	}
	for _, c := range req.GetCompare() {
		if err := s.checkRange(ctx, c.GetKey(), c.GetRangeEnd(), api.PermissionRead); err != nil {
			return err
		}
	}
	for _, op := range append(append([]*pb.RequestOp(nil), req.GetSuccess()...), req.GetFailure()...) {
		var err error
		switch o := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			err = s.checkRange(ctx, o.RequestRange.GetKey(), o.RequestRange.GetRangeEnd(), api.PermissionRead)
		case *pb.RequestOp_RequestPut:
			err = s.checkRange(ctx, o.RequestPut.GetKey(), nil, api.PermissionWrite)
		case *pb.RequestOp_RequestDeleteRange:
			err = s.checkRange(ctx, o.RequestDeleteRange.GetKey(), o.RequestDeleteRange.GetRangeEnd(), api.PermissionWrite)
		case *pb.RequestOp_RequestTxn:
			err = s.checkTxn(ctx, o.RequestTxn)
		default:
			err = apierror.BadRequest("a txn op has no request")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writesOf adds the keys that the ops of one branch put, and the ranges
// they delete, nested txns' branches included.
func (s *server) writesOf(ops []*pb.RequestOp, puts *[]string, dels *[]keyRange) error {
	for _, op := range ops {
		switch o := op.GetRequest().(type) {
		case *pb.RequestOp_RequestPut:
			r, err := s.keys.parseRange(o.RequestPut.GetKey(), nil)
			if err != nil {
				return err
			}
			*puts = append(*puts, r.key)
		case *pb.RequestOp_RequestDeleteRange:
			r, err := s.keys.parseRange(o.RequestDeleteRange.GetKey(), o.RequestDeleteRange.GetRangeEnd())
			if err != nil {
				return err
			}
			*dels = append(*dels, r)
		case *pb.RequestOp_RequestTxn:
			for _, b := range [][]*pb.RequestOp{o.RequestTxn.GetSuccess(), o.RequestTxn.GetFailure()} {
				if err := s.writesOf(b, puts, dels); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *server) checkRange(ctx context.Context, key, end []byte, perm string) error {
	r, err := s.keys.parseRange(key, end)
	if err != nil {
		return err
	}
	return s.checkKeys(ctx, perm, r)
}

// checkKeys checks that the call's token may perm the whole of r; a range
// that holds no key needs no grant.
func (s *server) checkKeys(ctx context.Context, perm string, r keyRange) error {
	if r.none {
		return nil
	}
	return s.check(ctx, perm, r.target())
}

// planTxn decides req at p.at: its compares, then the ops of its branch.
func (s *server) planTxn(ctx context.Context, p *txnPlan, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	ok := true
	for _, c := range req.GetCompare() {
		p.guard = true
		holds, err := s.compare(ctx, c, p.at)
		if err != nil {
			return nil, err
		}
		if !holds {
			ok = false
			break
		}
	}
	branch := req.GetSuccess()
	if !ok {
		branch = req.GetFailure()
	}
	resp := &pb.TxnResponse{Succeeded: ok, Responses: make([]*pb.ResponseOp, len(branch))}
	p.fill = append(p.fill, func(_ context.Context, rev int64) error {
		resp.Header = s.header(rev)
		return nil
	})
	for i, op := range branch {
		out, err := s.planOp(ctx, p, op)
		if err != nil {
			return nil, err
		}
		resp.Responses[i] = out
	}
	return resp, nil
}

func (s *server) planOp(ctx context.Context, p *txnPlan, op *pb.RequestOp) (*pb.ResponseOp, error) {
	switch o := op.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		return s.planRange(ctx, p, o.RequestRange)
	case *pb.RequestOp_RequestPut:
		return s.planPut(ctx, p, o.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return s.planDelete(ctx, p, o.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		t, err := s.planTxn(ctx, p, o.RequestTxn)
		if err != nil {
			return nil, err
		}
		return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: t}}, nil
	}
	return nil, apierror.BadRequest("a txn op has no request")
}

// planRange answers a range as etcd does: after the writes of the ops
// before it in the transaction, not those after (a range of its own
// revision reads that revision).
func (s *server) planRange(ctx context.Context, p *txnPlan, req *pb.RangeRequest) (*pb.ResponseOp, error) {
	p.guard = true
	switch rev := req.GetRevision(); {
	case rev > p.at:
		return nil, rpctypes.ErrGRPCFutureRev
	case rev > 0 && rev < s.st.Horizon():
		return nil, rpctypes.ErrGRPCCompacted
	}
	if !req.GetKeysOnly() && !req.GetCountOnly() && !authz.SecureGRPC(ctx) {
		// A secret's value would be refused once the writes are made:
		// refuse it before (the txn's writes make no key secret).
		if _, err := s.rangeAt(ctx, req, cmp.Or(req.GetRevision(), p.at)); err != nil {
			return nil, err
		}
	}
	out := &pb.ResponseOp_ResponseRange{}
	before := len(p.writes) // the writes of the ops before it
	p.fill = append(p.fill, func(ctx context.Context, rev int64) error {
		if req.GetRevision() > 0 || before == len(p.writes) {
			// Of its own revision, or after every write: the revision.
			r, err := s.rangeAt(ctx, req, cmp.Or(req.GetRevision(), rev))
			out.ResponseRange = r
			return err
		}
		// Among the writes, which committed at rev on condition that the
		// store was at p.at (the guard): p.at with the writes before it.
		kvs, r, _, err := s.rangeKVs(ctx, req, p.at)
		if err != nil {
			return err
		}
		out.ResponseRange, err = s.rangeResponse(ctx, req, overlay(kvs, r, p.writes[:before], rev), rev)
		return err
	})
	return &pb.ResponseOp{Response: out}, nil
}

// overlay returns kvs, the keys of r sorted by key, after writes,
// committed at revision rev. A put of the value a key holds changes
// nothing, as in the store.
func overlay(kvs []audit.KeyValue, r keyRange, writes []writeops.Op, rev int64) []audit.KeyValue {
	m := make(map[string]audit.KeyValue, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv
	}
	for _, w := range writes {
		if !r.holds(w.Key) {
			continue
		}
		prior, ok := m[w.Key]
		switch {
		case w.Delete:
			delete(m, w.Key)
		case ok && bytes.Equal(prior.Value, w.Value):
		case ok:
			prior.Value, prior.ModRev, prior.Version = w.Value, rev, prior.Version+1
			m[w.Key] = prior
		default:
			m[w.Key] = audit.KeyValue{Key: w.Key, Value: w.Value, ContentType: w.ContentType, CreateRev: rev, ModRev: rev, Version: 1}
		}
	}
	out := make([]audit.KeyValue, 0, len(m))
	for _, kv := range m {
		out = append(out, kv)
	}
	slices.SortFunc(out, func(a, b audit.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func (s *server) planPut(ctx context.Context, p *txnPlan, req *pb.PutRequest) (*pb.ResponseOp, error) {
	key, err := s.keys.key(req.GetKey(), keyspace.ValidateNew)
	if err != nil {
		return nil, err
	}
	// The key's current value, from memory, rather than its value at p.at,
	// which the database answers once it has taken every durable revision
	// (a wait for the journal to settle on every put). What a put takes
	// from the value it replaces cannot be older than p.at: when it is
	// newer, another revision came after p.at, and a guarded commit (IfRev)
	// fails and the put decides again; an unguarded one takes only the
	// content type, and the newest is the one to keep.
	cur, err := s.current(ctx, key)
	if err != nil {
		return nil, err
	}
	var kvs []audit.KeyValue
	if cur != nil {
		kvs = []audit.KeyValue{*cur}
	}
	op, err := putOp(key, req, cur)
	if err != nil {
		return nil, err
	}
	if err := s.planLease(ctx, p, req, cur, op); err != nil {
		return nil, err
	}
	out := &pb.PutResponse{}
	if req.GetPrevKv() || req.GetIgnoreValue() || req.GetIgnoreLease() {
		p.guard = true
	}
	if req.GetPrevKv() && cur != nil {
		if err := plainSecret(ctx, kvs); err != nil {
			return nil, err
		}
		out.PrevKv = s.keys.pbKV(*cur, false)
		out.PrevKv.Lease = s.leases.of(*cur)
	}
	p.writes = append(p.writes, op)
	p.fill = append(p.fill, func(_ context.Context, rev int64) error {
		out.Header = s.header(rev)
		return nil
	})
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: out}}, nil
}

// planLease attaches the key op puts to the lease req names (or, with
// ignore_lease, to the key's own), detaching it from the lease it had:
// a put without a lease detaches it, as in etcd.
func (s *server) planLease(ctx context.Context, p *txnPlan, req *pb.PutRequest, cur *audit.KeyValue, op writeops.Op) error {
	var old int64
	if cur != nil {
		old = s.leases.of(*cur)
	}
	lease := req.GetLease()
	if req.GetIgnoreLease() {
		lease = old
	}
	if lease != 0 {
		if err := s.leases.live(ctx, lease); err != nil {
			return err
		}
		// The key's mod_rev once written: the store leaves an unchanged
		// value's as it is (putOp keeps the key's content type).
		modRev := p.at + 1
		if cur != nil && bytes.Equal(cur.Value, op.Value) {
			modRev = cur.ModRev
		}
		p.leases = append(p.leases, leaseChange{lease: lease, key: op.Key, modRev: modRev})
	}
	if old != 0 && old != lease {
		p.leases = append(p.leases, leaseChange{lease: old, key: op.Key})
	}
	if len(p.leases) > 0 {
		p.guard = true // the records are written from what was read at p.at
	}
	return nil
}

func (s *server) planDelete(ctx context.Context, p *txnPlan, req *pb.DeleteRangeRequest) (*pb.ResponseOp, error) {
	p.guard = true
	r, err := s.keys.parseRange(req.GetKey(), req.GetRangeEnd())
	if err != nil {
		return nil, err
	}
	kvs, _, err := s.read(ctx, r, p.at)
	if err != nil {
		return nil, err
	}
	out := &pb.DeleteRangeResponse{Deleted: int64(len(kvs))}
	if req.GetPrevKv() {
		if err := plainSecret(ctx, kvs); err != nil {
			return nil, err
		}
		out.PrevKvs = make([]*mvccpb.KeyValue, len(kvs))
		for i, kv := range kvs {
			out.PrevKvs[i] = s.keys.pbKV(kv, false)
		}
	}
	for _, kv := range kvs {
		p.writes = append(p.writes, writeops.Op{Delete: true, Key: kv.Key})
		if old := s.leases.of(kv); old != 0 {
			p.leases = append(p.leases, leaseChange{lease: old, key: kv.Key})
		}
	}
	p.fill = append(p.fill, func(_ context.Context, rev int64) error {
		out.Header = s.header(rev)
		return nil
	})
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: out}}, nil
}

// compare evaluates c at revision at, as etcd does: over a range, every
// key must satisfy it; with no key, a value compare fails and the others
// compare the zero revisions and version.
func (s *server) compare(ctx context.Context, c *pb.Compare, at int64) (bool, error) {
	r, err := s.keys.parseRange(c.GetKey(), c.GetRangeEnd())
	if err != nil {
		return false, err
	}
	kvs, _, err := s.read(ctx, r, at)
	if err != nil {
		return false, err
	}
	if len(kvs) == 0 {
		if c.GetTarget() == pb.Compare_VALUE {
			return false, nil
		}
		return compareKV(c, audit.KeyValue{}, 0), nil
	}
	for _, kv := range kvs {
		if !compareKV(c, kv, s.leases.of(kv)) {
			return false, nil
		}
	}
	return true, nil
}

// compareKV compares kv, whose lease is lease, as c asks.
func compareKV(c *pb.Compare, kv audit.KeyValue, lease int64) bool {
	var n int
	switch c.GetTarget() {
	case pb.Compare_VALUE:
		n = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_VERSION:
		n = compareInt(kv.Version, c.GetVersion())
	case pb.Compare_CREATE:
		n = compareInt(kv.CreateRev, c.GetCreateRevision())
	case pb.Compare_MOD:
		n = compareInt(kv.ModRev, c.GetModRevision())
	case pb.Compare_LEASE:
		n = compareInt(lease, c.GetLease())
	}
	switch c.GetResult() {
	case pb.Compare_EQUAL:
		return n == 0
	case pb.Compare_NOT_EQUAL:
		return n != 0
	case pb.Compare_GREATER:
		return n > 0
	case pb.Compare_LESS:
		return n < 0
	}
	return false
}
