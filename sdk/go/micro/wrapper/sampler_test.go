package wrapper_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// countingProvider counts the spans its tracers start, recorded or not.
type countingProvider struct {
	trace.TracerProvider
	started atomic.Int64
}

func (p *countingProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return countingTracer{p.TracerProvider.Tracer(name, opts...), &p.started}
}

type countingTracer struct {
	trace.Tracer
	started *atomic.Int64
}

func (t countingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	t.started.Add(1)
	return t.Tracer.Start(ctx, name, opts...)
}

// sampledTracing is a Tracing with WithSampler(s) on a provider that exports every span it is
// given, counting the spans started.
func sampledTracing(t *testing.T, s sdktrace.Sampler) (*tracetest.InMemoryExporter, *countingProvider, *wrapper.Tracing) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { sdk.Shutdown(context.Background()) })
	cp := &countingProvider{TracerProvider: sdk}
	return exp, cp, wrapper.NewTracing(wrapper.WithTracerProvider(cp), wrapper.WithSampler(s))
}

// TestWithSamplerDropsWithoutSpans: a call the sampler drops starts no span on either side,
// yet carries a trace context that is not sampled, continues the caller's trace, and reaches
// the handler's context; the handler's own calls continue it too.
func TestWithSamplerDropsWithoutSpans(t *testing.T) {
	exp, cp, tr := sampledTracing(t, sdktrace.ParentBased(sdktrace.NeverSample()))
	h, c, addr := tracedGreeter(t, tr)

	// A root call: a new trace, not sampled.
	var rsp Rsp
	if err := c.Call(context.Background(), "greeter", "Greeter.Hello", &Req{Name: "x"}, &rsp, client.WithAddress(addr)); err != nil {
		t.Fatal(err)
	}
	if n := cp.started.Load(); n != 0 {
		t.Fatalf("%d spans started for a dropped call, want 0", n)
	}
	if h.sc.IsSampled() || !h.sc.IsValid() || !h.sc.IsRemote() {
		t.Fatalf("the handler's span context %+v: want the caller's, valid, remote, not sampled", h.sc)
	}
	tp := h.md["traceparent"]
	if want := "00-" + h.sc.TraceID().String() + "-" + h.sc.SpanID().String() + "-00"; tp != want {
		t.Fatalf("traceparent %q, want %q", tp, want)
	}

	// A call made under an unsampled caller (as a handler's calls are): the same trace, a new
	// span ID.
	caller := h.sc
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), caller)
	if err := c.Call(ctx, "greeter", "Greeter.Hello", &Req{Name: "x"}, &rsp, client.WithAddress(addr)); err != nil {
		t.Fatal(err)
	}
	if h.sc.TraceID() != caller.TraceID() || h.sc.SpanID() == caller.SpanID() || h.sc.IsSampled() {
		t.Fatalf("second call's span context %+v: want trace %s, a new span ID, not sampled", h.sc, caller.TraceID())
	}
	if n := cp.started.Load(); n != 0 || len(exp.GetSpans()) != 0 {
		t.Fatalf("%d spans started, %d exported, want none", n, len(exp.GetSpans()))
	}

	// A caller that samples: the server's ParentBased sampler follows it and starts a span.
	sampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: caller.TraceID(), SpanID: caller.SpanID(), TraceFlags: trace.FlagsSampled, Remote: true})
	ctx = trace.ContextWithRemoteSpanContext(context.Background(), sampled)
	if err := c.Call(ctx, "greeter", "Greeter.Hello", &Req{Name: "x"}, &rsp, client.WithAddress(addr)); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || cp.started.Load() != 2 {
		t.Fatalf("a sampled caller: %d spans exported, %d started, want a client and a server span", len(spans), cp.started.Load())
	}
	for _, s := range spans {
		if s.SpanContext.TraceID() != caller.TraceID() {
			t.Fatalf("%s span in trace %s, want %s", s.SpanKind, s.SpanContext.TraceID(), caller.TraceID())
		}
	}
}

