package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/grpcapi"
)

type grpcEnv struct {
	st     *audit.Store
	client configdpb.ConfigClient
	conn   *grpc.ClientConn
}

func newGRPCEnv(t *testing.T, opts ...grpcapi.Option) *grpcEnv {
	t.Helper()
	e := configdtest.NewEnv(t)
	conn := e.GRPCConn("", opts...)
	return &grpcEnv{st: e.Store, client: configdpb.NewConfigClient(conn), conn: conn}
}

func (e *grpcEnv) put(t *testing.T, kvs ...string) {
	t.Helper()
	configdtest.Commit(t, e.st, audit.Txn{Actor: "alice", Ops: configdtest.Puts(kvs...)})
}

func recvKind(t *testing.T, s configdpb.Config_WatchClient, want configdpb.WatchResponse_Kind) *configdpb.WatchResponse {
	t.Helper()
	m, err := s.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if m.GetKind() != want {
		t.Fatalf("got %v (%+v), want %v", m.GetKind(), m, want)
	}
	return m
}

func TestGRPCWatchSendsSnapshotThenOneMessagePerCommit(t *testing.T) {
	e := newGRPCEnv(t)
	e.put(t, "app/a", "1", "other", "x")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := e.client.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: &configdpb.WatchCreate{WatchId: 7, Prefixes: []string{"app/"}}}})
	if m := recvKind(t, s, configdpb.WatchResponse_CREATED); m.GetWatchId() != 7 || m.GetRev() != 1 {
		t.Fatalf("created = %+v", m)
	}
	if m := recvKind(t, s, configdpb.WatchResponse_SNAPSHOT); len(m.GetEvents()) != 1 || string(m.GetEvents()[0].GetKv().GetValue()) != "1" {
		t.Fatalf("snapshot = %+v", m)
	}
	e.put(t, "app/a", "2", "app/b", "3")
	m := recvKind(t, s, configdpb.WatchResponse_CHANGES)
	if m.GetRev() != 2 || len(m.GetEvents()) != 2 || m.GetActor() != "alice" || m.GetEvents()[0].GetKv().GetModRev() != 2 {
		t.Fatalf("changes = %+v", m)
	}
	e.st.Commit(ctx, audit.Txn{Ops: []audit.Op{audit.Delete("app/b")}})
	m = recvKind(t, s, configdpb.WatchResponse_CHANGES)
	if m.GetEvents()[0].GetType() != configdpb.Event_DELETE || m.GetEvents()[0].GetKv().GetKey() != "app/b" {
		t.Fatalf("delete = %+v", m)
	}
	s.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Cancel{Cancel: &configdpb.WatchCancel{WatchId: 7}}})
	recvKind(t, s, configdpb.WatchResponse_CANCELED)
}

func TestGRPCWatchResumesFromSince(t *testing.T) {
	e := newGRPCEnv(t)
	for _, v := range []string{"1", "2", "3", "4"} {
		e.put(t, "k", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := e.client.Watch(ctx)
	s.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: &configdpb.WatchCreate{WatchId: 1, Keys: []string{"k"}, Since: 2}}})
	recvKind(t, s, configdpb.WatchResponse_CREATED)
	for _, want := range []int64{3, 4} {
		if m := recvKind(t, s, configdpb.WatchResponse_CHANGES); m.GetRev() != want {
			t.Fatalf("rev %d, want %d", m.GetRev(), want)
		}
	}
}

func TestGRPCWatchRefusesBadInputOnTheStreamWithoutEndingIt(t *testing.T) {
	e := newGRPCEnv(t)
	e.put(t, "k", "v")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := e.client.Watch(ctx)
	for _, c := range []struct {
		create *configdpb.WatchCreate
		code   string
	}{
		{&configdpb.WatchCreate{WatchId: 1, Keys: []string{"a//b"}}, "bad_key"},
		{&configdpb.WatchCreate{WatchId: 2, Keys: []string{"k"}, Since: 99}, "bad_revision"},
		{&configdpb.WatchCreate{WatchId: 3}, "bad_request"},
	} {
		s.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: c.create}})
		m := recvKind(t, s, configdpb.WatchResponse_CANCELED)
		if m.GetCode() != c.code || m.GetError() == "" || m.GetWatchId() != c.create.GetWatchId() {
			t.Errorf("refusal = %+v, want code %s", m, c.code)
		}
	}
	// The stream still works.
	s.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: &configdpb.WatchCreate{WatchId: 4, Keys: []string{"k"}, Since: 1}}})
	recvKind(t, s, configdpb.WatchResponse_CREATED)
	e.put(t, "k", "w")
	if m := recvKind(t, s, configdpb.WatchResponse_CHANGES); m.GetWatchId() != 4 {
		t.Fatalf("changes = %+v", m)
	}
}

func TestGRPCWatchSendsProgressWhenIdle(t *testing.T) {
	e := newGRPCEnv(t, grpcapi.WithProgressInterval(20*time.Millisecond))
	e.put(t, "k", "v")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := e.client.Watch(ctx)
	s.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: &configdpb.WatchCreate{WatchId: 1, Keys: []string{"k"}, Since: 1}}})
	recvKind(t, s, configdpb.WatchResponse_CREATED)
	e.put(t, "other", "x") // rev 2, outside the scope
	for {
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetKind() == configdpb.WatchResponse_PROGRESS && m.GetRev() == 2 {
			return
		}
		if m.GetKind() != configdpb.WatchResponse_PROGRESS {
			t.Fatalf("unexpected %+v", m)
		}
	}
}

func TestGRPCGetListAndHealth(t *testing.T) {
	e := newGRPCEnv(t)
	e.put(t, "app/a", "1", "app/b", "2")
	ctx := context.Background()
	g, err := e.client.Get(ctx, &configdpb.GetRequest{Key: "app/a"})
	if err != nil || string(g.GetKv().GetValue()) != "1" || g.GetRev() != 1 {
		t.Fatalf("get = %+v %v", g, err)
	}
	l, err := e.client.List(ctx, &configdpb.ListRequest{Prefix: "app"})
	if err != nil || len(l.GetKvs()) != 2 || l.GetRev() != 1 {
		t.Fatalf("list = %+v %v", l, err)
	}
	for _, c := range []struct {
		key  string
		rev  int64
		code codes.Code
	}{{"missing", 0, codes.NotFound}, {"a//b", 0, codes.InvalidArgument}, {"app/a", 9, codes.OutOfRange}} {
		_, err := e.client.Get(ctx, &configdpb.GetRequest{Key: c.key, Rev: c.rev})
		if status.Code(err) != c.code {
			t.Errorf("get %q@%d: %v, want %v", c.key, c.rev, err, c.code)
		}
	}
	h, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "configd.v1.Config"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v %v", h, err)
	}
}
