package authz

import (
	"context"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
)

// ServerOptions are the gRPC server options that apply a and l to every
// call but the health service's: with a, every call is authenticated by
// the bearer token of its "authorization" metadata, and Get and List are
// checked against the token's grants (a watch's keys are checked when it
// is created: CheckWatch); with l, calls are rate limited per identity
// (codes.ResourceExhausted, with a retry-after header). A nil a or l
// leaves that part off.
func ServerOptions(a *Auth, l *Limits) []grpc.ServerOption {
	var opts []grpc.ServerOption
	if a != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(a.unaryInterceptor), grpc.ChainStreamInterceptor(a.streamInterceptor))
	}
	if l != nil { // after authentication: limits are per token
		opts = append(opts, grpc.ChainUnaryInterceptor(l.unaryInterceptor), grpc.ChainStreamInterceptor(l.streamInterceptor))
	}
	return opts
}

const healthService = "/grpc.health.v1.Health/"

func (a *Auth) grpcPrincipal(ctx context.Context) (*Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var authz string
	if v := md.Get(strings.ToLower(api.HeaderAuthorization)); len(v) > 0 {
		authz = v[0]
	}
	p, err := a.Authenticate(authz)
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
	if strings.HasPrefix(info.FullMethod, healthService) {
		return handler(ctx, req)
	}
	p, err := a.grpcPrincipal(ctx)
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
	default:
		// Any other RPC (reflection is a stream) reads nothing of the
		// keyspace; a valid token is enough.
	}
	return handler(WithPrincipal(ctx, p), req)
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
	p, err := a.grpcPrincipal(ss.Context())
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
	if strings.HasPrefix(info.FullMethod, healthService) {
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
