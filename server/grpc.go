package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/watcher"
)

// DefaultProgressInterval is how often an idle watch is told the current
// revision.
const DefaultProgressInterval = 10 * time.Second

// GRPCOption configures the gRPC API.
type GRPCOption func(*grpcOptions)

type grpcOptions struct {
	progress time.Duration
	logger   *slog.Logger
	metrics  *watchMetrics
	auth     *authz.Auth
	limits   *authz.Limits
	server   []grpc.ServerOption
}

// withGRPCServerOptions adds options to the grpc.Server (transport
// credentials when the port mux terminates TLS).
func withGRPCServerOptions(opts ...grpc.ServerOption) GRPCOption {
	return func(o *grpcOptions) { o.server = append(o.server, opts...) }
}

// WithProgressInterval sets how often an idle watch receives a PROGRESS
// message with the current revision.
func WithProgressInterval(d time.Duration) GRPCOption {
	return func(o *grpcOptions) { o.progress = d }
}

// WithGRPCLogger sets the gRPC API's logger.
func WithGRPCLogger(l *slog.Logger) GRPCOption { return func(o *grpcOptions) { o.logger = l } }

func withWatchMetrics(m *watchMetrics) GRPCOption { return func(o *grpcOptions) { o.metrics = m } }

// WithGRPCAuth makes the gRPC API authenticate every call with the bearer
// token of its "authorization" metadata (the health service excepted) and
// check Get, List and Watch against the token's grants. nil leaves
// authentication off.
func WithGRPCAuth(a *authz.Auth) GRPCOption { return func(o *grpcOptions) { o.auth = a } }

// WithGRPCLimits applies l to the gRPC API: calls are rate limited
// (codes.ResourceExhausted, with a retry-after header) and watches count
// towards the identity's maximum (CANCELED with code too_many_watches).
func WithGRPCLimits(l *authz.Limits) GRPCOption { return func(o *grpcOptions) { o.limits = l } }

// NewGRPCServer returns a gRPC server with configd's Config service (Get,
// List, Watch), the standard health service and reflection.
func NewGRPCServer(st *audit.Store, hub *watcher.Hub, opts ...GRPCOption) *grpc.Server {
	o := grpcOptions{progress: DefaultProgressInterval, logger: slog.Default()}
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
	)...)
	configdpb.RegisterConfigServer(gs, &configService{st: st, hub: hub, opts: o})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(configdpb.Config_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return gs
}

