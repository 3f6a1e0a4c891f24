package wrapper

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
)

// TracerName is the instrumentation scope of the spans Tracing starts.
const TracerName = "github.com/configd/configd/sdk/go/micro/wrapper"

// TracingOptions configure Tracing.
type TracingOptions struct {
	// TracerProvider starts the spans; default otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// Propagator carries the span context in the call's metadata; default W3C trace context
	// and baggage (traceparent, tracestate, baggage), whatever the global propagator is.
	Propagator propagation.TextMapPropagator
	// Sampler, when set, decides whether a call is traced before a span is started: see
	// WithSampler.
	Sampler sdktrace.Sampler
}

// TracingOption sets a TracingOptions field.
type TracingOption func(*TracingOptions)

// WithTracerProvider sets the tracer provider.
func WithTracerProvider(tp trace.TracerProvider) TracingOption {
	return func(o *TracingOptions) { o.TracerProvider = tp }
}

// WithPropagator sets the propagator.
func WithPropagator(p propagation.TextMapPropagator) TracingOption {
	return func(o *TracingOptions) { o.Propagator = p }
}

// WithSampler has Tracing ask s whether a call is traced before it starts a span, with the
// call's parent span context (the caller's, on a server), a trace ID, the span's name and
// kind. A call s drops starts no span at all, which halves what an untraced call costs: it
// still carries a trace context, with a span ID of its own and the sampled flag off, so the
// services it calls decide the same way (a ParentBased sampler follows the caller), and a
// handler's context holds its caller's span context, for logs. A call s keeps starts its span
// with the tracer provider as it would without this option, so the provider's sampler must
// keep what it is given: its default, ParentBased(AlwaysSample()), does.
//
// A busy service traces 1% of its calls with
// WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))): the same decisions as
// that sampler on the tracer provider, without the spans of the other 99%.
func WithSampler(s sdktrace.Sampler) TracingOption {
	return func(o *TracingOptions) { o.Sampler = s }
}

// Tracing starts OpenTelemetry spans: a client span per attempt of a call (CallWrapper) and a
// server span per handled call (HandlerWrapper), named "service/Type.Method", with the
// attributes rpc.system=micro, rpc.service and rpc.method (and micro.attempt on the client).
// The client injects the span context into the call's metadata (on the wire as
// Md-traceparent, ...); the server extracts it, so the server span is the client span's
// child. A failed call sets the span's status to Error with the status code in
// micro.status_code.
//
// Recording a span costs the OpenTelemetry SDK a few microseconds and allocations; a call
// records two. A busy service should sample, as OpenTelemetry recommends, and is best served
// by WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))), which records 1% of
// the traces and starts no span for the others; a call that is not sampled still carries its
// trace context, costs little and is counted by Metrics.
type Tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	// defaultProp: prop is the default W3C trace context + baggage, which injects nothing for
	// an invalid span context without baggage, and only traceparent for a span context without
	// trace state and a context without baggage.
	defaultProp bool
	sampler     sdktrace.Sampler // WithSampler's, or nil
	endpoints   *endpointCache[*spanEndpoint]
}

// NewTracing returns a Tracing.
func NewTracing(opts ...TracingOption) *Tracing {
	var o TracingOptions
	for _, f := range opts {
		f(&o)
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	t := &Tracing{prop: o.Propagator, sampler: o.Sampler}
	if t.prop == nil {
		t.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
		t.defaultProp = true
	}
	t.tracer = o.TracerProvider.Tracer(TracerName)
	t.endpoints = newEndpointCache(false, newSpanEndpoint)
	return t
}

// spanEndpoint is what the spans of one service+endpoint share, built once: the name
// "service/endpoint", the attributes and the start options. The attribute slices are never
// changed after they are built: the SDK copies them into each span.
type spanEndpoint struct {
	name       string
	attrs      []attribute.KeyValue // rpc.system, rpc.service, rpc.method
	serverOpts []trace.SpanStartOption
	clientOpts []trace.SpanStartOption
}

func newSpanEndpoint(service, endpoint string) *spanEndpoint {
	return &spanEndpoint{
		name: service + "/" + endpoint,
		attrs: []attribute.KeyValue{
			attribute.String("rpc.system", "micro"),
			attribute.String("rpc.service", service),
			attribute.String("rpc.method", endpoint),
		},
		serverOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)},
		clientOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)},
	}
}

// setAttributes sets the attributes of a recorded span. They are set after the start rather
// than passed to it, so a span that is not sampled costs no copy of them; a sampler decides
// on the span's name (service/endpoint), kind and parent.
func (e *spanEndpoint) setAttributes(span trace.Span, attempt int) {
	if !span.IsRecording() {
		return
	}
	if attempt == 0 {
		span.SetAttributes(e.attrs...)
		return
	}
	span.SetAttributes(e.attrs[0], e.attrs[1], e.attrs[2], attribute.Int("micro.attempt", attempt))
}

func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, err.Error())
		span.SetAttributes(attribute.Int("micro.status_code", int(status.CodeOf(err))))
	}
	span.End()
}

// CallWrapper starts a client span per attempt and sends its context along. Placed outside
// Retry it spans the whole call instead.
func (t *Tracing) CallWrapper() client.CallWrapper {
	return func(next client.CallFunc) client.CallFunc {
		return func(ctx context.Context, req *client.Request, rsp any) (err error) {
			e := t.endpoints.get(req.Service, req.Endpoint)
			if sc, dropped := t.drop(ctx, e.name, trace.SpanKindClient); dropped {
				return next(t.sendAlong(ctx, sc, false), req, rsp)
			}
			ctx, span := t.tracer.Start(ctx, e.name, e.clientOpts...)
			defer func() { endSpan(span, err) }()
			e.setAttributes(span, max(req.Attempt, 1))
			return next(t.sendAlong(ctx, span.SpanContext(), true), req, rsp)
		}
	}
}

// StreamWrapper starts a client span per attempt to open a stream, sends its context along
// like CallWrapper (the server's span of the stream is its child), and ends it when the stream
// ends: at the error Recv returns (io.EOF is a clean end), or at Close.
func (t *Tracing) StreamWrapper() client.StreamWrapper {
	return func(next client.StreamFunc) client.StreamFunc {
		return func(ctx context.Context, req *client.Request) (client.Stream, error) {
			e := t.endpoints.get(req.Service, req.Endpoint)
			if sc, dropped := t.drop(ctx, e.name, trace.SpanKindClient); dropped {
				return next(t.sendAlong(ctx, sc, false), req)
			}
			ctx, span := t.tracer.Start(ctx, e.name, e.clientOpts...)
			e.setAttributes(span, max(req.Attempt, 1))
			st, err := next(t.sendAlong(ctx, span.SpanContext(), true), req)
			if err != nil {
				endSpan(span, err)
				return nil, err
			}
			return watchEnd(st, func(err error) { endSpan(span, err) }), nil
		}
	}
}

// drop asks WithSampler's sampler, if there is one, whether a call named name starts a span of
// kind. When it does not, drop returns the span context the call carries instead: the trace of
// ctx's span context, or a new trace, with a new span ID, not sampled.
func (t *Tracing) drop(ctx context.Context, name string, kind trace.SpanKind) (trace.SpanContext, bool) {
	if t.sampler == nil {
		return trace.SpanContext{}, false
	}
	psc := trace.SpanContextFromContext(ctx)
	tid := psc.TraceID()
	if !tid.IsValid() {
		tid = newTraceID()
	}
	res := t.sampler.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: tid, Name: name, Kind: kind})
	if res.Decision != sdktrace.Drop {
		return trace.SpanContext{}, false
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: newSpanID(),
		TraceFlags: psc.TraceFlags() &^ trace.FlagsSampled, TraceState: res.Tracestate}), true
}

