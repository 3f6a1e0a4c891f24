package metadata_test

import (
	"context"
	"maps"
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

func TestAppendToContext(t *testing.T) {
	base := metadata.NewContext(context.Background(), metadata.Metadata{"tenant": "acme", "traceparent": "old"})
	ctx := metadata.AppendToContext(base, "traceparent", "00-new", "baggage", "k=v")
	got, _ := metadata.FromContext(ctx)
	want := metadata.Metadata{"tenant": "acme", "traceparent": "00-new", "baggage": "k=v"}
	if !maps.Equal(got, want) {
		t.Fatalf("FromContext after AppendToContext = %v, want %v", got, want)
	}
	// The parent is unchanged, and two appends to one parent do not see each other.
	if md, _ := metadata.FromContext(base); md["traceparent"] != "old" || len(md) != 2 {
		t.Fatalf("the parent's metadata changed: %v", md)
	}
	a := metadata.AppendToContext(ctx, "x", "a")
	b := metadata.AppendToContext(ctx, "x", "b")
	if ma, _ := metadata.FromContext(a); ma["x"] != "a" {
		t.Fatalf("a = %v", ma)
	}
	if mb, _ := metadata.FromContext(b); mb["x"] != "b" {
		t.Fatalf("b = %v", mb)
	}
	// On a context without metadata.
	if md, ok := metadata.FromContext(metadata.AppendToContext(context.Background(), "k", "v")); !ok || md["k"] != "v" || len(md) != 1 {
		t.Fatalf("AppendToContext on an empty context: %v, %v", md, ok)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an odd number of strings did not panic")
		}
	}()
	metadata.AppendToContext(ctx, "lonely")
}

func TestHeaderContextAndContextToHeader(t *testing.T) {
	wireHeaders := map[string]string{"Micro-Endpoint": "Greeter.Hello", "Md-tenant": "acme", "Md-traceparent": "00-a"}
	ctx := metadata.AppendToContext(metadata.HeaderContext(context.Background(), wireHeaders), "traceparent", "00-b")
	md, ok := metadata.FromContext(ctx)
	if want := (metadata.Metadata{"tenant": "acme", "traceparent": "00-b"}); !ok || !maps.Equal(md, want) {
		t.Fatalf("FromContext = %v, want %v", md, want)
	}
	md["tenant"] = "changed"
	if wireHeaders["Md-tenant"] != "acme" {
		t.Fatal("editing FromContext's copy changed the wire headers")
	}
	out := map[string]string{"Micro-Service": "greeter"}
	if !metadata.ContextToHeader(ctx, out) {
		t.Fatal("ContextToHeader found no metadata")
	}
	if want := map[string]string{"Micro-Service": "greeter", "Md-tenant": "acme", "Md-traceparent": "00-b"}; !maps.Equal(out, want) {
		t.Fatalf("ContextToHeader wrote %v, want %v", out, want)
	}
	if metadata.ContextToHeader(context.Background(), out) {
		t.Fatal("ContextToHeader reported metadata in an empty context")
	}
}

// The context AppendToContext and NewContext return is a context like any other: it passes the
// parent's values, deadline and cancellation through, a cancelable child of it is canceled
// with the parent, and it costs one allocation.
func TestMetadataContextIsAContext(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	for name, ctx := range map[string]context.Context{
		"AppendToContext": metadata.AppendToContext(parent, "k", "v"),
		"NewContext":      metadata.NewContext(parent, metadata.Metadata{"k": "v"}),
	} {
		if ctx.Value(key{}) != "v" {
			t.Errorf("%s: the parent's value is lost", name)
		}
		if md, ok := metadata.FromContext(ctx); !ok || md["k"] != "v" {
			t.Errorf("%s: FromContext = %v, %v", name, md, ok)
		}
		if ctx.Done() != parent.Done() {
			t.Errorf("%s: Done is not the parent's", name)
		}
	}
	child, cancelChild := context.WithCancel(metadata.AppendToContext(parent, "k", "v"))
	defer cancelChild()
	cancel()
	<-child.Done() // blocks forever if the cancellation did not reach the child
	if child.Err() != context.Canceled {
		t.Fatalf("child.Err() = %v", child.Err())
	}
	bg := context.Background()
	if n := testing.AllocsPerRun(100, func() { _ = metadata.AppendToContext(bg, "traceparent", "00-x") }); n != 1 {
		t.Errorf("AppendToContext of one pair allocates %v times, want 1", n)
	}
}
