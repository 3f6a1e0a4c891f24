package etcdapi

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/writeops"
)

// kvService is etcd's KV service; RangeStream is not served.
type kvService struct {
	pb.UnimplementedKVServer
	*server
}

// keyRange is the keys an etcd request names: [key, end), or key alone
// when end is "", or none at all. configd lists them as the keys under
// prefix (the smallest segment prefix that holds the range) filtered by
// byte order: configd's keys sort bytewise (SQLite's BINARY order and
// Go's).
type keyRange struct {
	key, end string
	single   bool
	prefix   string
	// none: the range holds no key of configd's (one outside the etcd
	// API's key prefix, keyMap).
	none bool
}

// allFrom is etcd's range_end of "every key from key on".
const allFrom = "\x00"

// parseKeys reads a range of configd's keys, key and end (keyMap's
// parseRange maps an etcd request's onto them): configd's key rules apply
// to a single key; a range is any pair of bytes (empty when end <= key),
// but one that starts with '/' is refused, as a key is.
func (m keyMap) parseKeys(key, end string) (keyRange, error) {
	r := keyRange{key: key, end: end}
	if r.end == "" {
		r.single = true
		return r, m.checkKey(r.key, keyspace.Validate)
	}
	if strings.HasPrefix(r.key, "/") {
		return r, m.checkKey(r.key, keyspace.Validate)
	}
	if r.end == allFrom {
		return r, nil // prefix "": every key
	}
	// The longest segment prefix of key that holds every key up to end
	// (app/ for app/ .. app0, etcd's --prefix).
	for i := strings.LastIndexByte(r.key, '/'); i >= 0; i = strings.LastIndexByte(r.key[:i], '/') {
		if p := r.key[:i+1]; r.end <= keyspace.PrefixEnd(p) {
			r.prefix = p
			break
		}
	}
	if r.prefix != "" {
		if p, err := keyspace.Prefix(r.prefix); err != nil || p != r.prefix {
			// No key is under a prefix that breaks the key rules.
			return r, m.checkKey(strings.TrimSuffix(r.prefix, "/"), keyspace.Validate)
		}
	}
	return r, nil
}

// checkKey checks configd's key key with rule. Without a key prefix, it
// says how configd's keys differ from etcd's where they most often do: no
// leading '/'.
func (m keyMap) checkKey(key string, rule func(string) error) error {
	err := rule(key)
	if err != nil && m.prefix == "" && strings.HasPrefix(key, "/") {
		return apierror.WithKey(&apierror.Error{Code: api.CodeBadKey, Key: key, Message: fmt.Sprintf(
			"%v: configd's keys have no leading '/' (keys starting with '/' are configd's own records); write %q, "+
				"or run configd with --etcd-api-prefix / to show its keys to etcd's clients with one (see docs/compat.md)",
			err, strings.TrimLeft(key, "/"))}, key)
	}
	return apierror.WithKey(err, key)
}

// target is what a grant must cover to read or write the whole range (none
// needs no grant: see server.checkKeys).
func (r keyRange) target() string {
	if r.single {
		return r.key
	}
	return r.prefix
}

// holds reports whether key is in the range. configd's own keys are in
// none.
func (r keyRange) holds(key string) bool {
	if r.none || keyspace.Own(key) {
		return false
	}
	if r.single {
		return key == r.key
	}
	return key >= r.key && (r.end == allFrom || key < r.end) && keyspace.InPrefix(key, r.prefix)
}

