package authz

import (
	"context"
	"net"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
)

// ServerOptions are the gRPC server options that apply a and l to every
// call but the health service's: with a, every call is authenticated by
// the bearer token of its "authorization" metadata, Get and List are
// checked for read and Put, Delete and Txn for write on every key they
// name, against the token's grants (a watch's keys are checked when it
// is created: CheckWatch), and the token's name is the actor of a unary
// call (ActorFrom); with l, calls are rate limited per identity
// (codes.ResourceExhausted, with a retry-after header). A nil a or l
// leaves that part off; with a nil a, the actor is what HeaderIdentity
// takes over HTTP (metadataIdentity).
func ServerOptions(a *Auth, l *Limits) []grpc.ServerOption {
	var opts []grpc.ServerOption
	if a != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(a.unaryInterceptor), grpc.ChainStreamInterceptor(a.streamInterceptor))
	} else {
		opts = append(opts, grpc.ChainUnaryInterceptor(metadataIdentity))
	}
	if l != nil { // after authentication: limits are per token
		opts = append(opts, grpc.ChainUnaryInterceptor(l.unaryInterceptor), grpc.ChainStreamInterceptor(l.streamInterceptor))
	}
	return opts
}

const healthService = "/grpc.health.v1.Health/"

// etcd's v3 API (package etcdapi): its clients send their token bare, as
// the "token" metadata, which they obtain from Auth.Authenticate, a call
// that takes no token (it authenticates with its own password). Its
// requests are checked against the grants by etcdapi, which knows what
// each one reads and writes.
const (
	etcdServices     = "/etcdserverpb."
	etcdAuthenticate = "/etcdserverpb.Auth/Authenticate"
	etcdToken        = "token"
)

// metadataActor is the metadata that names the actor of a call's writes,
// as the X-Configd-Actor header does over HTTP.
var metadataActor = strings.ToLower(api.HeaderActor)

