// Package etcdapi is configd's etcd v3 API: etcd's gRPC services
// (etcdserverpb) served over configd's store and watch hub, on configd's
// own port, so that etcdctl and etcd's client libraries read, write and
// watch configd's keys. KV (Range, Put, DeleteRange, Txn), Watch, Lease
// (lease.go), Maintenance.Status, Maintenance.Alarm (listing none),
// Cluster.MemberList and Auth.Authenticate are served;
// every other RPC answers Unimplemented with its name (docs/compat.md has
// the table).
//
// Every write is an ordinary configd revision (actor: the token's name, or
// etcd-api@<peer address> with authentication off; origin etcd-api), made
// with the rules of every door (writeops.Direct: the policies and running
// rollouts), and refused in
// configd's words (apierror), mapped onto etcd's errors where etcd has one
// (a compacted or future revision). Grants are checked here, per request,
// against what it reads or writes; authz's interceptors have authenticated
// the call by its etcd token.
package etcdapi

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/watchwire"
	"github.com/configd/configd/server/writeops"
	"github.com/configd/configd/watcher"
)

// Origin is the origin recorded for the writes made through the etcd API.
const Origin = "etcd-api"

// APIVersion is the etcd API level served, as Maintenance.Status reports
// it (etcd's own version string: clients read it as such). configd's own
// version is not in the answer: GET /v1/version has it.
const APIVersion = "3.5.0"

// Store is what the etcd API reads of the store and how it writes it:
// audit.Store.
type Store interface {
	Rev() int64
	Horizon() int64
	Path() string
	Get(ctx context.Context, key string, opts ...audit.ReadOption) (audit.KeyValue, error)
	List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error)
	Revision(ctx context.Context, rev int64) (audit.Revision, error)
	Commit(ctx context.Context, txn audit.Txn) (audit.Revision, error)
	writeops.Store
	// WaitRev and Sync serve the linearizable reads of a replica
	// (core.ReadFence).
	WaitRev(ctx context.Context, rev int64) error
	Sync(ctx context.Context) (int64, error)
	// Replication names the cluster of a replica, for its cluster ID.
	Replication() audit.Replication
}

// Hub is the watch hub the Watch RPC reads: watcher.Hub.
type Hub interface {
	Rev() int64
	Watch(ctx context.Context, f watcher.Filter, since int64, opts ...watcher.WatchOption) (*watcher.Watcher, error)
}

var (
	_ Store = (*audit.Store)(nil)
	_ Hub   = (*watcher.Hub)(nil)
)

// Option configures the etcd API.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	auth     *authz.Auth
	limits   *authz.Limits
	progress time.Duration
	metrics  *watchwire.Metrics
	keys     keyMap
	// cluster and clusterPrefix: WithCluster (lease_cluster.go).
	cluster       *clientv3.Client
	clusterPrefix string
}

// WithKeyPrefix shows configd's key K to etcd's clients as prefix+K (as
// etcd's client-side namespace would): every key a request names must
// start with prefix, which is removed; every key answered has it added. A
// range is cut to the keys that start with prefix. "" (the default) shows
// configd's keys as they are.
func WithKeyPrefix(prefix string) Option { return func(o *options) { o.keys = keyMap{prefix: prefix} } }

// WithMetrics counts the etcd watches and what they are sent in m, with
// configd's own watches.
func WithMetrics(m *watchwire.Metrics) Option { return func(o *options) { o.metrics = m } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithAuth checks every request against the grants of the token
// authz's interceptors authenticated (the same Auth as the gRPC server's
// WithAuth); nil leaves authentication off, and Auth.Authenticate then
// answers etcd's "authentication is not enabled".
func WithAuth(a *authz.Auth) Option { return func(o *options) { o.auth = a } }

// WithLimits counts watches towards the identity's maximum, as configd's
// own watches do.
func WithLimits(l *authz.Limits) Option { return func(o *options) { o.limits = l } }

// WithProgressInterval sets how often a watch created with
// progress_notify is told the revision while idle (default: configd's
// watches' interval).
func WithProgressInterval(d time.Duration) Option { return func(o *options) { o.progress = d } }

// server serves etcd's services over one store and hub.
type server struct {
	st     Store
	direct *requests.Direct
	hub    Hub
	opts   options
	// member and cluster are this configd's etcd IDs (see ids).
	member, cluster uint64
	leases          *leases
	// keys maps the etcd API's keys onto configd's (WithKeyPrefix).
	keys keyMap
	// shared: the watch messages of the newest revisions, encoded once.
	shared sharedMsgs
}

// Register registers etcd's KV, Watch, Lease, Cluster, Maintenance and
// Auth services on gs, over st and hub. gs must have authz's interceptors
// (authz.ServerOptions) with the same Auth, and the interceptors of
// ServerOptions. The leases start at once (those of st's records with
// their full TTL); stop stops their expiry, when the server stops.
func Register(gs *grpc.Server, st Store, hub Hub, opts ...Option) (stop func()) {
	o := options{logger: slog.Default(), progress: watchwire.DefaultProgressInterval}
	for _, opt := range opts {
		opt(&o)
	}
	s := &server{st: st, direct: writeops.Direct(st), hub: hub, opts: o, keys: o.keys}
	s.member, s.cluster = ids(st.Path(), st.Replication().Cluster)
	s.leases = newLeases(context.Background(), s)
	pb.RegisterKVServer(gs, kvService{server: s})
	pb.RegisterWatchServer(gs, watchService{server: s})
	pb.RegisterLeaseServer(gs, leaseService{server: s})
	pb.RegisterClusterServer(gs, clusterService{server: s})
	pb.RegisterMaintenanceServer(gs, maintenanceService{server: s})
	pb.RegisterAuthServer(gs, authService{server: s})
	return s.leases.close
}

// ids derives this configd's etcd member and cluster IDs, never 0: the
// member's from its database's absolute path (stable across restarts of
// the same data dir, different for two configds on one host); the
// cluster's from the log's identity for a replica of a configd cluster
// (every replica gives the same), else from the path too.
func ids(path, cluster string) (memberID, clusterID uint64) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	h := func(s string) uint64 {
		f := fnv.New64a()
		f.Write([]byte(s))
		return max(f.Sum64(), 1)
	}
	if cluster == "" {
		cluster = "path:" + path
	}
	return h("member:" + path), h("cluster:" + cluster)
}

// header is the response header at revision rev.
func (s *server) header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: s.cluster, MemberId: s.member, Revision: rev, RaftTerm: 1}
}

// ServerOptions are the gRPC server options the etcd API needs on the
// server it is registered on: a message that names the RPC on every etcd
// RPC configd does not serve.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(unimplementedUnary), grpc.ChainStreamInterceptor(unimplementedStream)}
}

const etcdServices = "/etcdserverpb."

func unimplemented(method string, err error) error {
	// Only the generated stubs' answer ("method X not implemented"): an
	// Unimplemented of a served RPC (a put with a lease) says more.
	st, _ := status.FromError(err)
	if st.Code() != codes.Unimplemented || !strings.HasPrefix(method, etcdServices) || !strings.HasPrefix(st.Message(), "method ") {
		return err
	}
	return status.Errorf(codes.Unimplemented, "%s is not served by configd's etcd API (configd serves KV, Watch, "+
		"Lease, Maintenance.Status, Maintenance.Alarm (list), Cluster.MemberList and Auth.Authenticate; see docs/compat.md)", strings.TrimPrefix(method, "/"))
}

func unimplementedUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, unimplemented(info.FullMethod, err)
}

func unimplementedStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return unimplemented(info.FullMethod, handler(srv, ss))
}

// grpcError is the gRPC answer to err: etcd's own error where etcd has
// one that its clients recognise (a compacted or future revision),
// otherwise configd's (apierror.Classify). An internal error's cause goes
// to the log.
func (s *server) grpcError(method string, err error) error {
	if st, ok := status.FromError(err); ok {
		return st.Err() // etcd's own, or decided here
	}
	switch {
	case errors.Is(err, audit.ErrRevisionGone):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, audit.ErrFutureRevision):
		return rpctypes.ErrGRPCFutureRev
	}
	c := apierror.Classify(err)
	if c.Internal {
		s.opts.logger.Error("etcd api: "+method+" failed", "err", err)
	}
	return status.Error(c.GRPC, c.Message)
}

// check checks that the call's token may perm target (a key, or a
// canonical prefix); nil with authentication off.
func (s *server) check(ctx context.Context, perm, target string) error {
	if s.opts.auth == nil {
		return nil
	}
	return s.opts.auth.Check(authz.PrincipalFrom(ctx), perm, target)
}

// actor is who a write is by: the token's name (authz's interceptors put
// it in ctx), or etcd-api@<peer address> with authentication off.
func (s *server) actor(ctx context.Context) string {
	if s.opts.auth != nil {
		return authz.ActorFrom(ctx)
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return Origin + "@" + p.Addr.String()
	}
	return Origin
}

// metadataReason carries a write's reason, as X-Configd-Reason does over
// HTTP.
var metadataReason = strings.ToLower(api.HeaderReason)

// commit commits ops as one revision by the call's actor, with the reason
// of the x-configd-reason metadata, through the change-request policies
// (requests.Direct), with own, configd's own records that go with them
// (the leases'), which the policies do not see; ifRev, when set, is
// audit.Txn.IfRev.
func (s *server) commit(ctx context.Context, ops, own []audit.Op, ifRev *int64) (audit.Revision, error) {
	txn := audit.Txn{Actor: s.actor(ctx), Origin: Origin, Ops: ops, IfRev: ifRev}
	if v := metadata.ValueFromIncomingContext(ctx, metadataReason); len(v) > 0 {
		txn.Reason = v[0]
	}
	return s.direct.Commit(ctx, s.st, txn, own...)
}
