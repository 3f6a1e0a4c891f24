package wrapper_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// TestTracingAttemptsAndEndpoints: the span names and attributes built once per endpoint are
// right for every endpoint and attempt (those with prebuilt options and those past them), and
// one endpoint's spans never show another's attributes.
func TestTracingAttemptsAndEndpoints(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	tr := wrapper.NewTracing(wrapper.WithTracerProvider(tp))
	call := tr.CallWrapper()(func(context.Context, *client.Request, any) error { return nil })
	for attempt := 1; attempt <= 7; attempt++ {
		for _, ep := range []string{"A.One", "B.Two"} {
			exp.Reset()
			if err := call(context.Background(), &client.Request{Service: "svc", Endpoint: ep, Attempt: attempt}, nil); err != nil {
				t.Fatal(err)
			}
			spans := exp.GetSpans()
			if len(spans) != 1 || spans[0].Name != "svc/"+ep || spans[0].SpanKind != trace.SpanKindClient {
				t.Fatalf("attempt %d of %s: spans %+v", attempt, ep, spans)
			}
			attrs := attribute.NewSet(spans[0].Attributes...)
			if v, _ := attrs.Value("micro.attempt"); v.AsInt64() != int64(attempt) {
				t.Fatalf("attempt %d of %s: micro.attempt = %v", attempt, ep, v.Emit())
			}
			if v, _ := attrs.Value("rpc.method"); v.AsString() != ep || attrs.Len() != 4 {
				t.Fatalf("attempt %d of %s: attributes %v", attempt, ep, spans[0].Attributes)
			}
		}
	}
}

// TestTracingSampledOutSpanStillPropagates: a span the sampler drops records nothing but its
// context (not sampled) still goes along, so the callee does not sample the trace either.
func TestTracingSampledOutSpanStillPropagates(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.NeverSample()))
	defer tp.Shutdown(context.Background())
	tr := wrapper.NewTracing(wrapper.WithTracerProvider(tp))
	var md metadata.Metadata
	call := tr.CallWrapper()(func(ctx context.Context, _ *client.Request, _ any) error {
		md, _ = metadata.FromContext(ctx)
		return status.New(status.Internal, "boom") // ending a non-recording span with an error
	})
	call(context.Background(), &client.Request{Service: "s", Endpoint: "E.M", Attempt: 1}, nil)
	if tp := md["traceparent"]; !strings.HasPrefix(tp, "00-") || !strings.HasSuffix(tp, "-00") {
		t.Fatalf("traceparent %q, want a not-sampled one", tp)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans recorded", n)
	}
}

// TestTracingNoopProvider: with a provider that makes no spans the call's metadata is left as
// it was, and the caller's still goes along.
func TestTracingNoopProvider(t *testing.T) {
	tr := wrapper.NewTracing(wrapper.WithTracerProvider(noop.NewTracerProvider()))
	var md metadata.Metadata
	var had bool
	call := tr.CallWrapper()(func(ctx context.Context, _ *client.Request, _ any) error {
		md, had = metadata.FromContext(ctx)
		return nil
	})
	req := &client.Request{Service: "s", Endpoint: "E.M", Attempt: 1}
	call(context.Background(), req, nil)
	if had {
		t.Fatalf("metadata %v added to a call that had none", md)
	}
	call(metadata.NewContext(context.Background(), metadata.Metadata{"user": "bob"}), req, nil)
	if len(md) != 1 || md["user"] != "bob" {
		t.Fatalf("metadata %v, want the caller's", md)
	}
}

// TestTracingServerReadsHeadersOrContext: the server span's parent comes from the call's wire
// headers, or from the context's metadata for a request without headers; a custom propagator
// is used on both sides.
func TestTracingServerReadsHeadersOrContext(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	for _, prop := range []propagation.TextMapPropagator{nil, propagation.TraceContext{}} {
		opts := []wrapper.TracingOption{wrapper.WithTracerProvider(tp)}
		if prop != nil {
			opts = append(opts, wrapper.WithPropagator(prop))
		}
		tr := wrapper.NewTracing(opts...)
		var got trace.SpanContext
		handle := tr.HandlerWrapper()(func(ctx context.Context, _ *server.Request, _ any) error {
			got = trace.SpanContextFromContext(ctx)
			return nil
		})
		for _, viaHeader := range []bool{true, false} {
			exp.Reset()
			var parent trace.SpanContext
			call := tr.CallWrapper()(func(ctx context.Context, req *client.Request, rsp any) error {
				parent = trace.SpanContextFromContext(ctx)
				md, _ := metadata.FromContext(ctx)
				sreq := &server.Request{Service: req.Service, Endpoint: req.Endpoint}
				sctx := metadata.NewContext(context.Background(), md)
				if viaHeader {
					sreq.Header = map[string]string{"Micro-Endpoint": req.Endpoint}
					metadata.ToHeader(md, sreq.Header)
					sctx = context.Background()
				}
				return handle(sctx, sreq, rsp)
			})
			if err := call(context.Background(), &client.Request{Service: "s", Endpoint: "E.M", Attempt: 1}, nil); err != nil {
				t.Fatal(err)
			}
			spans := exp.GetSpans()
			if len(spans) != 2 || got.TraceID() != parent.TraceID() {
				t.Fatalf("header %v: %d spans, handler trace %s, caller %s", viaHeader, len(spans), got.TraceID(), parent.TraceID())
			}
			for _, s := range spans {
				if s.SpanKind == trace.SpanKindServer && (s.Parent.SpanID() != parent.SpanID() || !s.Parent.IsRemote()) {
					t.Fatalf("header %v: server span's parent %s, want %s", viaHeader, s.Parent.SpanID(), parent.SpanID())
				}
			}
		}
	}
}