type configService struct {
	configdpb.UnimplementedConfigServer
	st   *audit.Store
	hub  *watcher.Hub
	opts grpcOptions
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

// watchControl is a request from the stream's receive loop to its sender.
type watchControl struct {
	id      int64
	w       *watcher.Watcher  // a new watch, or nil for a cancel
	rules   *authz.WatchRules // w's
	refuse  error             // a create that failed
	release func()            // ends w's count towards the identity's maximum
}

type streamWatch struct {
	w        *watcher.Watcher
	rules    *authz.WatchRules
	release  func()
	lastRev  int64 // the last revision sent
	sentTick bool  // something was sent since the last progress tick
}

// close ends the watch and frees its place.
func (sw *streamWatch) close(m *watchMetrics) {
	sw.w.Close()
	sw.rules.Close()
	sw.release()
	m.watchers(-1)
}

// Watch serves one stream: a receive loop that creates and cancels watches,
// and this goroutine, the only one that sends, which drains every watch of
// the stream when any of them has news.
func (s *configService) Watch(stream configdpb.Config_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	notify := make(chan struct{}, 1)
	ctrl := make(chan watchControl, 16)
	recvErr := make(chan error, 1)
	go s.watchRecv(ctx, stream, notify, ctrl, recvErr)

	watches := map[int64]*streamWatch{}
	defer func() {
		for _, sw := range watches {
			sw.close(s.opts.metrics)
		}
	}()
	ticker := time.NewTicker(s.opts.progress)
	defer ticker.Stop()
	for {
		select {
		case c := <-ctrl:
			if err := s.control(stream, watches, c); err != nil {
				return err
			}
		case <-notify:
			for id, sw := range watches {
				if err := s.drain(stream, watches, id, sw); err != nil {
					return err
				}
			}
		case <-ticker.C:
			// Read the hub's revision first: every batch up to it is then
			// queued, so once drained, PROGRESS at that revision is true.
			rev := s.hub.Rev()
			for id, sw := range watches {
				if err := s.drain(stream, watches, id, sw); err != nil {
					return err
				}
				if _, still := watches[id]; !still || sw.sentTick || rev <= sw.lastRev {
					sw.sentTick = false
					continue
				}
				sw.lastRev = rev
				if err := stream.Send(&configdpb.WatchResponse{WatchId: id, Kind: configdpb.WatchResponse_PROGRESS, Rev: rev}); err != nil {
					return err
				}
			}
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (s *configService) control(stream configdpb.Config_WatchServer, watches map[int64]*streamWatch, c watchControl) error {
	switch {
	case c.refuse != nil:
		return stream.Send(&configdpb.WatchResponse{WatchId: c.id, Kind: configdpb.WatchResponse_CANCELED,
			Rev: s.hub.Rev(), Error: c.refuse.Error(), Code: errorCode(c.refuse)})
	case c.w != nil:
		if old, dup := watches[c.id]; dup {
			old.close(s.opts.metrics)
		}
		sw := &streamWatch{w: c.w, rules: c.rules, release: c.release}
		watches[c.id] = sw
		s.opts.metrics.watchers(1)
		if err := stream.Send(&configdpb.WatchResponse{WatchId: c.id, Kind: configdpb.WatchResponse_CREATED, Rev: s.hub.Rev()}); err != nil {
			return err
		}
		return s.drain(stream, watches, c.id, sw)
	default:
		if sw, ok := watches[c.id]; ok {
			sw.close(s.opts.metrics)
			delete(watches, c.id)
		}
		return stream.Send(&configdpb.WatchResponse{WatchId: c.id, Kind: configdpb.WatchResponse_CANCELED, Rev: s.hub.Rev()})
	}
}

// drain sends every batch queued for one watch.
func (s *configService) drain(stream configdpb.Config_WatchServer, watches map[int64]*streamWatch, id int64, sw *streamWatch) error {
	// refuse ends the watch with a refusal of its rules: a revoked token
	// ends the whole stream (UNAUTHENTICATED), as it would any new watch;
	// anything else (grants narrowed, a secret on a plain connection)
	// cancels this watch, and the stream's others go on.
	refuse := func(err error) error {
		delete(watches, id)
		sw.close(s.opts.metrics)
		if errorCode(err) == api.CodeUnauthenticated {
			return status.Error(codes.Unauthenticated, err.Error())
		}
		return stream.Send(&configdpb.WatchResponse{WatchId: id, Kind: configdpb.WatchResponse_CANCELED,
			Rev: sw.lastRev, Error: err.Error(), Code: errorCode(err)})
	}
	if err := sw.rules.Check(); err != nil {
		return refuse(err) // woken by its token's revocation or new grants
	}
	for {
		b, ok, err := sw.w.TryNext()
		if !ok {
			if err != nil && !errors.Is(err, watcher.ErrResync) {
				// The hub is closing: the server is shutting down.
				return status.Error(codes.Unavailable, "configd is shutting down")
			}
			return nil
		}
		if err := sw.rules.Admit(b); err != nil {
			return refuse(err)
		}
		var msg any = &sharedResponse{id: id, msg: protoMessage(b)}
		if b.Kind == watcher.KindResync {
			delete(watches, id)
			sw.close(s.opts.metrics)
			m := pbBatch(id, b)
			m.Error = "watch fell behind; create it again from the last applied revision"
			msg = m
		}
		if err := stream.SendMsg(msg); err != nil {
			return err
		}
		s.opts.metrics.sent(b)
		sw.lastRev, sw.sentTick = b.Rev, true
		if b.Kind == watcher.KindResync {
			return nil
		}
	}
}

func pbBatch(id int64, b watcher.Batch) *configdpb.WatchResponse {
	msg := &configdpb.WatchResponse{WatchId: id, Rev: b.Rev, Actor: b.Actor, Origin: b.Origin}
	switch b.Kind {
	case watcher.KindSnapshot:
		msg.Kind = configdpb.WatchResponse_SNAPSHOT
	case watcher.KindResync:
		msg.Kind = configdpb.WatchResponse_RESYNC
	default:
		msg.Kind = configdpb.WatchResponse_CHANGES
	}
	msg.Events = make([]*configdpb.Event, len(b.Events))
	for i, e := range b.Events {
		ev := &configdpb.Event{Kv: &configdpb.KeyValue{Key: e.Key}}
		if e.Type == audit.OpDelete {
			ev.Type = configdpb.Event_DELETE
		} else {
			ev.Kv.Value, ev.Kv.ContentType = e.Value, e.ContentType
			ev.Kv.CreateRev, ev.Kv.ModRev, ev.Kv.Version = e.CreateRev, e.ModRev, e.Version
		}
		msg.Events[i] = ev
	}
	return msg
}

func (s *configService) watchRecv(ctx context.Context, stream configdpb.Config_WatchServer, notify chan struct{}, ctrl chan<- watchControl, recvErr chan<- error) {
	for {
		req, err := stream.Recv()
		if err != nil {
			recvErr <- err
			return
		}
		var c watchControl
		switch r := req.GetRequest().(type) {
		case *configdpb.WatchRequest_Create:
			c.id = r.Create.GetWatchId()
			f := watcher.Filter{Keys: r.Create.GetKeys(), Prefixes: r.Create.GetPrefixes()}
			if s.opts.auth != nil {
				c.refuse = s.opts.auth.CheckWatch(authz.PrincipalFrom(ctx), f)
			}
			if c.refuse == nil {
				c.release, c.refuse = s.opts.limits.OpenWatchUntilDone(ctx)
			}
			if c.refuse == nil {
				c.rules = authz.NewWatchRules(ctx, s.opts.auth, f, authz.SecureGRPC(ctx), func() { signal(notify) })
				if c.w, c.refuse = s.hub.Watch(ctx, f, r.Create.GetSince(), watcher.WithNotify(notify)); c.refuse != nil {
					c.rules.Close()
					c.release()
				}
			}
		case *configdpb.WatchRequest_Cancel:
			c.id = r.Cancel.GetWatchId()
		default:
			recvErr <- status.Error(codes.InvalidArgument, "watch request has neither create nor cancel")
			return
		}
		select {
		case ctrl <- c:
		case <-ctx.Done():
			if c.w != nil {
				c.w.Close()
				c.rules.Close()
				c.release()
			}
			return
		}
	}
}
