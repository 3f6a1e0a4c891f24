package grpcapi

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/writeops"
)

// metadataReason carries the reason of a write whose request has none, as
// the X-Configd-Reason header does over HTTP.
var metadataReason = strings.ToLower(api.HeaderReason)

// commit commits ops as one revision by the call's actor (authz's
// interceptors put it in ctx), with reason or else the x-configd-reason
// metadata. A write is committed by this configd's store even on a
// replica: the store replicates its commits itself.
func (s *configService) commit(ctx context.Context, reason string, ops ...audit.Op) (audit.Revision, error) {
	if reason == "" {
		if v := metadata.ValueFromIncomingContext(ctx, metadataReason); len(v) > 0 {
			reason = v[0]
		}
	}
	return s.st.Commit(ctx, audit.Txn{
		Actor:  authz.ActorFrom(ctx),
		Reason: reason,
		Origin: writeops.OriginAPI,
		Ops:    ops,
	})
}

func writeResponse(rev audit.Revision) *configdpb.WriteResponse {
	return &configdpb.WriteResponse{Rev: rev.Rev, Changed: len(rev.Changes) > 0}
}

func (s *configService) Put(ctx context.Context, req *configdpb.PutRequest) (*configdpb.WriteResponse, error) {
	key := req.GetKey()
	fail := func(err error) error { return s.grpcError("Put", apierror.WithKey(err, key)) }
	if err := keyspace.ValidateNew(key); err != nil {
		return nil, fail(err)
	}
	if req.GetSecret() && !s.st.SecretsEnabled() {
		return nil, fail(writeops.NoMasterKey(key))
	}
	if limit := s.st.MaxValueSize(); len(req.GetValue()) > limit {
		return nil, fail(writeops.ValueTooLarge(fmt.Sprintf("%d bytes", len(req.GetValue())), limit))
	}
	op := audit.Put(key, req.GetValue(), req.GetContentType())
	op.Secret = req.GetSecret()
	op, bad := writeops.IfModRev(op, req.IfModRev)
	if bad != nil {
		return nil, fail(bad)
	}
	rev, err := s.commit(ctx, req.GetReason(), op)
	if err != nil {
		return nil, fail(err)
	}
	return writeResponse(rev), nil
}

func (s *configService) Delete(ctx context.Context, req *configdpb.DeleteRequest) (*configdpb.WriteResponse, error) {
	key := req.GetKey()
	fail := func(err error) error { return s.grpcError("Delete", apierror.WithKey(err, key)) }
	if err := keyspace.Validate(key); err != nil {
		return nil, fail(err)
	}
	op, bad := writeops.IfModRev(audit.Delete(key), req.IfModRev)
	if bad != nil {
		return nil, fail(bad)
	}
	rev, err := s.commit(ctx, req.GetReason(), op)
	if err != nil {
		return nil, fail(err)
	}
	if err := writeops.Deleted(key, rev); err != nil {
		return nil, fail(err)
	}
	return writeResponse(rev), nil
}

func (s *configService) Txn(ctx context.Context, req *configdpb.TxnRequest) (*configdpb.WriteResponse, error) {
	in := make([]writeops.Op, len(req.GetOps()))
	for i, o := range req.GetOps() {
		switch o.GetOp() {
		case configdpb.TxnOp_PUT, configdpb.TxnOp_DELETE:
		default:
			return nil, s.grpcError("Txn", apierror.WithKey(apierror.BadRequest("ops[%d]: unknown op %d: want PUT or DELETE", i, o.GetOp()), o.GetKey()))
		}
		in[i] = writeops.Op{Delete: o.GetOp() == configdpb.TxnOp_DELETE, Key: o.GetKey(), Value: o.GetValue(),
			ContentType: o.GetContentType(), Secret: o.GetSecret(), IfModRev: o.IfModRev}
	}
	ops, err := writeops.Ops(s.st, in)
	if err != nil {
		return nil, s.grpcError("Txn", err)
	}
	rev, err := s.commit(ctx, req.GetReason(), ops...)
	if err != nil {
		return nil, s.grpcError("Txn", err)
	}
	return writeResponse(rev), nil
}