// firstMetadata is the first value of ctx's incoming metadata name (in
// any case), or "". It copies that value alone, not the whole metadata
// (FromIncomingContext did, every call: 3% of the bytes a write through
// the gRPC door allocated).
func firstMetadata(ctx context.Context, name string) string {
	if v := metadata.ValueFromIncomingContext(ctx, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// metadataIdentity is HeaderIdentity for gRPC, with authentication off:
// the x-configd-actor metadata is the actor, or "anonymous@" followed by
// the peer's IP address; a malformed actor is InvalidArgument.
func metadataIdentity(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, healthService) {
		return handler(ctx, req)
	}
	actor := firstMetadata(ctx, metadataActor)
	if actor == "" {
		actor = "anonymous@" + peerIP(ctx)
	} else if msg := checkActor("metadata "+metadataActor, actor); msg != "" {
		return nil, status.Error(codes.InvalidArgument, msg)
	}
	return handler(WithActor(ctx, actor), req)
}

// peerIP is the IP address of the client of a gRPC call.
func peerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok && tcp.Zone == "" { // every call's: without a round trip through "host:port"
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}

// grpcActor is the actor of p's calls: its name, or the x-configd-actor
// metadata of a token with admin on every key, which may act on someone's
// behalf (as Identity over HTTP).
func grpcActor(ctx context.Context, p *Principal) (string, error) {
	claim := firstMetadata(ctx, metadataActor)
	if claim == "" || !p.Allows(api.PermissionAdmin, "") {
		return p.Name, nil
	}
	if msg := checkActor("metadata "+metadataActor, claim); msg != "" {
		return "", status.Error(codes.InvalidArgument, msg)
	}
	return claim, nil
}

// grpcCheckWrite checks that p may write key. A key that
// does not parse is left to the handler, which refuses it as malformed,
// as HTTP's access rule does.
func (a *Auth) grpcCheckWrite(p *Principal, key string) error {
	if keyspace.Validate(key) != nil {
		return nil
	}
	return a.grpcCheck(p, api.PermissionWrite, key)
}

func (a *Auth) grpcPrincipal(ctx context.Context, method string) (*Principal, error) {
	authorization := firstMetadata(ctx, strings.ToLower(api.HeaderAuthorization))
	etcd := strings.HasPrefix(method, etcdServices)
	if tok := firstMetadata(ctx, etcdToken); etcd && tok != "" {
		authorization = "Bearer " + tok
	}
	p, err := a.Authenticate(authorization)
	if err != nil && etcd && authorization == "" {
		return nil, status.Error(codes.Unauthenticated, "authentication required: an etcd client gives a configd token as the password "+
			"of the user the token is named after (etcdctl --user NAME:TOKEN)")
	}
	if err != nil {
		return nil, grpcStatus(err)
	}
	return p, nil
}

// grpcStatus is the gRPC status of an authz refusal.
func grpcStatus(err error) error {
	c := apierror.Classify(err)
	return status.Error(c.GRPC, c.Message)
}

func (a *Auth) grpcCheck(p *Principal, perm, target string) error {
	if err := a.Check(p, perm, target); err != nil {
		return grpcStatus(err)
	}
	return nil
}

func (a *Auth) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, healthService) || info.FullMethod == etcdAuthenticate {
		return handler(ctx, req)
	}
	p, err := a.grpcPrincipal(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	switch r := req.(type) {
	case *configdpb.GetRequest:
		if err := a.grpcCheck(p, api.PermissionRead, r.GetKey()); err != nil {
			return nil, err
		}
	case *configdpb.ListRequest:
		prefix, err := keyspace.Prefix(r.GetPrefix())
		if err != nil {
			prefix = "" // malformed: the store refuses it, but only to a reader of everything
		}
		if err := a.grpcCheck(p, api.PermissionRead, prefix); err != nil {
			return nil, err
		}
	case *configdpb.PutRequest:
		if err := a.grpcCheckWrite(p, r.GetKey()); err != nil {
			return nil, err
		}
	case *configdpb.DeleteRequest:
		if err := a.grpcCheckWrite(p, r.GetKey()); err != nil {
			return nil, err
		}
	case *configdpb.TxnRequest:
		for _, op := range r.GetOps() {
			if err := a.grpcCheckWrite(p, op.GetKey()); err != nil {
				return nil, err
			}
		}
	default:
		// Any other RPC (reflection is a stream) reads nothing of the
		// keyspace; a valid token is enough.
	}
	actor, err := grpcActor(ctx, p)
	if err != nil {
		return nil, err
	}
	return handler(WithActor(WithPrincipal(ctx, p), actor), req)
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s principalStream) Context() context.Context { return s.ctx }

func (a *Auth) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, healthService) {
		return handler(srv, ss)
	}
	p, err := a.grpcPrincipal(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, principalStream{ServerStream: ss, ctx: WithPrincipal(ss.Context(), p)})
}

// grpcAllow rate limits one call: ctx carries the token (authentication
// runs first) or the peer.
func (l *Limits) grpcAllow(ctx context.Context) (context.Context, error) {
	id := ctxIdentity(ctx)
	if d, ok := l.allow(id); !ok {
		l.refused.WithLabelValues(api.CodeRateLimited).Inc()
		secs := retryAfter(d)
		_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", strconv.Itoa(secs)))
		return nil, status.Error(codes.ResourceExhausted, l.rateLimitedMessage(id, secs))
	}
	return context.WithValue(ctx, limitKey{}, id), nil
}

func (l *Limits) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, healthService) || !l.rated() {
		// Without a rate, a call has nothing to count (watches, which
		// are counted per identity, are streams).
		return handler(ctx, req)
	}
	ctx, err := l.grpcAllow(ctx)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (l *Limits) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, healthService) {
		return handler(srv, ss)
	}
	ctx, err := l.grpcAllow(ss.Context())
	if err != nil {
		return err
	}
	return handler(srv, principalStream{ServerStream: ss, ctx: ctx})
}
