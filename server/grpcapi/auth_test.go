package grpcapi_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
)

func TestGRPCGetAndListAreChecked(t *testing.T) {
	e := configdtest.AuthEnv(t)
	ctx := context.Background()
	if _, err := e.GRPC("").Get(ctx, &configdpb.GetRequest{Key: "app/x"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Get without a token: %v, want Unauthenticated", err)
	}
	c := e.GRPC("reader-app")
	if _, err := c.Get(ctx, &configdpb.GetRequest{Key: "app/x"}); err != nil {
		t.Errorf("Get app/x: %v", err)
	}
	if _, err := c.Get(ctx, &configdpb.GetRequest{Key: "db/x"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Get db/x: %v, want PermissionDenied", err)
	}
	if _, err := c.List(ctx, &configdpb.ListRequest{Prefix: "app"}); err != nil {
		t.Errorf("List app: %v", err)
	}
	if _, err := c.List(ctx, &configdpb.ListRequest{Prefix: ""}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("List everything: %v, want PermissionDenied", err)
	}
}

// TestGRPCWatchOnlyReceivesGrantedKeys: a watch outside the token's grants
// is refused; one inside receives only its keys.
func TestGRPCWatchOnlyReceivesGrantedKeys(t *testing.T) {
	e := configdtest.AuthEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := e.GRPC("reader-app").Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	create := func(id int64, prefixes ...string) {
		t.Helper()
		if err := stream.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: &configdpb.WatchCreate{
			WatchId: id, Prefixes: prefixes, Since: e.Store.Rev()}}}); err != nil {
			t.Fatal(err)
		}
	}
	create(1, "db/")
	msg, err := stream.Recv()
	if err != nil || msg.GetWatchId() != 1 || msg.GetKind() != configdpb.WatchResponse_CANCELED || msg.GetCode() != api.CodeForbidden {
		t.Fatalf("watch of db/: %v %v, want CANCELED forbidden", msg, err)
	}
	create(2) // everything
	if msg, err = stream.Recv(); err != nil || msg.GetKind() != configdpb.WatchResponse_CANCELED || msg.GetCode() != api.CodeForbidden {
		t.Fatalf("watch of everything: %v %v, want CANCELED forbidden", msg, err)
	}
	create(3, "app/")
	if msg, err = stream.Recv(); err != nil || msg.GetKind() != configdpb.WatchResponse_CREATED {
		t.Fatalf("watch of app/: %v %v, want CREATED", msg, err)
	}
	if _, err := e.Store.Commit(ctx, audit.Txn{Actor: "t", Origin: "test", Ops: []audit.Op{
		audit.Put("db/secret", []byte("s"), ""), audit.Put("app/y", []byte("1"), "")}}); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if msg.GetKind() != configdpb.WatchResponse_CHANGES {
			continue
		}
		if len(msg.GetEvents()) != 1 || msg.GetEvents()[0].GetKv().GetKey() != "app/y" {
			t.Fatalf("watch of app/ received %v, want only app/y", msg.GetEvents())
		}
		return
	}
}
