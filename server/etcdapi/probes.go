package etcdapi

import (
	"context"
	"os"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// memberName is this configd's name as an etcd member.
const memberName = "configd"

type maintenanceService struct {
	pb.UnimplementedMaintenanceServer
	*server
}

// Status answers etcd's status of this configd as a one-member cluster
// that is its own leader: the raft index is the store's revision, the db
// size the database's files (with the write-ahead log).
func (m maintenanceService) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	rev := m.st.Rev()
	var size int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(m.st.Path() + suffix); err == nil {
			size += fi.Size()
		}
	}
	return &pb.StatusResponse{Header: m.header(rev), Version: APIVersion, DbSize: size, DbSizeInUse: size,
		Leader: m.member, RaftIndex: uint64(rev), RaftTerm: 1, RaftAppliedIndex: uint64(rev)}, nil
}

// Alarm lists no alarms: configd raises none of etcd's (no space quota,
// no corruption check), and etcdctl 3.5+ asks for them in `endpoint
// health`. Disarming finds nothing to disarm, as etcd answers for an alarm
// not raised; raising one is refused, naming it.
func (m maintenanceService) Alarm(ctx context.Context, req *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if req.GetAction() == pb.AlarmRequest_ACTIVATE {
		return nil, status.Errorf(codes.Unimplemented, "etcdserverpb.Maintenance/Alarm ACTIVATE is not served by configd's etcd API: "+
			"configd raises no etcd alarms (it lists and disarms none)")
	}
	return &pb.AlarmResponse{Header: m.header(m.st.Rev())}, nil
}

type clusterService struct {
	pb.UnimplementedClusterServer
	*server
}

// MemberList lists this configd alone (a configd replica lists itself,
// not its peers), its client URL the address the call came to.
func (c clusterService) MemberList(ctx context.Context, _ *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	m := &pb.Member{ID: c.member, Name: memberName}
	if p, ok := peer.FromContext(ctx); ok && p.LocalAddr != nil {
		scheme := "http://"
		if _, tls := p.AuthInfo.(credentials.TLSInfo); tls {
			scheme = "https://"
		}
		m.ClientURLs = []string{scheme + p.LocalAddr.String()}
	}
	return &pb.MemberListResponse{Header: c.header(c.st.Rev()), Members: []*pb.Member{m}}, nil
}

type authService struct {
	pb.UnimplementedAuthServer
	*server
}

// Authenticate takes a configd token as the password of the user its
// token is named after, and answers the token itself as etcd's auth
// token: the client sends it back as the "token" metadata, which authz
// authenticates as it does a bearer token.
func (a authService) Authenticate(ctx context.Context, req *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if a.opts.auth == nil {
		return nil, rpctypes.ErrGRPCAuthNotEnabled
	}
	p, err := a.opts.auth.Authenticate("Bearer " + strings.TrimSpace(req.GetPassword()))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password: "+
			"the password is a configd token (configctl token create)")
	}
	if p.Name != req.GetName() {
		return nil, status.Errorf(codes.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password: "+
			"the token given is named %q, not %q: give its name as the user", p.Name, req.GetName())
	}
	return &pb.AuthenticateResponse{Header: a.header(a.st.Rev()), Token: strings.TrimSpace(req.GetPassword())}, nil
}