func TestLimiterInfiniteRateNeverRefuses(t *testing.T) {
	l, err := wrapper.NewLimiter(math.Inf(1), 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, 0)
	l.WithClock(func() time.Time { return now }) // every call at the same instant
	call := l.CallWrapper(false)(func(context.Context, *client.Request, any) error { return nil })
	for i := range 1000 {
		if err := call(context.Background(), &client.Request{Service: "s", Endpoint: "e"}, nil); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if _, err := wrapper.NewLimiter(math.NaN(), 1); err == nil {
		t.Fatal("a NaN rate was accepted")
	}
}

// TestBreakerSuccessResetsFailures: consecutive means consecutive: a success between failures
// starts the count again.
func TestBreakerSuccessResetsFailures(t *testing.T) {
	b := wrapper.NewBreaker(wrapper.BreakAfter(3))
	var fail bool
	call := b.Wrapper()(func(context.Context, *client.Request, any) error {
		if fail {
			return &status.Error{Code: status.Unavailable, Message: "down"}
		}
		return nil
	})
	req := &client.Request{Service: "s", Endpoint: "e"}
	for i, f := range []bool{true, true, false, true, true} {
		fail = f
		call(context.Background(), req, nil)
		if got := b.State("s", "e"); got != wrapper.Closed {
			t.Fatalf("call %d: %s", i, got)
		}
	}
	fail = true
	call(context.Background(), req, nil)
	if got := b.State("s", "e"); got != wrapper.Open {
		t.Fatalf("after 3 consecutive failures: %s", got)
	}
}

// TestBreakerOneProbeAtATime: while a probe runs, other calls fail fast; its success closes
// the circuit for everyone. Run with -race: many callers share the circuit.
func TestBreakerOneProbeAtATime(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := wrapper.NewBreaker(wrapper.BreakAfter(1), wrapper.OpenFor(time.Second), wrapper.BreakerClock(clock))
	release := make(chan struct{})
	probing := make(chan struct{})
	mode := "fail"
	call := b.Wrapper()(func(context.Context, *client.Request, any) error {
		switch mode {
		case "fail":
			return &status.Error{Code: status.Unavailable, Message: "down"}
		case "probe":
			close(probing)
			<-release
		}
		return nil
	})
	req := &client.Request{Service: "s", Endpoint: "e"}
	call(context.Background(), req, nil)
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	mode = "probe"
	done := make(chan error)
	go func() { done <- call(context.Background(), req, nil) }()
	<-probing
	if err := call(context.Background(), req, nil); status.CodeOf(err) != status.Unavailable {
		t.Fatalf("a second call while probing: %v, want fail-fast", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mode = "ok"
	var wg sync.WaitGroup
	errs := make(chan error, 800)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if err := call(context.Background(), req, nil); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("after a good probe: %v", err)
	}
	if got := b.State("s", "e"); got != wrapper.Closed {
		t.Fatalf("state %s", got)
	}
}

// TestMetricsSeriesAppearWhenCounted: an endpoint whose calls all failed has no "ok" series,
// and the series handles kept per endpoint count into the registry's series.
func TestMetricsSeriesAppearWhenCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := wrapper.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	failing := m.CallWrapper()(func(context.Context, *client.Request, any) error {
		return status.New(status.NotFound, "no")
	})
	ok := m.CallWrapper()(func(context.Context, *client.Request, any) error { return nil })
	panicky := m.HandlerWrapper()(func(context.Context, *server.Request, any) error {
		return errors.Join(server.ErrPanic, errors.New("boom"))
	})
	for range 3 {
		failing(context.Background(), &client.Request{Service: "s", Endpoint: "Bad"}, nil)
		ok(context.Background(), &client.Request{Service: "s", Endpoint: "Good"}, nil)
		panicky(context.Background(), &server.Request{Service: "s", Endpoint: "Boom"}, nil)
	}
	if got := sum(t, reg, "micro_client_requests_total", "ok"); got != 3 {
		t.Errorf("ok = %v, want 3", got)
	}
	if got := sum(t, reg, "micro_client_requests_total", "404"); got != 3 {
		t.Errorf("404 = %v, want 3", got)
	}
	if n := series(t, reg, "micro_client_requests_total"); n != 2 {
		t.Errorf("%d client request series, want 2 (Good ok, Bad 404)", n)
	}
	if n := series(t, reg, "micro_server_request_duration_seconds"); n != 1 {
		t.Errorf("%d server latency series, want 1", n)
	}
	if got := sum(t, reg, "micro_server_panics_total", ""); got != 3 {
		t.Errorf("panics = %v, want 3", got)
	}
	for _, mf := range gather(t, reg, "micro_client_request_duration_seconds") {
		if mf.GetHistogram().GetSampleCount() != 3 {
			t.Errorf("latency series %v: %d samples, want 3", mf.GetLabel(), mf.GetHistogram().GetSampleCount())
		}
	}
}
