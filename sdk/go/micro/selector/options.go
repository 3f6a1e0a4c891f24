package selector

import (
	"log/slog"
	"time"

	"github.com/configd/configd/sdk/go/micro/registry"
)

// Options configure a selector.
type Options struct {
	// Registry is where nodes come from. Required.
	Registry registry.Registry
	// Strategy is the default strategy; RoundRobin() unless set.
	Strategy Strategy
	// TTL is how long a cached list is used without asking the registry again, even while the
	// watch is healthy, so missed events heal. Default one minute.
	TTL time.Duration
	// DemoteFor is how long a node that failed a call is left out. Default ten seconds.
	DemoteFor time.Duration
	// Logger receives warnings (registry unreachable, watch restarted). Default slog.Default().
	Logger *slog.Logger
	// Now is the clock, replaceable in tests. Default time.Now.
	Now func() time.Time
}

// Option sets an Options field.
type Option func(*Options)

// Registry sets where nodes come from.
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// DefaultStrategy sets the strategy used when a Select passes none.
func DefaultStrategy(s Strategy) Option { return func(o *Options) { o.Strategy = s } }

// TTL sets how long a cached list is trusted without asking the registry.
func TTL(d time.Duration) Option { return func(o *Options) { o.TTL = d } }

// DemoteFor sets how long a failing node is left out.
func DemoteFor(d time.Duration) Option { return func(o *Options) { o.DemoteFor = d } }

// Logger sets the logger.
func Logger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// Clock replaces time.Now, for tests.
func Clock(now func() time.Time) Option { return func(o *Options) { o.Now = now } }

// SelectOptions configure one Select.
type SelectOptions struct {
	// Filters run in order over the service's versions.
	Filters []Filter
	// Strategy overrides the selector's default for this Select.
	Strategy Strategy
}

// SelectOption sets a SelectOptions field.
type SelectOption func(*SelectOptions)

// WithFilter adds filters to a Select.
func WithFilter(f ...Filter) SelectOption {
	return func(o *SelectOptions) { o.Filters = append(o.Filters, f...) }
}

// WithStrategy sets the strategy of one Select.
func WithStrategy(s Strategy) SelectOption { return func(o *SelectOptions) { o.Strategy = s } }
