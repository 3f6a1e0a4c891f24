package wrapper_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// The benchmarks run a call through a client wrapper chain and a server wrapper chain joined by
// a fake transport that does what client and server do with metadata: the client's context
// metadata goes into Md- headers, the server builds the handler's context metadata from them.
// BenchmarkNoWrappers is that fake transport alone: a wrapper's cost is the difference.

// countingProcessor records nothing but counts ended spans: the SDK still samples, records and
// ends every span, as in bench/cmd/rpc.
type countingProcessor struct{ ended *atomic.Int64 }

func (countingProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p countingProcessor) OnEnd(sdktrace.ReadOnlySpan)                   { p.ended.Add(1) }
func (countingProcessor) Shutdown(context.Context) error                  { return nil }
func (countingProcessor) ForceFlush(context.Context) error                { return nil }

func benchTracing(b *testing.B) (*wrapper.Tracing, *atomic.Int64) {
	return benchTracingSampled(b, sdktrace.AlwaysSample())
}

func benchTracingSampled(b *testing.B, sampler sdktrace.Sampler, opts ...wrapper.TracingOption) (*wrapper.Tracing, *atomic.Int64) {
	var ended atomic.Int64
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(countingProcessor{&ended}), sdktrace.WithSampler(sampler))
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	return wrapper.NewTracing(append([]wrapper.TracingOption{wrapper.WithTracerProvider(tp)}, opts...)...), &ended
}