// read returns the keys in r, sorted, at revision at (0: the current
// one), and the revision read.
func (s *server) read(ctx context.Context, r keyRange, at int64) ([]audit.KeyValue, int64, error) {
	var opts []audit.ReadOption
	if at > 0 {
		opts = append(opts, audit.AtRev(at))
	}
	if r.single {
		rev := at
		if rev == 0 {
			rev = s.st.Rev()
		}
		if !r.holds(r.key) {
			return nil, rev, nil
		}
		kv, err := s.st.Get(ctx, r.key, opts...) // checks at first
		if errors.Is(err, audit.ErrNotFound) {
			return nil, rev, nil
		}
		if err != nil {
			return nil, 0, err
		}
		return []audit.KeyValue{kv}, max(rev, kv.ModRev), nil
	}
	if r.none || r.end != allFrom && r.key >= r.end {
		return nil, cmp.Or(at, s.st.Rev()), s.checkRev(at)
	}
	kvs, rev, err := s.st.List(ctx, r.prefix, opts...)
	if err != nil {
		return nil, 0, err
	}
	kvs = slices.DeleteFunc(kvs, func(kv audit.KeyValue) bool { return !r.holds(kv.Key) })
	slices.SortFunc(kvs, func(a, b audit.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	return kvs, rev, nil
}

// checkRev checks a revision to read at, as the store does: 0 is the
// current one.
func (s *server) checkRev(at int64) error {
	switch {
	case at > s.st.Rev():
		return fmt.Errorf("%w: revision %d (current revision is %d)", audit.ErrFutureRevision, at, s.st.Rev())
	case at != 0 && at < s.st.Horizon():
		return fmt.Errorf("%w: revision %d is below the history horizon %d", audit.ErrRevisionGone, at, s.st.Horizon())
	}
	return nil
}

// plainSecret refuses a secret's value on a connection without TLS, as
// configd's other doors do.
func plainSecret(ctx context.Context, kvs []audit.KeyValue) error {
	if authz.SecureGRPC(ctx) {
		return nil
	}
	for _, kv := range kvs {
		if kv.Secret {
			return status.Error(codes.PermissionDenied, authz.PlainSecretMessage(kv.Key))
		}
	}
	return nil
}

// linearizable waits, on a replica of a configd cluster, until it has
// applied every write acknowledged before the call (etcd's default,
// linearizable reads); a store alone has them all.
func (s *server) linearizable(ctx context.Context) error {
	return core.ReadFence{Consistent: true}.Await(ctx, s.st, 0)
}

func (k kvService) Range(ctx context.Context, req *pb.RangeRequest) (*pb.RangeResponse, error) {
	if !req.GetSerializable() {
		if err := k.linearizable(ctx); err != nil {
			return nil, k.grpcError("Range", err)
		}
	}
	resp, err := k.rangeAt(ctx, req, req.GetRevision())
	if err != nil {
		return nil, k.grpcError("Range", err)
	}
	if req.GetRevision() != 0 {
		// As etcd: the header names the store's revision, not the
		// one the range was read at.
		resp.Header.Revision = max(resp.Header.Revision, k.st.Rev())
	}
	return resp, nil
}

// rangeAt answers req at revision at (0: the current one).
func (s *server) rangeAt(ctx context.Context, req *pb.RangeRequest, at int64) (*pb.RangeResponse, error) {
	kvs, _, rev, err := s.rangeKVs(ctx, req, at)
	if err != nil {
		return nil, err
	}
	return s.rangeResponse(ctx, req, kvs, rev)
}

// rangeKVs returns the keys of req's range at revision at (0: the current
// one), sorted by key, before its filters, sort and limit; the range; and
// the revision read.
func (s *server) rangeKVs(ctx context.Context, req *pb.RangeRequest, at int64) ([]audit.KeyValue, keyRange, int64, error) {
	r, err := s.keys.parseRange(req.GetKey(), req.GetRangeEnd())
	if err != nil {
		return nil, keyRange{}, 0, err
	}
	if err := s.checkKeys(ctx, api.PermissionRead, r); err != nil {
		return nil, keyRange{}, 0, err
	}
	if at < 0 {
		return nil, keyRange{}, 0, apierror.New(api.CodeBadRevision, "revision %d is negative", at)
	}
	kvs, rev, err := s.read(ctx, r, at)
	if err != nil {
		return nil, keyRange{}, 0, err
	}
	return kvs, r, rev, nil
}

// rangeResponse answers req with kvs, the keys of its range at revision
// rev sorted by key: its count, filters, sort, limit and keys-only.
func (s *server) rangeResponse(ctx context.Context, req *pb.RangeRequest, kvs []audit.KeyValue, rev int64) (*pb.RangeResponse, error) {
	count := len(kvs)
	kvs = slices.DeleteFunc(kvs, func(kv audit.KeyValue) bool {
		return req.MinModRevision > 0 && kv.ModRev < req.MinModRevision ||
			req.MaxModRevision > 0 && kv.ModRev > req.MaxModRevision ||
			req.MinCreateRevision > 0 && kv.CreateRev < req.MinCreateRevision ||
			req.MaxCreateRevision > 0 && kv.CreateRev > req.MaxCreateRevision
	})
	sortKVs(kvs, req.GetSortTarget(), req.GetSortOrder())
	resp := &pb.RangeResponse{Header: s.header(rev), Count: int64(count)}
	if req.GetCountOnly() {
		return resp, nil
	}
	if req.GetLimit() > 0 && int64(len(kvs)) > req.GetLimit() {
		kvs, resp.More = kvs[:req.GetLimit()], true
	}
	if !req.GetKeysOnly() {
		if err := plainSecret(ctx, kvs); err != nil {
			return nil, err
		}
	}
	resp.Kvs = make([]*mvccpb.KeyValue, len(kvs))
	for i, kv := range kvs {
		resp.Kvs[i] = s.keys.pbKV(kv, req.GetKeysOnly())
		resp.Kvs[i].Lease = s.leases.of(kv)
	}
	return resp, nil
}

// sortKVs sorts kvs (sorted by key) as etcd does: by key ascending unless
// asked otherwise; an order of NONE with another target is ascending.
func sortKVs(kvs []audit.KeyValue, target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) {
	if order == pb.RangeRequest_NONE {
		if target == pb.RangeRequest_KEY {
			return
		}
		order = pb.RangeRequest_ASCEND
	}
	cmp := func(a, b audit.KeyValue) int {
		switch target {
		case pb.RangeRequest_VERSION:
			return compareInt(a.Version, b.Version)
		case pb.RangeRequest_CREATE:
			return compareInt(a.CreateRev, b.CreateRev)
		case pb.RangeRequest_MOD:
			return compareInt(a.ModRev, b.ModRev)
		case pb.RangeRequest_VALUE:
			return bytes.Compare(a.Value, b.Value)
		}
		return strings.Compare(a.Key, b.Key)
	}
	slices.SortStableFunc(kvs, func(a, b audit.KeyValue) int {
		if order == pb.RangeRequest_DESCEND {
			return cmp(b, a)
		}
		return cmp(a, b)
	})
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// putOp is the op of an etcd put of configd's key key given the key's
// current value (nil: none). A put keeps the content type of the key it replaces, so that
// configd checks the new value as it checked the old; a new key is
// text/plain, or application/octet-stream when its value is not UTF-8.
func putOp(key string, req *pb.PutRequest, cur *audit.KeyValue) (writeops.Op, error) {
	if (req.GetIgnoreValue() || req.GetIgnoreLease()) && cur == nil {
		return writeops.Op{}, rpctypes.ErrGRPCKeyNotFound
	}
	if req.GetIgnoreValue() && len(req.GetValue()) > 0 {
		return writeops.Op{}, rpctypes.ErrGRPCValueProvided
	}
	if req.GetIgnoreLease() && req.GetLease() != 0 {
		return writeops.Op{}, rpctypes.ErrGRPCLeaseProvided
	}
	op := writeops.Op{Key: key, Value: req.GetValue()}
	switch {
	case cur != nil:
		op.ContentType = cur.ContentType
		if req.GetIgnoreValue() {
			op.Value = cur.Value
		}
	case utf8.Valid(op.Value):
		op.ContentType = audit.TypeText
	default:
		op.ContentType = audit.TypeBinary
	}
	if op.Value == nil {
		op.Value = []byte{}
	}
	return op, nil
}

// current returns key's current value, or nil.
func (s *server) current(ctx context.Context, key string) (*audit.KeyValue, error) {
	if keyspace.Own(key) {
		return nil, nil
	}
	kv, err := s.st.Get(ctx, key)
	if errors.Is(err, audit.ErrNotFound) || errors.Is(err, keyspace.ErrInvalidKey) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &kv, nil
}

func (k kvService) Put(ctx context.Context, req *pb.PutRequest) (*pb.PutResponse, error) {
	resp, err := k.put(ctx, req)
	if err != nil {
		return nil, k.grpcError("Put", err)
	}
	return resp, nil
}

// put writes one key: a txn of one put, so that ignore_value and prev_kv
// see the value they replace.
func (s *server) put(ctx context.Context, req *pb.PutRequest) (*pb.PutResponse, error) {
	t, err := s.txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: req}}}})
	if err != nil {
		return nil, err
	}
	resp := t.GetResponses()[0].GetResponsePut()
	resp.Header = t.GetHeader()
	return resp, nil
}

func (k kvService) DeleteRange(ctx context.Context, req *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	t, err := k.txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: req}}}})
	if err != nil {
		return nil, k.grpcError("DeleteRange", err)
	}
	resp := t.GetResponses()[0].GetResponseDeleteRange()
	resp.Header = t.GetHeader()
	return resp, nil
}

func (k kvService) Txn(ctx context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	resp, err := k.txn(ctx, req)
	if err != nil {
		return nil, k.grpcError("Txn", err)
	}
	return resp, nil
}

// Compact is refused: configd removes old history by itself, under its
// retention policy.
func (k kvService) Compact(ctx context.Context, req *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return nil, status.Errorf(codes.FailedPrecondition, "configd compacts its history by itself, under its retention policy "+
		"(--history-keep-revisions, --history-keep-age; history.keep_revisions, history.keep_age); etcd's Compact (to revision %d) is not served: "+
		"see docs/compat.md", req.GetRevision())
}
