package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/gateway/policy"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// jwtSecret signs the policy chain's tokens (HS256): the harness signs one, the gateway
// verifies it.
const jwtSecret = "the gateway benchmark's HS256 secret, 32+ bytes"

// benchToken is a token the policy chain accepts, valid for a day.
func benchToken() (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "bench", "aud": "api", "exp": time.Now().Add(24 * time.Hour).Unix(),
	}).SignedString([]byte(jwtSecret))
}

// benchPolicy is the policy the "with the policy chain" row runs: JWT (HS256), a limit per
// client and one on the route that are never reached.
func benchPolicy() policy.Config {
	never := policy.Limit{Rate: 1e9, Burst: 1e9}
	return policy.Config{
		JWT:    policy.JWT{Keys: []policy.Key{{Alg: "HS256", Secret: jwtSecret}}, Audience: "api"},
		Limits: policy.Limits{Client: &never, Routes: []policy.RouteLimit{{Match: policy.Match{Path: "/example/"}, Limit: never}}},
	}
}

// microAPI is this project's gateway (sdk/go/micro/gateway, `micro api`) in front of the
// core's server: its client on -transport calling in -content-type, with micro api's retry
// wrapper, the backend's node in a memory registry (a static entry: no registry in the
// measured path) and the path rule (/example/call → example Example.Call).
//
// With -policy it is `micro api --policy FILE --metrics prometheus` (benchPolicy, 1% of the
// traces recorded by an SDK tracer provider that exports nowhere): the policy's chain in front
// of the gateway, and the client's metrics, tracing and breaker wrappers before the retry,
// as micro api puts them. The access log is off (its logger discards): the goal's chain is
// authentication, limits, metrics and tracing.
func microAPI(_ context.Context, o roleOptions) (string, func(), error) {
	tr, err := microTransport(o.transport)
	if err != nil {
		return "", nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := memory.New()
	if err := reg.Register(&registry.Service{Name: "example", Version: "latest",
		Nodes: []*registry.Node{{Id: "example-1", Address: o.backend}}}); err != nil {
		return "", nil, err
	}
	sel, err := selector.New(selector.Registry(reg), selector.Logger(quiet))
	if err != nil {
		return "", nil, err
	}
	var (
		wrappers   []client.CallWrapper
		middleware []func(http.Handler) http.Handler
		metrics    *prometheus.Registry
		stopTraces = func() {}
	)
	if o.policy {
		tp := sdktrace.NewTracerProvider()
		stopTraces = func() { tp.Shutdown(context.Background()) }
		tracing := wrapper.NewTracing(wrapper.WithTracerProvider(tp),
			wrapper.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
		metrics = prometheus.NewRegistry()
		m, err := wrapper.NewMetrics(metrics)
		if err != nil {
			return "", nil, err
		}
		b := wrapper.NewBreaker()
		metrics.MustRegister(b.Collector())
		p, err := policy.New(benchPolicy(), policy.WithLogger(quiet), policy.WithTracing(tracing), policy.WithRegisterer(metrics))
		if err != nil {
			return "", nil, err
		}
		wrappers = []client.CallWrapper{m.CallWrapper(), tracing.CallWrapper(), b.Wrapper()}
		middleware = p.Chain()
	}
	cli, err := client.New(client.Selector(sel), client.Transport(tr), client.Logger(quiet),
		client.Wrap(append(wrappers, wrapper.Retry())...))
	if err != nil {
		return "", nil, err
	}
	g, err := gateway.New(gateway.WithClient(cli), gateway.WithRegistry(reg), gateway.WithLogger(quiet),
		gateway.WithContentType(o.contentType), gateway.WithMiddleware(middleware...))
	if err != nil {
		return "", nil, err
	}
	var h http.Handler = g
	if metrics != nil { // as micro api --metrics prometheus serves them
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
		mux.Handle("/", g)
		h = mux
	}
	addr, stop, err := serveHTTP(h)
	if err != nil {
		return "", nil, err
	}
	return addr, func() { stop(); g.Close(); cli.Close(); sel.Close(); stopTraces() }, nil
}
