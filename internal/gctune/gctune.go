// Package gctune lets the garbage collector use the memory a process can
// spare: after each collection it sets GOGC from the live heap, high while
// the heap is small against a budget and down to Go's default as the heap
// nears it.
//
// configd keeps every current key in memory (the mirror that serves reads);
// under a write load the collector marks that mirror again each cycle, and
// at GOGC=100 it took a fifth of a write's CPU. Each cycle's work is set by
// the live heap, the cycles' rate by the garbage made between them, so a
// higher GOGC buys CPU with memory. A fixed high GOGC would let a large
// store's heap grow to several times its size; the tuner bounds the heap
// the collector aims at by max(budget, 2 × live) instead. TiDB's GOGC
// tuner works the same way.
package gctune

import (
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

const (
	// MinPercent is the lowest GOGC the tuner sets: Go's default.
	MinPercent = 100
	// MaxPercent is the highest: a heap of six times the live one.
	MaxPercent = 500
	// DefaultBudget is the heap the tuner aims under when no memory limit
	// is set.
	DefaultBudget = 1 << 30
	// limitShare is the part of a memory limit (GOMEMLIMIT) taken as the
	// budget: the rest is for memory outside the heap and for the limit's
	// own collections, which start before the heap reaches it.
	limitShare = 0.75
)

// Percent returns the GOGC under which a live heap of live bytes grows to
// budget before the next collection, within [MinPercent, MaxPercent].
func Percent(live, budget uint64) int {
	if live == 0 {
		return MaxPercent
	}
	p := 100*float64(budget)/float64(live) - 100
	return int(math.Max(MinPercent, math.Min(MaxPercent, p)))
}

// Budget returns the heap to aim under: three quarters of the memory limit
// (GOMEMLIMIT, debug.SetMemoryLimit) when one is set, DefaultBudget when
// not.
func Budget() uint64 {
	limit := debug.SetMemoryLimit(-1)
	if limit <= 0 || limit == math.MaxInt64 {
		return DefaultBudget
	}
	return uint64(float64(limit) * limitShare)
}

type options struct {
	budget uint64
	logger *slog.Logger
	tuned  func(percent int)
}

// Option configures Start.
type Option func(*options)

// WithBudget sets the heap to aim under (default Budget()).
func WithBudget(b uint64) Option { return func(o *options) { o.budget = b } }

// WithLogger logs whether the collector is tuned, and its budget.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTuned calls f with the GOGC set after each collection (tests).
func WithTuned(f func(percent int)) Option { return func(o *options) { o.tuned = f } }

func newOptions(opts []Option) options {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if o.budget == 0 {
		o.budget = Budget()
	}
	return o
}

type tuner struct {
	opts    options
	sample  []metrics.Sample
	mu      sync.Mutex
	stopped bool
	percent int
}

// Start tunes GOGC after every collection until the returned function is
// called, which puts back the GOGC there was before.
func Start(opts ...Option) (stop func()) {
	o := newOptions(opts)
	t := &tuner{opts: o, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.percent = Percent(t.live(), o.budget)
	before := debug.SetGCPercent(t.percent)
	o.logger.Info("tuning the garbage collector", "budget_bytes", o.budget, "gogc_min", MinPercent, "gogc_max", MaxPercent)
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.stopped {
			t.stopped = true
			debug.SetGCPercent(before)
		}
	}
}

// live is the heap the last collection found live.
func (t *tuner) live() uint64 {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return t.sample[0].Value.Uint64()
}

// sentinel is allocated to be collected: its cleanup runs once a cycle has
// found it unreachable. It is not tiny (16 bytes or more, or with
// pointers), so that it is not batched with other objects that outlive it.
type sentinel [64]byte

// arm runs afterGC once the next collection has finished.
func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) { t.afterGC() }, t)
}

func (t *tuner) afterGC() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	p := Percent(t.live(), t.opts.budget)
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
	t.mu.Unlock()
	if t.opts.tuned != nil {
		t.opts.tuned(p)
	}
	t.arm()
}

// Auto starts a tuner unless GOGC is set in the environment (getenv), in
// which case the operator's GOGC stands and stop does nothing.
func Auto(getenv func(string) string, opts ...Option) (stop func()) {
	if v := getenv("GOGC"); v != "" {
		newOptions(opts).logger.Info("GOGC is set: the garbage collector is not tuned", "GOGC", v)
		return func() {}
	}
	return Start(opts...)
}