// benchTracingWithSampler samples 1% of the traces in the wrapper (WithSampler), the tracer
// provider keeping what it is given.
func benchTracingWithSampler(b *testing.B) (*wrapper.Tracing, *atomic.Int64) {
	return benchTracingSampled(b, sdktrace.ParentBased(sdktrace.AlwaysSample()),
		wrapper.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
}

func benchChain(cw []client.CallWrapper, sw []server.HandlerWrapper) client.CallFunc {
	var handler server.HandlerFunc = func(ctx context.Context, req *server.Request, rsp any) error {
		*rsp.(*Rsp) = Rsp{Node: "bench"}
		return nil
	}
	for i := len(sw) - 1; i >= 0; i-- {
		handler = sw[i](handler)
	}
	var call client.CallFunc = func(ctx context.Context, req *client.Request, rsp any) error {
		h := map[string]string{"Micro-Service": req.Service, "Micro-Endpoint": req.Endpoint}
		metadata.ContextToHeader(ctx, h)
		sctx := metadata.HeaderContext(context.Background(), h)
		return handler(sctx, &server.Request{Service: req.Service, Endpoint: req.Endpoint, Header: h, Body: req.Body}, rsp)
	}
	for i := len(cw) - 1; i >= 0; i-- {
		call = cw[i](call)
	}
	return call
}

func runChain(b *testing.B, call client.CallFunc) {
	b.ReportAllocs()
	ctx := context.Background()
	body := &Req{Name: "x"}
	for b.Loop() {
		req := &client.Request{Service: "echo", Endpoint: "Echo.Say", Body: body, Attempt: 1}
		var rsp Rsp
		if err := call(ctx, req, &rsp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNoWrappers(b *testing.B) {
	runChain(b, benchChain(nil, nil))
}

func BenchmarkTracingCall(b *testing.B) {
	tr, ended := benchTracing(b)
	runChain(b, benchChain([]client.CallWrapper{tr.CallWrapper()}, []server.HandlerWrapper{tr.HandlerWrapper()}))
	if ended.Load() == 0 {
		b.Fatal("no span ended")
	}
}

// BenchmarkTracingSampledCall traces 1% of the calls, as busy services sample: the other calls
// still get IDs and carry traceparent, but record nothing.
func BenchmarkTracingSampledCall(b *testing.B) {
	tr, ended := benchTracingSampled(b, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)))
	runChain(b, benchChain([]client.CallWrapper{tr.CallWrapper()}, []server.HandlerWrapper{tr.HandlerWrapper()}))
	if n := ended.Load(); b.N >= 10000 && (n == 0 || n > int64(b.N)/10) {
		b.Fatalf("%d spans ended in %d calls, want about 2%%", n, b.N)
	}
}

// BenchmarkTracingWithSamplerCall is BenchmarkTracingSampledCall with the sampler on the
// wrapper: the calls it drops start no span.
func BenchmarkTracingWithSamplerCall(b *testing.B) {
	tr, ended := benchTracingWithSampler(b)
	runChain(b, benchChain([]client.CallWrapper{tr.CallWrapper()}, []server.HandlerWrapper{tr.HandlerWrapper()}))
	if n := ended.Load(); b.N >= 10000 && (n == 0 || n > int64(b.N)/10) {
		b.Fatalf("%d spans ended in %d calls, want about 2%%", n, b.N)
	}
}

func BenchmarkMetricsCall(b *testing.B) {
	m, err := wrapper.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	runChain(b, benchChain([]client.CallWrapper{m.CallWrapper()}, []server.HandlerWrapper{m.HandlerWrapper()}))
}

func BenchmarkBreakerAndLimiterCall(b *testing.B) {
	cl, _ := wrapper.NewLimiter(1e9, 1<<20)
	sl, _ := wrapper.NewLimiter(1e9, 1<<20)
	runChain(b, benchChain([]client.CallWrapper{cl.CallWrapper(false), wrapper.NewBreaker().Wrapper()},
		[]server.HandlerWrapper{sl.HandlerWrapper(false)}))
}

// allWrappers is bench/cmd/rpc's "micro tcp + wrappers": client metrics → rate limit → breaker
// → tracing, server metrics → rate limit → tracing, the limits a billion calls a second.
func allWrappers(b *testing.B) client.CallFunc {
	m, err := wrapper.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	tr, _ := benchTracing(b)
	cl, _ := wrapper.NewLimiter(1e9, 1<<20)
	sl, _ := wrapper.NewLimiter(1e9, 1<<20)
	return benchChain(
		[]client.CallWrapper{m.CallWrapper(), cl.CallWrapper(false), wrapper.NewBreaker().Wrapper(), tr.CallWrapper()},
		[]server.HandlerWrapper{m.HandlerWrapper(), sl.HandlerWrapper(false), tr.HandlerWrapper()})
}

func BenchmarkAllWrappers(b *testing.B) {
	runChain(b, allWrappers(b))
}

// BenchmarkAllWrappersParallel is BenchmarkAllWrappers from GOMAXPROCS goroutines at once: the
// shared state (breaker circuits, limiter buckets, caches) under contention.
func BenchmarkAllWrappersParallel(b *testing.B) {
	call := allWrappers(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		body := &Req{Name: "x"}
		for pb.Next() {
			req := &client.Request{Service: "echo", Endpoint: "Echo.Say", Body: body, Attempt: 1}
			var rsp Rsp
			if err := call(ctx, req, &rsp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchTCP calls an echo server over a real tcp transport from 50 goroutines (on 2 CPUs), with
// the wrappers of allWrappers or none: the wrappers' share of a whole call.
func benchTCP(b *testing.B, wrapped bool) {
	var tr *wrapper.Tracing
	if wrapped {
		tr, _ = benchTracing(b)
	}
	benchTCPWith(b, tr)
}

// benchTCPWith is benchTCP with the tracing tr among the wrappers, or no wrappers if tr is nil.
func benchTCPWith(b *testing.B, tr *wrapper.Tracing) {
	wrapped := tr != nil
	tcpt := tcp.New()
	var sopts []server.Option
	var copts []client.Option
	if wrapped {
		m, err := wrapper.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		cl, _ := wrapper.NewLimiter(1e9, 1<<20)
		sl, _ := wrapper.NewLimiter(1e9, 1<<20)
		copts = append(copts, client.Wrap(m.CallWrapper(), cl.CallWrapper(false), wrapper.NewBreaker().Wrapper(), tr.CallWrapper()))
		sopts = append(sopts, server.WrapHandler(m.HandlerWrapper(), sl.HandlerWrapper(false), tr.HandlerWrapper()))
	}
	srv, err := server.New(append([]server.Option{server.Name("greeter"), server.Transport(tcpt), server.GracePeriod(0),
		server.Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, sopts...)...)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Handle(&Node{id: "n", mode: "ok"}, server.HandlerName("Greeter")); err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Stop(context.Background())
	c, err := client.New(append([]client.Option{client.Transport(tcpt), client.PoolSize(64),
		client.Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, copts...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addr := srv.Addr()
	b.ReportAllocs()
	b.SetParallelism(25)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var rsp Rsp
			if err := c.Call(context.Background(), "greeter", "Greeter.Hello", &Req{Name: "x"}, &rsp, client.WithAddress(addr)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTCPCall(b *testing.B)            { benchTCP(b, false) }
func BenchmarkTCPCallAllWrappers(b *testing.B) { benchTCP(b, true) }

// BenchmarkTCPCallAllWrappersSampled traces 1% of the calls, sampled by the tracer provider.
func BenchmarkTCPCallAllWrappersSampled(b *testing.B) {
	tr, _ := benchTracingSampled(b, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)))
	benchTCPWith(b, tr)
}

// BenchmarkTCPCallAllWrappersWithSampler traces 1% of the calls, sampled by the wrapper.
func BenchmarkTCPCallAllWrappersWithSampler(b *testing.B) {
	tr, _ := benchTracingWithSampler(b)
	benchTCPWith(b, tr)
}
