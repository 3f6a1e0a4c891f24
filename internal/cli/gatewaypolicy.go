package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/configd/configd/sdk/go/config"
	"github.com/configd/configd/sdk/go/config/gatewayconfig"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/gateway/policy"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// MetricsPath is where micro api and web serve their Prometheus metrics with --metrics
// prometheus (the talk's `micro api --metrics=prometheus`), on their own port.
const MetricsPath = "/metrics"

// policyFlags are micro api's and web's flags for the gateway's policy (JWT, access rules,
// rate limits), its metrics and traces, and its live configuration from configd.
type policyFlags struct {
	metrics      string
	policyFile   string
	configPrefix string
	configAddr   string
	traceRatio   float64
}

func (f *policyFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.metrics, "metrics", "", "prometheus: serve Prometheus metrics at "+MetricsPath+" (requests by route and code, the RPC client's calls, the breaker)")
	fs.StringVar(&f.policyFile, "policy", "", "JSON file of the gateway's policy at start: jwt, access, limits (docs/gateway.md)")
	fs.StringVar(&f.configPrefix, "config-prefix", "", "configd prefix (e.g. gateway/) whose keys routes, jwt, access and limits configure the gateway live")
	fs.StringVar(&f.configAddr, "config-addr", "", "configd address for --config-prefix (default CONFIGD_ADDR; the token from CONFIGD_TOKEN)")
	fs.Float64Var(&f.traceRatio, "trace-ratio", 0.01, "share of the requests without a sampled parent that are traced (0 to 1; a traceparent's decision is followed)")
}

// gatewayPolicy is what the flags built: the policy in front of the gateway, the RPC
// client's wrappers that share its metrics and traces, and the metrics registry.
type gatewayPolicy struct {
	policy   *policy.Policy
	wrappers []client.CallWrapper
	reg      *prometheus.Registry
}

func (f policyFlags) build(logger *slog.Logger) (*gatewayPolicy, error) {
	if f.traceRatio < 0 || f.traceRatio > 1 {
		return nil, usagef("--trace-ratio %v: want 0 to 1", f.traceRatio)
	}
	var cfg policy.Config
	if f.policyFile != "" {
		b, err := os.ReadFile(f.policyFile)
		if err != nil {
			return nil, usagef("--policy: %v", err)
		}
		if err := policy.Decode(b, &cfg); err != nil {
			return nil, usagef("--policy %s: %v", f.policyFile, err)
		}
	}
	tracing := wrapper.NewTracing(wrapper.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(f.traceRatio))))
	opts := []policy.Option{policy.WithLogger(logger), policy.WithTracing(tracing)}
	gp := &gatewayPolicy{wrappers: []client.CallWrapper{tracing.CallWrapper()}}
	switch f.metrics {
	case "":
	case "prometheus":
		gp.reg = prometheus.NewRegistry()
		gp.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		m, err := wrapper.NewMetrics(gp.reg)
		if err != nil {
			return nil, err
		}
		b := wrapper.NewBreaker()
		gp.reg.MustRegister(b.Collector())
		gp.wrappers = append([]client.CallWrapper{m.CallWrapper()}, append(gp.wrappers, b.Wrapper())...)
		opts = append(opts, policy.WithRegisterer(gp.reg))
	default:
		return nil, usagef("--metrics %q: want prometheus", f.metrics)
	}
	p, err := policy.New(cfg, opts...)
	if err != nil {
		return nil, usagef("--policy %s: %v", f.policyFile, err)
	}
	gp.policy = p
	return gp, nil
}

// serve is the gateway's handler, with the metrics at MetricsPath when they are on.
func (gp *gatewayPolicy) serve(g http.Handler) http.Handler {
	if gp.reg == nil {
		return g
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(gp.reg, promhttp.HandlerOpts{}))
	mux.Handle("/", g)
	return mux
}

// follow keeps g's routes and p as the configd prefix says, when --config-prefix is set: nil
// otherwise. A configd that cannot be reached at start is an error; later, the SDK reconnects
// and the last good configuration stays.
func (f policyFlags) follow(ctx context.Context, g *gateway.Gateway, p *policy.Policy, logger *slog.Logger) (io.Closer, error) {
	if f.configPrefix == "" {
		if f.configAddr != "" {
			return nil, usagef("--config-addr needs --config-prefix")
		}
		return nil, nil
	}
	var opts []config.Option
	if f.configAddr != "" {
		opts = append(opts, config.WithAddress(f.configAddr))
	}
	opts = append(opts, config.WithPrefix(f.configPrefix), config.WithLogger(logger))
	c, err := config.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("--config-prefix %s: %w", f.configPrefix, err)
	}
	live, err := gatewayconfig.Start(c, "", gatewayconfig.WithRoutes(g), gatewayconfig.WithPolicy(p), gatewayconfig.WithLogger(logger))
	if err != nil {
		c.Close()
		return nil, err
	}
	return closerFunc(func() error { return errors.Join(live.Close(), c.Close()) }), nil
}

// closerFunc is an io.Closer that calls itself.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }
