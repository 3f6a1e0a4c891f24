package wrapper

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

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

// Tracing starts OpenTelemetry spans: a client span per attempt of a call (CallWrapper) and a
// server span per handled call (HandlerWrapper), named "service/Type.Method", with the
// attributes rpc.system=micro, rpc.service and rpc.method (and micro.attempt on the client).
// The client injects the span context into the call's metadata (on the wire as
// Md-traceparent, ...); the server extracts it, so the server span is the client span's
// child. A failed call sets the span's status to Error with the status code in
// micro.status_code.
type Tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
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
	if o.Propagator == nil {
		o.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	return &Tracing{tracer: o.TracerProvider.Tracer(TracerName), prop: o.Propagator}
}

func spanAttrs(service, endpoint string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("rpc.system", "micro"),
		attribute.String("rpc.service", service),
		attribute.String("rpc.method", endpoint),
	}
}

func endSpan(span trace.Span, err error) {
	if err != nil {
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
			ctx, span := t.tracer.Start(ctx, req.Service+"/"+req.Endpoint,
				trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(append(spanAttrs(req.Service, req.Endpoint), attribute.Int("micro.attempt", req.Attempt))...))
			defer func() { endSpan(span, err) }()
			md, _ := metadata.FromContext(ctx) // a copy: the caller's metadata is not changed
			if md == nil {
				md = metadata.Metadata{}
			}
			t.prop.Inject(ctx, propagation.MapCarrier(md))
			return next(metadata.NewContext(ctx, md), req, rsp)
		}
	}
}

// HandlerWrapper starts a server span per handled call, a child of the caller's span when the
// call carries one.
func (t *Tracing) HandlerWrapper() server.HandlerWrapper {
	return func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req *server.Request, rsp any) (err error) {
			if md, ok := metadata.FromContext(ctx); ok {
				ctx = t.prop.Extract(ctx, propagation.MapCarrier(md))
			}
			ctx, span := t.tracer.Start(ctx, req.Service+"/"+req.Endpoint,
				trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(spanAttrs(req.Service, req.Endpoint)...))
			defer func() { endSpan(span, err) }()
			return next(ctx, req, rsp)
		}
	}
}
