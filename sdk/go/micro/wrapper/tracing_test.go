package wrapper_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// Traced records the span context and metadata its handler sees.
type Traced struct {
	sc trace.SpanContext
	md metadata.Metadata
}

func (h *Traced) Hello(ctx context.Context, req *Req, rsp *Rsp) error {
	h.sc = trace.SpanContextFromContext(ctx)
	h.md, _ = metadata.FromContext(ctx)
	if req.Name == "fail" {
		return status.New(status.BadRequest, "no")
	}
	rsp.Node = "traced"
	return nil
}

// newTracing returns an in-memory span exporter, a tracer provider exporting to it at each
// span's end, and a Tracing on that provider.
func newTracing(t *testing.T) (*tracetest.InMemoryExporter, *sdktrace.TracerProvider, *wrapper.Tracing) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return exp, tp, wrapper.NewTracing(wrapper.WithTracerProvider(tp))
}

// startTCPServer serves handler h (named name) as service on a tcp transport, with the handler
// wrappers hw, until the test ends. It returns the transport, for the client, and the server.
func startTCPServer(t *testing.T, service string, h any, name string, hw ...server.HandlerWrapper) (transport.Transport, *server.Server) {
	t.Helper()
	tcpt := tcp.New()
	srv, err := server.New(server.Name(service), server.Transport(tcpt), server.GracePeriod(0), server.WrapHandler(hw...))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(h, server.HandlerName(name)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return tcpt, srv
}

// tracedGreeter serves a Traced greeter over tcp with tr's handler wrapper until the test ends,
// and returns it, a client with tr's call wrapper and the server's address.
func tracedGreeter(t *testing.T, tr *wrapper.Tracing) (*Traced, *client.Client, string) {
	t.Helper()
	h := &Traced{}
	tcpt, srv := startTCPServer(t, "greeter", h, "Greeter", tr.HandlerWrapper())
	c, err := client.New(client.Transport(tcpt), client.Wrap(tr.CallWrapper()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return h, c, srv.Addr()
}

// TestTracingAcrossTCP: a call over a real tcp transport yields a client span and a server
// span of the same trace, the server span the client span's child, both children of the
// caller's span.
func TestTracingAcrossTCP(t *testing.T) {
	exp, tp, tr := newTracing(t)
	h, c, addr := tracedGreeter(t, tr)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	ctx = metadata.NewContext(ctx, metadata.Metadata{"user": "bob"})
	var rsp Rsp
	if err := c.Call(ctx, "greeter", "Greeter.Hello", &Req{Name: "x"}, &rsp, client.WithAddress(addr)); err != nil {
		t.Fatal(err)
	}
	parent.End()

	spans := exp.GetSpans()
	byKind := map[trace.SpanKind]tracetest.SpanStub{}
	for _, s := range spans {
		byKind[s.SpanKind] = s
	}
	cs, ss := byKind[trace.SpanKindClient], byKind[trace.SpanKindServer]
	if len(spans) != 3 || !cs.SpanContext.IsValid() || !ss.SpanContext.IsValid() {
		t.Fatalf("want a caller, a client and a server span, got %d: %+v", len(spans), spans)
	}
	if cs.SpanContext.TraceID() != parent.SpanContext().TraceID() || ss.SpanContext.TraceID() != cs.SpanContext.TraceID() {
		t.Fatalf("trace ids: caller %s, client %s, server %s", parent.SpanContext().TraceID(), cs.SpanContext.TraceID(), ss.SpanContext.TraceID())
	}
	if cs.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("client span's parent %s, want the caller's span %s", cs.Parent.SpanID(), parent.SpanContext().SpanID())
	}
	if ss.Parent.SpanID() != cs.SpanContext.SpanID() || !ss.Parent.IsRemote() {
		t.Fatalf("server span's parent %s (remote %v), want the client span %s", ss.Parent.SpanID(), ss.Parent.IsRemote(), cs.SpanContext.SpanID())
	}
	if h.sc.SpanID() != ss.SpanContext.SpanID() {
		t.Fatal("the handler's context does not carry the server span")
	}
	if h.md["user"] != "bob" || h.md["traceparent"] == "" {
		t.Fatalf("handler metadata %v: want the caller's and a traceparent", h.md)
	}
	for _, s := range []tracetest.SpanStub{cs, ss} {
		if s.Name != "greeter/Greeter.Hello" {
			t.Fatalf("span name %q", s.Name)
		}
		attrs := attribute.NewSet(s.Attributes...)
		for k, want := range map[attribute.Key]string{"rpc.system": "micro", "rpc.service": "greeter", "rpc.method": "Greeter.Hello"} {
			if v, ok := attrs.Value(k); !ok || v.AsString() != want {
				t.Fatalf("%s span: %s = %v, want %q", s.SpanKind, k, v.Emit(), want)
			}
		}
		if s.Status.Code == otelcodes.Error {
			t.Fatalf("%s span status %v on success", s.SpanKind, s.Status)
		}
	}

	// A failing call: both spans say so, with the status code.
	exp.Reset()
	if err := c.Call(context.Background(), "greeter", "Greeter.Hello", &Req{Name: "fail"}, &rsp, client.WithAddress(addr)); err == nil {
		t.Fatal("want an error")
	}
	spans = exp.GetSpans()
	if len(spans) != 2 || spans[0].SpanContext.TraceID() != spans[1].SpanContext.TraceID() {
		t.Fatalf("failing call: %d spans %+v", len(spans), spans)
	}
	for _, s := range spans {
		attrs := attribute.NewSet(s.Attributes...)
		if v, ok := attrs.Value("micro.status_code"); s.Status.Code != otelcodes.Error || !ok || v.AsInt64() != int64(status.BadRequest) {
			t.Fatalf("%s span of a failed call: status %v, micro.status_code %v", s.SpanKind, s.Status, v.Emit())
		}
	}
}