// TestWithSamplerKeepsTheSameTraces: with a ratio sampler on the client and a ParentBased one on
// the server, every trace is whole: a server span exactly for each client span, its child.
func TestWithSamplerKeepsTheSameTraces(t *testing.T) {
	sampler := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5))
	exp, _, tr := sampledTracing(t, sampler)
	_, c, addr := tracedGreeter(t, tr)
	const calls = 200
	for range calls {
		var rsp Rsp
		if err := c.Call(context.Background(), "greeter", "Greeter.Hello", &Req{Name: "x"}, &rsp, client.WithAddress(addr)); err != nil {
			t.Fatal(err)
		}
	}
	clients := map[trace.SpanID]bool{}
	var servers []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		switch s.SpanKind {
		case trace.SpanKindClient:
			clients[s.SpanContext.SpanID()] = true
		case trace.SpanKindServer:
			servers = append(servers, s)
		}
	}
	// 200 calls at 50%: fewer than 40 or more than 160 traced has a probability below 1e-17.
	if len(clients) < 40 || len(clients) > 160 || len(servers) != len(clients) {
		t.Fatalf("%d client spans and %d server spans of %d calls at 50%%: want about half, as many of each", len(clients), len(servers), calls)
	}
	for _, s := range servers {
		if !clients[s.Parent.SpanID()] {
			t.Fatalf("server span %s's parent %s is no client span", s.SpanContext.SpanID(), s.Parent.SpanID())
		}
	}
}

// TestWithSamplerCostsLess: a dropped call allocates less than an unsampled call of a tracer
// provider sampling the same way, and sends the same traceparent as the W3C propagator would.
func TestWithSamplerCostsLess(t *testing.T) {
	run := func(tr *wrapper.Tracing) (float64, map[string]string) {
		var sent map[string]string
		call := benchChain([]client.CallWrapper{tr.CallWrapper()}, []server.HandlerWrapper{tr.HandlerWrapper(),
			func(next server.HandlerFunc) server.HandlerFunc {
				return func(ctx context.Context, req *server.Request, rsp any) error {
					sent = req.Header
					return next(ctx, req, rsp)
				}
			}})
		ctx := context.Background()
		allocs := testing.AllocsPerRun(200, func() {
			var rsp Rsp
			if err := call(ctx, &client.Request{Service: "echo", Endpoint: "Echo.Say", Body: &Req{Name: "x"}, Attempt: 1}, &rsp); err != nil {
				t.Fatal(err)
			}
		})
		return allocs, sent
	}
	never := sdktrace.ParentBased(sdktrace.NeverSample())
	onProvider := wrapper.NewTracing(wrapper.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSampler(never))))
	_, _, withSampler := sampledTracing(t, never)
	before, _ := run(onProvider)
	after, sent := run(withSampler)
	t.Logf("allocations of an unsampled call: %v with the provider's sampler, %v with WithSampler", before, after)
	if after >= before {
		t.Fatalf("a dropped call allocates %v times, an unsampled one on the provider %v: want fewer", after, before)
	}
	tp := sent["Md-traceparent"]
	sc := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	got := trace.SpanContextFromContext(sc)
	if !got.IsValid() || got.IsSampled() || strings.ToLower(tp) != tp {
		t.Fatalf("traceparent %q: the W3C propagator reads %+v", tp, got)
	}
}

// TestWithSamplerDropsStreams: a stream the sampler drops starts no span, and its handler's
// context holds the trace context the client sent, not sampled.
func TestWithSamplerDropsStreams(t *testing.T) {
	exp, cp, tr := sampledTracing(t, sdktrace.ParentBased(sdktrace.NeverSample()))
	h := &Echoer{}
	tcpt, srv := startTCPServer(t, "echo", h, "Echoer", tr.HandlerWrapper())
	c, err := client.New(client.Transport(tcpt), client.WrapStream(tr.StreamWrapper()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Stream(context.Background(), "echo", "Echoer.Echo", client.WithAddress(srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&Req{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	var rsp Rsp
	if err := st.Recv(&rsp); err != nil || rsp.Node != "a" {
		t.Fatalf("Recv: %v, %+v", err, rsp)
	}
	st.Close()
	h.mu.Lock()
	sc := h.sc
	h.mu.Unlock()
	if !sc.IsValid() || !sc.IsRemote() || sc.IsSampled() {
		t.Fatalf("the handler's span context %+v: want the client's, valid, remote, not sampled", sc)
	}
	if n := cp.started.Load(); n != 0 || len(exp.GetSpans()) != 0 {
		t.Fatalf("%d spans started, %d exported for a dropped stream, want none", n, len(exp.GetSpans()))
	}
}
