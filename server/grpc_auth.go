package server

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/watcher"
)

// WithGRPCAuth makes the gRPC API authenticate every call with the bearer
// token of its "authorization" metadata (the health service excepted) and
// check Get, List and Watch against the token's grants. nil leaves
// authentication off.
func WithGRPCAuth(a *Auth) GRPCOption { return func(o *grpcOptions) { o.auth = a } }

const healthService = "/grpc.health.v1.Health/"

func (a *Auth) grpcPrincipal(ctx context.Context) (*Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var authz string
	if v := md.Get(strings.ToLower(api.HeaderAuthorization)); len(v) > 0 {
		authz = v[0]
	}
	p, reason := a.authenticate(authz)
	if p == nil {
		a.deny(reason)
		return nil, status.Error(codes.Unauthenticated, unauthenticatedMessage(reason))
	}
	return p, nil
}

func (a *Auth) grpcCheck(p *Principal, perm, target string) error {
	if p.Allows(perm, target) {
		return nil
	}
	a.deny(denyForbidden)
	return status.Error(codes.PermissionDenied, forbiddenMessage(p, perm, target))
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
	return handler(withPrincipal(ctx, p), req)
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
	return handler(srv, principalStream{ServerStream: ss, ctx: withPrincipal(ss.Context(), p)})
}

// checkWatch refuses a watch whose filter reaches a key the stream's token
// may not read: every key and prefix of the filter needs read, and an
// empty filter (everything) needs read on everything. It returns nil when
// authentication is off.
func (s *configService) checkWatch(ctx context.Context, f watcher.Filter) error {
	a := s.opts.auth
	if a == nil {
		return nil
	}
	p := PrincipalFrom(ctx)
	if p == nil {
		return status.Error(codes.Unauthenticated, unauthenticatedMessage(denyMissing))
	}
	for _, t := range watchTargets(f) {
		if !p.Allows(api.PermissionRead, t) {
			a.deny(denyForbidden)
			// CANCELED with code forbidden; the stream and its other
			// watches go on.
			return apierror.New(api.CodeForbidden, "%s", forbiddenMessage(p, api.PermissionRead, t))
		}
	}
	return nil
}
