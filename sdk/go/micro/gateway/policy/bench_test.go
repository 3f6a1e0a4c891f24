package policy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/configd/configd/sdk/go/micro/gateway/policy"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// benchConfig is a policy a gateway would run: HS256 tokens, access rules, a limit per
// client and one per route that the benchmark never reaches.
func benchConfig() policy.Config {
	return policy.Config{
		JWT: hs256(),
		Access: policy.Access{Rules: []policy.Rule{
			{Match: policy.Match{Path: "/admin/"}, Action: policy.Deny},
			{Match: policy.Match{Path: "/greeter/"}, Scopes: []string{"greet"}},
		}},
		Limits: policy.Limits{
			Client: &policy.Limit{Rate: 1e9, Burst: 1e9},
			Routes: []policy.RouteLimit{{Match: policy.Match{Path: "/greeter/"}, Limit: policy.Limit{Rate: 1e9, Burst: 1e9}}},
		},
	}
}

// benchPolicy is benchConfig with metrics and 1% of the traces recorded; log says whether the
// access log is written (as JSON, to nowhere).
func benchPolicy(b *testing.B, log bool) *policy.Policy {
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	tr := wrapper.NewTracing(wrapper.WithTracerProvider(tp), wrapper.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
	logger := discard
	if log {
		logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	p, err := policy.New(benchConfig(), policy.WithRegisterer(prometheus.NewRegistry()), policy.WithTracing(tr), policy.WithLogger(logger))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// nullWriter is a ResponseWriter that keeps nothing.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(int)             {}

// BenchmarkChain is what the whole chain (authentication, access rules, limits, metrics, 1%
// of the traces, and the access log in policy+log) costs a request, against the bare handler.
func BenchmarkChain(b *testing.B) {
	tok := sign(b, jwt.SigningMethodHS256, []byte(secret), "", claims("bob", "scope", "greet"))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"msg":"Hello hobo"}`) })
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", h},
		{"policy", benchPolicy(b, false).Handler(h)},
		{"policy+log", benchPolicy(b, true).Handler(h)},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("POST", "/greeter/hello", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			w := &nullWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
				clear(w.h)
			}
		})
	}
}

// BenchmarkGatewayCall is a gateway's call end to end, an HTTP request over loopback that an
// RPC over the tcp transport answers, bare and behind the chain: what share of a call the
// policy costs.
func BenchmarkGatewayCall(b *testing.B) {
	tok := sign(b, jwt.SigningMethodHS256, []byte(secret), "", claims("bob", "scope", "greet"))
	for _, c := range []struct {
		name string
		mw   func(http.Handler) http.Handler
	}{
		{"bare", func(h http.Handler) http.Handler { return h }},
		{"policy", benchPolicy(b, false).Handler},
	} {
		b.Run(c.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider()
			b.Cleanup(func() { tp.Shutdown(context.Background()) })
			tr := wrapper.NewTracing(wrapper.WithTracerProvider(tp), wrapper.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
			_, h := greeterService(b, tr)
			srv := httptest.NewServer(c.mw(h))
			b.Cleanup(srv.Close)
			hc := srv.Client()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", srv.URL+"/greeter/hello?name=hobo", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					rsp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, rsp.Body)
					rsp.Body.Close()
					if rsp.StatusCode != 200 {
						b.Errorf("status %d", rsp.StatusCode)
						return
					}
				}
			})
		})
	}
}
