package micro_test

import (
	"context"
	"io"
	"testing"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/sdk/go/micro"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	tmem "github.com/configd/configd/sdk/go/micro/transport/memory"
)

// cfg is a grpc-go style implementation of the generated ConfigServer.
type cfg struct {
	configdpb.UnimplementedConfigServer
}

func (cfg) Get(_ context.Context, req *configdpb.GetRequest) (*configdpb.GetResponse, error) {
	return &configdpb.GetResponse{Kv: &configdpb.KeyValue{Key: req.Key, Value: []byte("v")}, Rev: 1}, nil
}

func (cfg) Watch(st configdpb.Config_WatchServer) error {
	for {
		req, err := st.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.Send(&configdpb.WatchResponse{WatchId: req.GetCreate().GetWatchId(), Kind: configdpb.WatchResponse_CREATED}); err != nil {
			return err
		}
	}
}

// A service serves generated gRPC code with HandleDesc; its client calls the unary methods
// and opens the streams, through the service's stream wrappers.
func TestServiceHandleDescAndStream(t *testing.T) {
	var opened []string
	sw := func(next client.StreamFunc) client.StreamFunc {
		return func(ctx context.Context, req *client.Request) (client.Stream, error) {
			opened = append(opened, req.Endpoint)
			return next(ctx, req)
		}
	}
	svc := micro.NewService(quiet, micro.Args(), env(nil), micro.Name("configd"), micro.Transport(tmem.New()), micro.GracePeriod(0),
		micro.WrapStream(sw))
	if err := svc.Init(); err != nil {
		t.Fatal(err)
	}
	if err := svc.HandleDesc(&configdpb.Config_ServiceDesc, cfg{}, server.HandlerName("Config")); err != nil {
		t.Fatal(err)
	}
	if err := svc.Server().Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Server().Stop(context.Background()); svc.Close() })
	ctx := context.Background()
	var rsp configdpb.GetResponse
	if err := svc.Client().Call(ctx, "configd", "Config.Get", &configdpb.GetRequest{Key: "k"}, &rsp); err != nil || rsp.GetKv().GetKey() != "k" {
		t.Fatalf("Get: %v, %v", &rsp, err)
	}
	st, err := svc.Stream(ctx, "configd", "Config.Watch")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: &configdpb.WatchCreate{WatchId: 5}}}); err != nil {
		t.Fatal(err)
	}
	var w configdpb.WatchResponse
	if err := st.Recv(&w); err != nil || w.WatchId != 5 {
		t.Fatalf("Watch: %v, %v", &w, err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := st.Recv(&w); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if len(opened) != 1 || opened[0] != "Config.Watch" {
		t.Fatalf("stream wrapper saw %v, want one open of Config.Watch", opened)
	}
}
