package grpcapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/server/grpcapi"
)

// TestGRPCReadNamingARevisionWaitsForIt: Get and List whose metadata
// names a revision wait for it, and answer UNAVAILABLE if the store does
// not reach it within the read wait.
func TestGRPCReadNamingARevisionWaitsForIt(t *testing.T) {
	e := newGRPCEnv(t, grpcapi.WithReadWait(300*time.Millisecond))
	e.put(t, "app/a", "1")
	ctx := context.Background()
	type answer struct {
		g   *configdpb.GetResponse
		err error
	}
	got := make(chan answer, 1)
	go func() {
		g, err := e.client.Get(metadata.AppendToOutgoingContext(ctx, api.MetadataMinRev, "2"), &configdpb.GetRequest{Key: "app/a"})
		got <- answer{g, err}
	}()
	e.put(t, "app/a", "2")
	if a := <-got; a.err != nil || string(a.g.GetKv().GetValue()) != "2" {
		t.Fatalf("get with %s 2: %+v %v, want the value of revision 2", api.MetadataMinRev, a.g, a.err)
	}
	if l, err := e.client.List(metadata.AppendToOutgoingContext(ctx, api.MetadataConsistent, "true"), &configdpb.ListRequest{Prefix: "app"}); err != nil || l.GetRev() != 2 {
		t.Fatalf("consistent list: %+v %v", l, err)
	}
	_, err := e.client.List(metadata.AppendToOutgoingContext(ctx, api.MetadataMinRev, "9"), &configdpb.ListRequest{Prefix: "app"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "revision 9") {
		t.Errorf("list with %s 9: %v, want UNAVAILABLE naming revision 9", api.MetadataMinRev, err)
	}
	_, err = e.client.Get(metadata.AppendToOutgoingContext(ctx, api.MetadataMinRev, "x"), &configdpb.GetRequest{Key: "app/a"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("get with %s x: %v, want INVALID_ARGUMENT", api.MetadataMinRev, err)
	}
}
