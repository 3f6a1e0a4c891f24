package source

import (
	"log/slog"
	"time"
)

// Options tune sources. Each source uses the ones that apply to it; the
// others are ignored. Build them with the With functions; NewOptions fills
// in the defaults.
type Options struct {
	// Logger receives the source's logs. Default slog.Default(), with a
	// "source" attribute added by each source.
	Logger *slog.Logger
	// MaxValueSize is the largest value accepted, in bytes; a bigger one is
	// left out of the snapshot with a warning. Default 1 MiB.
	MaxValueSize int
	// Debounce (file) is how long a burst of file system events must be
	// quiet before the files are read again. Default 100ms.
	Debounce time.Duration
	// WaitTime (consul) is how long one blocking query waits for a change.
	// It also bounds how long a Consul snapshot restore, which does not
	// wake blocking queries, takes to show (unless a write under the
	// prefix comes first). Default 1m; Consul's own maximum is 10m.
	WaitTime time.Duration
	// RequestTimeout (etcd, consul) bounds one read that is not a blocking
	// query or a watch. Default 5s.
	RequestTimeout time.Duration
	// ProbeInterval (etcd) is how often a quiet watch checks that the server
	// still answers, so that a server that went away shows as degraded.
	// Default 5s.
	ProbeInterval time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// between retries after an error. Defaults 50ms and 5s: the first
	// retries are fast, a long outage costs little.
	MinBackoff, MaxBackoff time.Duration
}

// Option sets one of the Options.
type Option func(*Options)

// DefaultMaxValueSize is the default of Options.MaxValueSize.
const DefaultMaxValueSize = 1 << 20

// NewOptions returns the defaults with opts applied.
func NewOptions(opts ...Option) Options {
	o := Options{
		Logger:         slog.Default(),
		MaxValueSize:   DefaultMaxValueSize,
		Debounce:       100 * time.Millisecond,
		WaitTime:       time.Minute,
		RequestTimeout: 5 * time.Second,
		ProbeInterval:  5 * time.Second,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     5 * time.Second,
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

// WithDebounce sets Options.Debounce.
func WithDebounce(d time.Duration) Option { return func(o *Options) { o.Debounce = d } }

// WithWaitTime sets Options.WaitTime.
func WithWaitTime(d time.Duration) Option { return func(o *Options) { o.WaitTime = d } }

// WithRequestTimeout sets Options.RequestTimeout.
func WithRequestTimeout(d time.Duration) Option { return func(o *Options) { o.RequestTimeout = d } }

// WithProbeInterval sets Options.ProbeInterval.
func WithProbeInterval(d time.Duration) Option { return func(o *Options) { o.ProbeInterval = d } }

// WithBackoff sets Options.MinBackoff and Options.MaxBackoff.
func WithBackoff(min, max time.Duration) Option {
	return func(o *Options) { o.MinBackoff, o.MaxBackoff = min, max }
}
