package policy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/gateway/policy"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

type HelloReq struct{ Name string }
type HelloRsp struct{ Msg string }

// Greeter records the span context each call arrived with.
type Greeter struct {
	mu  sync.Mutex
	scs []trace.SpanContext
}

func (g *Greeter) Hello(ctx context.Context, req *HelloReq, rsp *HelloRsp) error {
	g.mu.Lock()
	g.scs = append(g.scs, trace.SpanContextFromContext(ctx))
	g.mu.Unlock()
	rsp.Msg = "Hello " + req.Name
	return nil
}

func (g *Greeter) last() trace.SpanContext {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.scs[len(g.scs)-1]
}

// greeterService serves a Greeter as service "greeter" over the tcp transport, with tr's
// handler wrapper, until the test ends, and returns an HTTP handler that calls it, as the
// gateway's rpc handler does: through a client with tr's call wrapper, with the request's
// context.
func greeterService(t testing.TB, tr *wrapper.Tracing) (*Greeter, http.Handler) {
	t.Helper()
	tpt := tcp.New()
	g := &Greeter{}
	srv, err := server.New(server.Name("greeter"), server.Transport(tpt), server.GracePeriod(0), server.Logger(discard), server.WrapHandler(tr.HandlerWrapper()))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(g, server.HandlerName("Greeter")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	c, err := client.New(client.Transport(tpt), client.Logger(discard), client.Wrap(tr.CallWrapper()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	addr := srv.Addr()
	return g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		policy.SetRoute(r.Context(), "/greeter/hello")
		var rsp HelloRsp
		if err := c.Call(r.Context(), "greeter", "Greeter.Hello", &HelloReq{Name: r.URL.Query().Get("name")}, &rsp, client.WithAddress(addr)); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode(rsp)
	})
}

// TestTraceGoesFromTheHTTPHeaderIntoTheService: a request with a traceparent gets a server
// span, its child, in the caller's trace; the RPC client continues it, and the service's span
// is in the same trace, one trace id from the HTTP header to the service.
func TestTraceGoesFromTheHTTPHeaderIntoTheService(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tr := wrapper.NewTracing(wrapper.WithTracerProvider(tp))
	g, h := greeterService(t, tr)
	srv := serve(t, newPolicy(t, policy.Config{}, policy.WithTracing(tr)), h)

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	a := get(t, srv, "GET", "/greeter/hello?name=hobo", "", "traceparent", "00-"+traceID+"-"+parentID+"-01")
	a.want(t, "traced call", 200, "Hello hobo")

	byKind := map[trace.SpanKind][]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byKind[s.SpanKind] = append(byKind[s.SpanKind], s)
		if got := s.SpanContext.TraceID().String(); got != traceID {
			t.Fatalf("span %q in trace %s, want the header's %s", s.Name, got, traceID)
		}
	}
	servers, clients := byKind[trace.SpanKindServer], byKind[trace.SpanKindClient]
	if len(servers) != 2 || len(clients) != 1 {
		t.Fatalf("want the gateway's and the service's server spans and the client's span, got %+v", exp.GetSpans())
	}
	var httpSpan, rpcSpan tracetest.SpanStub
	for _, s := range servers {
		if s.Name == "GET /greeter/hello" {
			httpSpan = s
		} else {
			rpcSpan = s
		}
	}
	if httpSpan.Parent.SpanID().String() != parentID || !httpSpan.Parent.IsRemote() {
		t.Fatalf("the HTTP span's parent is %s, want the header's %s", httpSpan.Parent.SpanID(), parentID)
	}
	if clients[0].Parent.SpanID() != httpSpan.SpanContext.SpanID() || rpcSpan.Parent.SpanID() != clients[0].SpanContext.SpanID() {
		t.Fatalf("HTTP span %s → client span (parent %s) %s → service span (parent %s)",
			httpSpan.SpanContext.SpanID(), clients[0].Parent.SpanID(), clients[0].SpanContext.SpanID(), rpcSpan.Parent.SpanID())
	}
	if g.last().SpanID() != rpcSpan.SpanContext.SpanID() {
		t.Fatal("the service's handler does not run in its span")
	}
	attrs := map[string]any{}
	for _, kv := range httpSpan.Attributes {
		attrs[string(kv.Key)] = kv.Value.AsInterface()
	}
	if attrs["http.response.status_code"] != int64(200) || attrs["http.route"] != "/greeter/hello" || attrs["http.request.method"] != "GET" {
		t.Fatalf("HTTP span attributes %v", attrs)
	}
}

// TestUnsampledRequestsStillCarryTheirTrace: with a sampler that keeps none (1% of none), a
// request records no span at all, yet the service sees the caller's trace id; a request
// without a traceparent starts a trace of its own that the service sees too.
func TestUnsampledRequestsStillCarryTheirTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tr := wrapper.NewTracing(wrapper.WithTracerProvider(tp), wrapper.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0))))
	g, h := greeterService(t, tr)
	srv := serve(t, newPolicy(t, policy.Config{}, policy.WithTracing(tr)), h)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	get(t, srv, "GET", "/greeter/hello?name=a", "", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-00").want(t, "unsampled", 200, "Hello a")
	if sc := g.last(); sc.TraceID().String() != traceID || sc.IsSampled() {
		t.Fatalf("the service saw %v, want trace %s, not sampled", sc, traceID)
	}
	get(t, srv, "GET", "/greeter/hello?name=b", "").want(t, "no traceparent", 200, "Hello b")
	if sc := g.last(); !sc.TraceID().IsValid() || sc.TraceID().String() == traceID {
		t.Fatalf("the service saw %v, want a trace of its own", sc)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans recorded, want none", n)
	}
}
