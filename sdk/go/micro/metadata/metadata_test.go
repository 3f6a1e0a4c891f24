package metadata_test

import (
	"context"
	"testing"

	"github.com/configd/configd/sdk/go/micro/metadata"
)

func TestHeaderRoundTripKeepsTransportHeadersOut(t *testing.T) {
	h := map[string]string{"Micro-Endpoint": "Greeter.Hello", "Content-Type": "application/json"}
	metadata.ToHeader(metadata.Metadata{"Tenant": "acme", "Micro-Endpoint": "spoof"}, h)
	if h["Micro-Endpoint"] != "Greeter.Hello" {
		t.Fatal("metadata overwrote a transport header")
	}
	md := metadata.FromHeader(h)
	if len(md) != 2 || md["Tenant"] != "acme" || md["Micro-Endpoint"] != "spoof" {
		t.Fatalf("FromHeader = %v", md)
	}
}

func TestContextCopies(t *testing.T) {
	in := metadata.Metadata{"a": "1"}
	ctx := metadata.NewContext(context.Background(), in)
	in["a"] = "changed"
	got, ok := metadata.FromContext(ctx)
	if !ok || got["a"] != "1" {
		t.Fatalf("FromContext = %v, %v: the caller's later edit leaked in", got, ok)
	}
	if _, ok := metadata.FromContext(context.Background()); ok {
		t.Fatal("metadata found in an empty context")
	}
}

func TestSetResponseOnlyInHandlers(t *testing.T) {
	if metadata.SetResponse(context.Background(), "k", "v") {
		t.Fatal("SetResponse succeeded outside a handler")
	}
	r := &metadata.Response{}
	ctx := metadata.WithResponse(context.Background(), r)
	if !metadata.SetResponse(ctx, "k", "v") || r.Metadata()["k"] != "v" {
		t.Fatalf("response metadata %v", r.Metadata())
	}
}
