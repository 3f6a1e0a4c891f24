package policy

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// metrics are the policy's Prometheus collectors:
//
//	gateway_requests_total{route,method,code}
//	gateway_request_duration_seconds{route,method}
//
// route as SetRoute says; method one of the standard methods, or OTHER; code the HTTP status.
type metrics struct {
	reg      prometheus.Registerer
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func (m *metrics) register() error {
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_requests_total", Help: "HTTP requests answered, by route, method and status code.",
	}, []string{"route", "method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gateway_request_duration_seconds", Help: "HTTP request latency, by route and method.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"route", "method"})
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// methodLabel is method when it is a standard one, else OTHER: a client cannot make series up.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// Metrics counts and times the requests (see WithRegisterer); without a registerer it passes
// them on untouched.
func (p *Policy) Metrics(next http.Handler) http.Handler {
	m := p.metrics
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, w, r := p.begin(w, r, r.Context())
		next.ServeHTTP(w, r)
		route, method := x.routeOf(r), methodLabel(r.Method)
		m.duration.WithLabelValues(route, method).Observe(time.Since(x.start).Seconds())
		m.requests.WithLabelValues(route, method, strconv.Itoa(x.status())).Inc()
	})
}

// AccessLog logs each request at Info when it is answered: method, path, route, status code,
// bytes written, duration, client (the token's subject, or the IP address) and trace id.
func (p *Policy) AccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, w, r := p.begin(w, r, r.Context())
		next.ServeHTTP(w, r)
		ctx := r.Context()
		if !p.log.Enabled(ctx, slog.LevelInfo) {
			return
		}
		client := x.client(r)
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", x.routeOf(r)),
			slog.Int("code", x.status()), slog.Int64("bytes", x.bytes), slog.Duration("duration", time.Since(x.start)),
			slog.String("client", client.id),
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
		}
		p.log.LogAttrs(ctx, slog.LevelInfo, "http request", attrs...)
	})
}

// Tracing starts a server span per request, the child of the caller's span when the request
// carries one (traceparent), and puts it in the request's context: the RPC client's Tracing
// wrapper continues it into the services. The span is named "METHOD route", with the
// attributes http.request.method, url.path, http.route and http.response.status_code, and the
// status Error for a 5xx answer. With wrapper.WithSampler, a request not sampled starts no
// span but still carries its trace to the services.
func (p *Policy) Tracing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := p.tracing.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := p.tracing.StartServer(ctx, methodLabel(r.Method))
		x, w, r := p.begin(w, r, ctx)
		defer func() {
			if span.IsRecording() {
				route, code := x.routeOf(r), x.status()
				span.SetName(methodLabel(r.Method) + " " + route)
				span.SetAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
					attribute.String("http.route", route), attribute.Int("http.response.status_code", code))
				if code >= 500 {
					span.SetStatus(otelcodes.Error, http.StatusText(code))
				}
			}
			span.End()
		}()
		next.ServeHTTP(w, r)
	})
}
