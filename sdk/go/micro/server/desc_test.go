package server_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
	tgrpc "github.com/configd/configd/sdk/go/micro/transport/grpc"
)

// fakeConfig is a grpc-go implementation of the generated ConfigServer, served unchanged.
type fakeConfig struct {
	configdpb.UnimplementedConfigServer
	kvs map[string]string
}

func (f *fakeConfig) Get(ctx context.Context, req *configdpb.GetRequest) (*configdpb.GetResponse, error) {
	v, ok := f.kvs[req.Key]
	if !ok {
		return nil, grpcstatus.Errorf(codes.NotFound, "key %q not found", req.Key)
	}
	md, _ := metadata.FromContext(ctx)
	metadata.SetResponse(ctx, "Served-By", "fake")
	return &configdpb.GetResponse{Kv: &configdpb.KeyValue{Key: req.Key, Value: []byte(v + md["Suffix"])}, Rev: 7}, nil
}

// Watch answers each WatchCreate with CREATED: a generated bidi stream handler.
func (f *fakeConfig) Watch(st configdpb.Config_WatchServer) error {
	for {
		req, err := st.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if req.GetCreate() == nil {
			return grpcstatus.Error(codes.InvalidArgument, "only creates here")
		}
		if err := st.Send(&configdpb.WatchResponse{WatchId: req.GetCreate().WatchId, Kind: configdpb.WatchResponse_CREATED}); err != nil {
			return err
		}
	}
}

// startDesc serves fakeConfig through its ServiceDesc on tr and returns a client calling it.
func startDesc(t *testing.T, tr transport.Transport) (*client.Client, string) {
	t.Helper()
	if c, ok := tr.(io.Closer); ok {
		t.Cleanup(func() { c.Close() })
	}
	srv, err := server.New(server.Name("configd"), server.Transport(tr), server.GracePeriod(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.HandleDesc(&configdpb.Config_ServiceDesc, &fakeConfig{kvs: map[string]string{"app/a": "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	cli, err := client.New(client.Transport(tr), client.RequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, srv.Addr()
}

func withGRPC() map[string]func() transport.Transport {
	m := map[string]func() transport.Transport{"grpc": func() transport.Transport { return tgrpc.New() }}
	for k, v := range transports {
		m[k] = v
	}
	return m
}

func TestHandleDescServesGeneratedUnaryMethods(t *testing.T) {
	for name, tr := range withGRPC() {
		t.Run(name, func(t *testing.T) {
			cli, addr := startDesc(t, tr())
			ctx := metadata.NewContext(context.Background(), metadata.Metadata{"Suffix": "!"})
			for _, ct := range []string{"", codec.JSONContentType, "application/grpc+proto"} {
				var rsp configdpb.GetResponse
				var md metadata.Metadata
				err := cli.Call(ctx, "configd", "Config.Get", &configdpb.GetRequest{Key: "app/a"}, &rsp,
					client.WithAddress(addr), client.WithContentType(ct), client.WithResponseMetadata(&md))
				if err != nil {
					t.Fatalf("content type %q: %v", ct, err)
				}
				if string(rsp.GetKv().GetValue()) != "1!" || rsp.Rev != 7 || md["Served-By"] != "fake" {
					t.Fatalf("content type %q: got %v, metadata %v", ct, &rsp, md)
				}
			}

			var rsp configdpb.GetResponse
			err := cli.Call(ctx, "configd", "Config.Get", &configdpb.GetRequest{Key: "nope"}, &rsp, client.WithAddress(addr))
			if status.CodeOf(err) != status.NotFound || !strings.Contains(err.Error(), `key "nope" not found`) {
				t.Fatalf("a gRPC NotFound: got %v", err)
			}
			var lrsp configdpb.ListResponse
			err = cli.Call(ctx, "configd", "Config.List", &configdpb.ListRequest{}, &lrsp, client.WithAddress(addr))
			if status.CodeOf(err) != 501 {
				t.Fatalf("an unimplemented method: got %v, want code 501", err)
			}
		})
	}
}

func TestHandleDescNamesAndRejects(t *testing.T) {
	srv, err := server.New(server.Name("configd"), server.Transport(tgrpc.New()))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.HandleDesc(&configdpb.Config_ServiceDesc, &fakeConfig{}, server.HandlerName("Cfg")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(srv.Endpoints(), ","); got != "Cfg.Delete,Cfg.Get,Cfg.List,Cfg.Put,Cfg.Txn,Cfg.Watch" {
		t.Fatalf("endpoints %s", got)
	}
	if err := srv.HandleDesc(&configdpb.Config_ServiceDesc, &Greeter{}); err == nil || !strings.Contains(err.Error(), "does not implement") {
		t.Fatalf("a type that is not a ConfigServer: %v", err)
	}
	if err := srv.HandleDesc(&configdpb.Config_ServiceDesc, &fakeConfig{}, server.HandlerName("Cfg")); err == nil {
		t.Fatal("registered twice without an error")
	}
}

func TestHandleDescServesGeneratedStreams(t *testing.T) {
	for name, tr := range withGRPC() {
		t.Run(name, func(t *testing.T) {
			cli, addr := startDesc(t, tr())
			st, err := cli.Stream(context.Background(), "configd", "Config.Watch", client.WithAddress(addr))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for id := range int64(3) {
				req := &configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: &configdpb.WatchCreate{WatchId: id}}}
				if err := st.Send(req); err != nil {
					t.Fatal(err)
				}
				var rsp configdpb.WatchResponse
				if err := st.Recv(&rsp); err != nil || rsp.WatchId != id || rsp.Kind != configdpb.WatchResponse_CREATED {
					t.Fatalf("watch %d: %v, %v", id, &rsp, err)
				}
			}
			if err := st.Send(&configdpb.WatchRequest{}); err != nil {
				t.Fatal(err)
			}
			if err := st.Recv(&configdpb.WatchResponse{}); status.CodeOf(err) != status.BadRequest {
				t.Fatalf("a gRPC InvalidArgument from the stream: %v", err)
			}
		})
	}
}
