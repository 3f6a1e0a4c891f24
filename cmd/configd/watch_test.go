package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
)

// watchKey opens a gRPC watch on key from revision since, on the daemon's
// one port, and returns the stream after its CREATED message.
func watchKey(t *testing.T, ctx context.Context, addr, key string, since int64) configdpb.Config_WatchClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s, err := configdpb.NewConfigClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{
		Create: &configdpb.WatchCreate{WatchId: 1, Keys: []string{key}, Since: since}}}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil || m.GetKind() != configdpb.WatchResponse_CREATED {
		t.Fatalf("first watch message = %v, %v", m, err)
	}
	return s
}

func TestGRPCAndHTTPShareOnePort(t *testing.T) {
	d := start(t, t.TempDir())
	d.mustCall(http.MethodPut, "/v1/kv/key1", []byte("v1"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := watchKey(t, ctx, d.Addr, "key1", 1)
	d.mustCall(http.MethodPut, "/v1/kv/key1", []byte("v2"), nil)
	m, err := s.Recv()
	if err != nil || m.GetKind() != configdpb.WatchResponse_CHANGES || m.GetRev() != 2 ||
		string(m.GetEvents()[0].GetKv().GetValue()) != "v2" {
		t.Fatalf("watch got %v, %v", m, err)
	}
	// The long poll on the same port sees the same revision.
	resp, err := d.client.Get(d.url("/v1/watch?key=key1&since=1&wait=10s"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var wr api.WatchResponse
	if err := json.NewDecoder(resp.Body).Decode(&wr); err != nil || wr.Rev != 2 || wr.Batches[0].Events[0].Value != "v2" {
		t.Fatalf("long poll = %+v, %v", wr, err)
	}
}

func TestSIGTERMEndsOpenWatchesAndExits(t *testing.T) {
	d := start(t, t.TempDir())
	d.mustCall(http.MethodPut, "/v1/kv/key1", []byte("v1"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := watchKey(t, ctx, d.Addr, "key1", 1)
	d.Signal(syscall.SIGTERM)
	d.WaitLog(regexp.MustCompile(`msg=stopped`))
	if code := d.Wait(); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, d.Log)
	}
	// The watch was ended, not left hanging.
	if _, err := s.Recv(); err == nil {
		t.Fatal("watch stream still open after configd stopped")
	}
}
