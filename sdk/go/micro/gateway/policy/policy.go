package policy

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// Policy is a gateway's policy, made of middleware driven by one Config that Update replaces
// while requests are served. It is safe for concurrent use.
//
// A request is judged by one Config from start to end: the one in force when it entered the
// first of the policy's middleware. An Update does not wait for the requests in flight, and
// does not disturb them.
type Policy struct {
	cur     atomic.Pointer[compiled]
	mu      sync.Mutex // serializes Update
	log     *slog.Logger
	tracing *wrapper.Tracing
	metrics *metrics // nil: no metrics
	now     func() time.Time
}

// compiled is a Config made ready to serve: each part nil when it lets every request through.
type compiled struct {
	cfg    Config
	jwt    *verifier
	access *accessRules
	limits *rateLimits
}

// compile compiles c, reporting everything wrong in it; the rate limit buckets of old that c
// keeps are kept.
func compile(c Config, old *compiled, now func() time.Time) (*compiled, error) {
	var e errs
	var err error
	n := &compiled{cfg: c}
	n.jwt, err = newVerifier(c.JWT, now)
	e.add(err)
	n.access, err = newAccess(c.Access)
	e.add(err)
	var oldLimits *rateLimits
	if old != nil {
		oldLimits = old.limits
	}
	n.limits, err = newLimits(c.Limits, oldLimits)
	e.add(err)
	if err := e.err(); err != nil {
		return nil, err
	}
	return n, nil
}

// Option configures a Policy.
type Option func(*Policy)

// WithLogger sets the logger of the access log; default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(p *Policy) { p.log = l } }

// WithRegisterer registers the policy's Prometheus metrics with reg; without it, Metrics
// counts nothing.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(p *Policy) { p.metrics = &metrics{reg: reg} }
}

// WithTracing sets how spans are started and sampled: share it with the RPC client's
// Tracing wrapper, with wrapper.WithSampler to trace a share of the requests. Default
// wrapper.NewTracing(): every request, on the global tracer provider.
func WithTracing(t *wrapper.Tracing) Option { return func(p *Policy) { p.tracing = t } }

// WithClock sets the clock tokens' times are checked by, for tests; default time.Now.
func WithClock(now func() time.Time) Option { return func(p *Policy) { p.now = now } }

// New returns a Policy in force with cfg, or the error of a bad cfg or of registering the
// metrics.
func New(cfg Config, opts ...Option) (*Policy, error) {
	p := &Policy{now: time.Now}
	for _, o := range opts {
		o(p)
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.tracing == nil {
		p.tracing = wrapper.NewTracing()
	}
	if p.metrics != nil {
		if err := p.metrics.register(); err != nil {
			return nil, fmt.Errorf("policy: metrics: %w", err)
		}
	}
	if err := p.Update(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// Update puts cfg in force for the requests that start after it returns. A cfg with anything
// wrong is refused whole, with an error that lists what is wrong, and the config in force
// stays. Rate limit buckets whose limit cfg keeps are kept, with the tokens they hold.
func (p *Policy) Update(cfg Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := compile(cfg, p.cur.Load(), p.now)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	p.cur.Store(c)
	return nil
}

// Config returns the Config in force. Do not modify it.
func (p *Policy) Config() Config { return p.cur.Load().cfg }

// Chain returns the policy's middleware, outermost first, for gateway.WithMiddleware:
// Tracing, Metrics, AccessLog, Authenticate, Authorize, RateLimit. So a refused request is
// traced, counted and logged, and a request is limited by the subject of its token.
func (p *Policy) Chain() []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{p.Tracing, p.Metrics, p.AccessLog, p.Authenticate, p.Authorize, p.RateLimit}
}

// Handler returns next behind the whole Chain.
func (p *Policy) Handler(next http.Handler) http.Handler {
	chain := p.Chain()
	for i := len(chain) - 1; i >= 0; i-- {
		next = chain[i](next)
	}
	return next
}
