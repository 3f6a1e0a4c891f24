// Package grpcapi is configd's gRPC API: the Config service (Get, List,
// Watch, which multiplexes watches on one stream, and the writes Put,
// Delete and Txn), the standard health service and reflection. It reads
// and writes the store and reads the watch hub through
// the interfaces it declares (Store, Hub), authenticates and limits calls
// with authz's interceptors, and answers errors as apierror classifies
// them.
package grpcapi

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/watchwire"
	"github.com/configd/configd/server/writeops"
	"github.com/configd/configd/watcher"
)

// Option configures the gRPC API.
type Option func(*options)

type options struct {
	progress time.Duration
	logger   *slog.Logger
	metrics  *watchwire.Metrics
	auth     *authz.Auth
	limits   *authz.Limits
	server   []grpc.ServerOption
	readWait time.Duration
}

// WithServerOptions adds options to the grpc.Server (transport
// credentials when the port mux terminates TLS).
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.server = append(o.server, opts...) }
}

// WithProgressInterval sets how often an idle watch receives a PROGRESS
// message with the current revision.
func WithProgressInterval(d time.Duration) Option {
	return func(o *options) { o.progress = d }
}

// WithLogger sets the gRPC API's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMetrics counts the watches and what they are sent in m, which the
// daemon shares with the HTTP API's watches.
func WithMetrics(m *watchwire.Metrics) Option { return func(o *options) { o.metrics = m } }

// WithGRPCAuth makes the gRPC API authenticate every call with the bearer
// token of its "authorization" metadata (the health service excepted) and
// check Get, List and Watch against the token's grants. nil leaves
// authentication off.
func WithAuth(a *authz.Auth) Option { return func(o *options) { o.auth = a } }

// WithGRPCLimits applies l to the gRPC API: calls are rate limited
// (codes.ResourceExhausted, with a retry-after header) and watches count
// towards the identity's maximum (CANCELED with code too_many_watches).
func WithLimits(l *authz.Limits) Option { return func(o *options) { o.limits = l } }

// Store is what the gRPC API reads of the store and how it writes it:
// audit.Store.
type Store interface {
	Rev() int64
	// Commit, MaxValueSize and SecretsEnabled serve the writes (Put,
	// Delete, Txn); writeops checks them with the last two.
	Commit(ctx context.Context, txn audit.Txn) (audit.Revision, error)
	writeops.Store
	Get(ctx context.Context, key string, opts ...audit.ReadOption) (audit.KeyValue, error)
	List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error)
	// WaitRev and Sync wait for a replica to catch up (core.ReadFence).
	WaitRev(ctx context.Context, rev int64) error
	Sync(ctx context.Context) (int64, error)
	// Replication says whether the store is a replica, whose watches may
	// name a revision it has not applied yet (core.AwaitWatch).
	Replication() audit.Replication
}

// directWrites is the store as the write door commits to it: a write that
// reaches a prefix whose policy takes changes only through change
// requests is refused (requests.Direct).
type directWrites struct {
	Store
	check *requests.Direct
}

func (d directWrites) Commit(ctx context.Context, txn audit.Txn) (audit.Revision, error) {
	return d.check.Commit(ctx, d.Store, txn)
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

// streamWorkers is how many calls run at once on reused goroutines: above
// the writers that keep a commit's batch full (see BENCHMARKS.md).
const streamWorkers = 128

// New returns a gRPC server with configd's Config service (Get, List,
// Watch, Put, Delete, Txn), the standard health service and reflection, over st and hub.
func New(st Store, hub Hub, opts ...Option) *grpc.Server {
	o := options{progress: watchwire.DefaultProgressInterval, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	auth := append(authz.ServerOptions(o.auth, o.limits), o.server...)
	gs := grpc.NewServer(append(auth,
		// A watcher is idle almost all the time: small per-connection
		// buffers, and a write buffer released after each flush, keep the
		// memory of 10,000 connected watchers low.
		grpc.ReadBufferSize(4<<10),
		grpc.WriteBufferSize(4<<10),
		grpc.SharedWriteBuffer(true),
		// Let clients ping every 10 s or more, even between calls, so that a
		// watcher behind a cut network notices within seconds; ping idle
		// clients ourselves every minute to drop dead connections.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		// A watch batch shared by many watches is encoded once.
		grpc.ForceServerCodecV2(newGRPCCodec()),
		// Calls run on long-lived workers whose stacks have grown, not on
		// a new goroutine each: growing a fresh goroutine's stack through
		// a call's handler cost 4% of the CPU of a write under load. A
		// call that finds every worker busy (watches hold theirs) gets a
		// goroutine of its own, as without workers.
		grpc.NumStreamWorkers(streamWorkers),
	)...)
	configdpb.RegisterConfigServer(gs, &configService{st: directWrites{Store: st, check: writeops.Direct(st)}, hub: hub, opts: o})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(configdpb.Config_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return gs
}

type configService struct {
	configdpb.UnimplementedConfigServer
	st   Store
	hub  Hub
	opts options
}

// grpcError is the gRPC answer to err (apierror.Classify); an internal
// error's cause goes to the log, not to the client.
func (s *configService) grpcError(method string, err error) error {
	c := apierror.Classify(err)
	if c.Internal {
		s.opts.logger.Error("grpc: "+method+" failed", "err", err)
	}
	return status.Error(c.GRPC, c.Message)
}

// errorCode is the API error code of a store error, for watch messages:
// the same as the HTTP API gives.
func errorCode(err error) string { return apierror.Classify(err).Code }

func pbKV(kv audit.KeyValue) *configdpb.KeyValue {
	return &configdpb.KeyValue{Key: kv.Key, Value: kv.Value, ContentType: kv.ContentType,
		CreateRev: kv.CreateRev, ModRev: kv.ModRev, Version: kv.Version}
}

func (s *configService) Get(ctx context.Context, req *configdpb.GetRequest) (*configdpb.GetResponse, error) {
	if err := s.awaitFence(ctx); err != nil {
		return nil, s.grpcError("Get", err)
	}
	rev := s.st.Rev()
	var opts []audit.ReadOption
	if req.GetRev() != 0 {
		rev = req.GetRev()
		opts = append(opts, audit.AtRev(rev))
	}
	kv, err := s.st.Get(ctx, req.GetKey(), opts...)
	if err != nil {
		return nil, s.grpcError("Get", err)
	}
	if kv.Secret && !authz.SecureGRPC(ctx) {
		return nil, status.Error(codes.PermissionDenied, authz.PlainSecretMessage(kv.Key))
	}
	return &configdpb.GetResponse{Kv: pbKV(kv), Rev: max(rev, kv.ModRev)}, nil
}

func (s *configService) List(ctx context.Context, req *configdpb.ListRequest) (*configdpb.ListResponse, error) {
	if err := s.awaitFence(ctx); err != nil {
		return nil, s.grpcError("List", err)
	}
	var opts []audit.ReadOption
	if req.GetRev() != 0 {
		opts = append(opts, audit.AtRev(req.GetRev()))
	}
	kvs, rev, err := s.st.List(ctx, req.GetPrefix(), opts...)
	if err != nil {
		return nil, s.grpcError("List", err)
	}
	if !authz.SecureGRPC(ctx) {
		for _, kv := range kvs {
			if kv.Secret {
				return nil, status.Error(codes.PermissionDenied, authz.PlainSecretMessage(kv.Key))
			}
		}
	}
	out := &configdpb.ListResponse{Rev: rev, Kvs: make([]*configdpb.KeyValue, len(kvs))}
	for i, kv := range kvs {
		out.Kvs[i] = pbKV(kv)
	}
	return out, nil
}
