package source

import (
	"log/slog"
	"time"

	"github.com/configd/configd/api"
)

// Options are what configd hands every source, whatever its type. What
// one type alone uses (the file source's debounce, Consul's wait time) is a
// field of that type's config. Build them with the With functions;
// NewOptions fills in the defaults.
type Options struct {
	// Logger receives the source's logs. Default slog.Default(), with a
	// "source" attribute added by each source.
	Logger *slog.Logger
	// MaxValueSize is the largest value accepted, in bytes; a bigger one is
	// left out of the snapshot with a warning. Default 1 MiB.
	MaxValueSize int
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// between retries after an error, for the sources that retry. Defaults
	// 50ms and 5s: the first retries are fast, a long outage costs little.
	MinBackoff, MaxBackoff time.Duration
}

// Option sets one of the Options.
type Option func(*Options)

// DefaultMaxValueSize is the default of Options.MaxValueSize: configd's.
const DefaultMaxValueSize = api.DefaultMaxValueSize

// NewOptions returns the defaults with opts applied.
func NewOptions(opts ...Option) Options {
	o := Options{
		Logger:       slog.Default(),
		MaxValueSize: DefaultMaxValueSize,
		MinBackoff:   50 * time.Millisecond,
		MaxBackoff:   5 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	return o
}

// WithLogger sets Options.Logger.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// WithMaxValueSize sets Options.MaxValueSize; n <= 0 keeps the default.
func WithMaxValueSize(n int) Option {
	return func(o *Options) {
		if n > 0 {
			o.MaxValueSize = n
		}
	}
}

// WithBackoff sets Options.MinBackoff and Options.MaxBackoff.
func WithBackoff(min, max time.Duration) Option {
	return func(o *Options) { o.MinBackoff, o.MaxBackoff = min, max }
}