// newTraceID and newSpanID make random IDs, as the OpenTelemetry SDK's default generator does.
func newTraceID() (id trace.TraceID) {
	for !id.IsValid() {
		binary.NativeEndian.PutUint64(id[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() (id trace.SpanID) {
	for !id.IsValid() {
		binary.NativeEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

// sendAlong returns ctx with sc (and ctx's baggage) added to the call's metadata, as the
// propagator writes them; inCtx says sc is ctx's span context already. The default propagator's
// usual case, a span context without trace state and no baggage, is written directly: one
// traceparent.
func (t *Tracing) sendAlong(ctx context.Context, sc trace.SpanContext, inCtx bool) context.Context {
	if t.defaultProp {
		if baggage.FromContext(ctx).Len() == 0 && sc.TraceState().Len() == 0 {
			if !sc.IsValid() {
				return ctx // nothing to send (a no-op tracer provider)
			}
			return metadata.AppendToContext(ctx, "traceparent", traceparent(sc))
		}
	}
	pctx := ctx
	if !inCtx {
		pctx = trace.ContextWithSpanContext(ctx, sc)
	}
	// Inject into a pooled carrier, then add its pairs to the call's metadata without copying
	// what the caller's context carries.
	c := pairsPool.Get().(*pairCarrier)
	t.prop.Inject(pctx, c)
	if len(c.kv) > 0 {
		ctx = metadata.AppendToContext(ctx, c.kv...)
	}
	c.kv = c.kv[:0]
	pairsPool.Put(c)
	return ctx
}

// traceparent is sc as W3C trace context's traceparent header, as propagation.TraceContext
// writes it: version 00, trace ID, span ID and the flags it defines (sampled, random), in
// lower-case hex.
func traceparent(sc trace.SpanContext) string {
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	return string(b[:])
}

// pairCarrier is a propagation.TextMapCarrier that collects the pairs a propagator injects.
type pairCarrier struct{ kv []string }

func (c *pairCarrier) Get(key string) string {
	for i := 0; i+1 < len(c.kv); i += 2 {
		if c.kv[i] == key {
			return c.kv[i+1]
		}
	}
	return ""
}

func (c *pairCarrier) Set(key, value string) {
	for i := 0; i+1 < len(c.kv); i += 2 {
		if c.kv[i] == key {
			c.kv[i+1] = value
			return
		}
	}
	c.kv = append(c.kv, key, value)
}

func (c *pairCarrier) Keys() []string {
	keys := make([]string, 0, len(c.kv)/2)
	for i := 0; i < len(c.kv); i += 2 {
		keys = append(keys, c.kv[i])
	}
	return keys
}

// pairsPool holds the carriers CallWrapper injects a span context into.
var pairsPool = sync.Pool{New: func() any { return &pairCarrier{kv: make([]string, 0, 6)} }}

// headerCarrier reads the metadata of a call from its wire headers (metadata.HeaderPrefix +
// key), which is where the server takes the handler's context metadata from, without copying
// them into a map first.
type headerCarrier map[string]string

func (h headerCarrier) Get(key string) string {
	switch key { // the keys of the default propagators, without building the header name
	case "traceparent":
		return h[metadata.HeaderPrefix+"traceparent"]
	case "tracestate":
		return h[metadata.HeaderPrefix+"tracestate"]
	case "baggage":
		return h[metadata.HeaderPrefix+"baggage"]
	}
	return h[metadata.HeaderPrefix+key]
}

func (h headerCarrier) Set(key, value string) { h[metadata.HeaderPrefix+key] = value }

func (h headerCarrier) Keys() []string {
	var keys []string
	for k := range h {
		if key, ok := strings.CutPrefix(k, metadata.HeaderPrefix); ok {
			keys = append(keys, key)
		}
	}
	return keys
}

// HandlerWrapper starts a server span per handled call, a child of the caller's span when the
// call carries one. The span context is read from the call's metadata: its wire headers
// (Md-traceparent, ...) when the request has them, else the metadata in ctx.
func (t *Tracing) HandlerWrapper() server.HandlerWrapper {
	return func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req *server.Request, rsp any) (err error) {
			if req.Header != nil {
				ctx = t.prop.Extract(ctx, headerCarrier(req.Header))
			} else if md, ok := metadata.FromContext(ctx); ok {
				ctx = t.prop.Extract(ctx, propagation.MapCarrier(md))
			}
			e := t.endpoints.get(req.Service, req.Endpoint)
			ctx, span := t.startServer(ctx, e.name, e.serverOpts)
			defer func() { endSpan(span, err) }()
			e.setAttributes(span, 0)
			return next(ctx, req, rsp)
		}
	}
}

// Extract returns ctx with the span context (and baggage) that carrier holds, read with the
// propagator: an HTTP request's headers, for one, with propagation.HeaderCarrier.
func (t *Tracing) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	return t.prop.Extract(ctx, carrier)
}

// StartServer starts a server span named name for a request that arrived with ctx (which
// holds its caller's span context, from Extract, when it has one), as HandlerWrapper does for
// a call: the caller's child, sampled by WithSampler's sampler. A span the sampler drops is not
// started: the span returned records nothing, and the context returned carries the caller's
// span context, or a new trace's when there was none, so that the calls made with it (through
// CallWrapper) continue the trace. End the span, always.
func (t *Tracing) StartServer(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return t.startServer(ctx, name, append(opts, trace.WithSpanKind(trace.SpanKindServer)))
}

func (t *Tracing) startServer(ctx context.Context, name string, opts []trace.SpanStartOption) (context.Context, trace.Span) {
	if sc, dropped := t.drop(ctx, name, trace.SpanKindServer); dropped {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			ctx = trace.ContextWithSpanContext(ctx, sc) // the handler's calls continue this trace
		}
		return ctx, noop.Span{} // not ctx's span: that may be a caller's, in the same process
	}
	return t.tracer.Start(ctx, name, opts...)
}
