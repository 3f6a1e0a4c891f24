package grpc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	tgrpc "github.com/configd/configd/sdk/go/micro/transport/grpc"
)

type Echo struct{}

func (Echo) Say(_ context.Context, req *wrapperspb.StringValue, rsp *wrapperspb.StringValue) error {
	rsp.Value = "echo " + req.Value
	return nil
}

// TestServiceOverGRPC: a micro server and client on the grpc transport, through the registry
// and selector, concurrent calls, then a graceful stop with pooled idle sockets.
func TestServiceOverGRPC(t *testing.T) {
	tr := tgrpc.New()
	defer tr.Close()
	reg := memory.New()
	srv, err := server.New(server.Name("echo"), server.Transport(tr), server.Registry(reg), server.GracePeriod(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(Echo{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	sel, err := selector.New(selector.Registry(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Close()
	c, err := client.New(client.Transport(tr), client.Selector(sel))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 20 {
				var rsp wrapperspb.StringValue
				if err := c.Call(context.Background(), "echo", "Echo.Say", wrapperspb.String("hi"), &rsp); err != nil || rsp.Value != "echo hi" {
					t.Errorf("call: %q, %v", rsp.Value, err)
					return
				}
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	var rsp wrapperspb.StringValue
	err = c.Call(context.Background(), "echo", "Echo.Say", wrapperspb.String("hi"), &rsp, client.WithAddress(srv.Addr()))
	if status.CodeOf(err) != status.Unavailable {
		t.Fatalf("call after Stop: %v, want Unavailable", err)
	}
}
