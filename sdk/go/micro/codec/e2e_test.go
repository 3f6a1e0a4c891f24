package codec_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

type Echo struct{}

func (Echo) Say(_ context.Context, req *wrapperspb.StringValue, rsp *wrapperspb.StringValue) error {
	if req.Value == "fail" {
		return status.New(status.BadRequest, "refused")
	}
	rsp.Value = "echo " + req.Value
	return nil
}

// TestCallsThroughEachCodec makes a real call over tcp with each content type.
func TestCallsThroughEachCodec(t *testing.T) {
	tr := tcp.New()
	srv, err := server.New(server.Name("echo"), server.Transport(tr), server.GracePeriod(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(Echo{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	c, err := client.New(client.Transport(tr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, ct := range []string{"application/json-rpc", "application/proto-rpc", "application/grpc+proto", "application/grpc+json"} {
		t.Run(ct, func(t *testing.T) {
			var rsp wrapperspb.StringValue
			err := c.Call(context.Background(), "echo", "Echo.Say", wrapperspb.String("hi"), &rsp,
				client.WithAddress(srv.Addr()), client.WithContentType(ct))
			if err != nil || rsp.Value != "echo hi" {
				t.Fatalf("call: %q, %v", rsp.Value, err)
			}
			err = c.Call(context.Background(), "echo", "Echo.Say", wrapperspb.String("fail"), &rsp,
				client.WithAddress(srv.Addr()), client.WithContentType(ct))
			if status.CodeOf(err) != status.BadRequest {
				t.Fatalf("failing call: %v, want BadRequest", err)
			}
		})
	}
}
