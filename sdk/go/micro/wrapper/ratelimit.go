package wrapper

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
)

// Limiter is a token bucket: rate tokens a second, at most burst at once. One Limiter is one
// limit: share it between wrappers to share the limit (a client shared by many callers is
// limited as a whole, which is the usual surprise; give each its own Limiter otherwise).
//
// It keeps the bucket as one number, the time at which it will be full again (the "theoretical
// arrival time" of the generic cell rate algorithm), changed by compare-and-swap: a call takes
// no lock.
type Limiter struct {
	interval  float64 // nanoseconds per token
	tau       float64 // interval × burst: how far ahead of now the full time may run
	unlimited bool    // rate is +Inf: every call passes at no cost

	tat  atomic.Uint64 // math.Float64bits of the full time, in nanoseconds since base
	base time.Time
	now  func() time.Time
}

// NewLimiter returns a full bucket. rate must be > 0 and burst >= 1; a rate of math.Inf(1)
// is no limit at all (every call passes at no cost).
func NewLimiter(rate float64, burst int) (*Limiter, error) {
	if !(rate > 0) || burst < 1 {
		return nil, fmt.Errorf("wrapper: rate limit needs rate > 0 and burst >= 1, got %v and %d", rate, burst)
	}
	l := &Limiter{interval: float64(time.Second) / rate, unlimited: math.IsInf(rate, 1), now: time.Now}
	l.tau = l.interval * float64(burst)
	l.base = l.now()
	return l, nil
}

// WithClock replaces time.Now, for tests, and refills the bucket. Call it before l is used. It
// returns l.
func (l *Limiter) WithClock(now func() time.Time) *Limiter {
	l.now, l.base = now, now()
	l.tat.Store(math.Float64bits(0))
	return l
}

// take takes a token. Fail-fast (wait false) reports false when none is left; waiting reserves
// one and returns how long to wait for it, unless that is past ctx's deadline. When it takes
// none, it returns how long until one is free.
func (l *Limiter) take(ctx context.Context, wait bool) (time.Duration, bool) {
	if l.unlimited {
		return 0, true
	}
	for {
		// Load the bucket first, then read the clock: whoever stored old read its clock
		// before, so now is at least as late as theirs. (Read the other way round, a caller
		// descheduled between the two would judge a fresh bucket by a stale clock and refuse
		// a call that has a token.)
		old := l.tat.Load()
		nowT := l.now()
		now := float64(nowT.Sub(l.base))
		// The bucket is full at tat; a token moves it interval later. The call may go now
		// when that stays within tau of now (the bucket had a token), else after the excess.
		next := max(math.Float64frombits(old), now) + l.interval
		var d time.Duration
		if excess := next - now - l.tau; excess > 0.5 { // half a nanosecond of rounding
			d = time.Duration(excess)
			if !wait {
				return d, false
			}
			if dl, ok := ctx.Deadline(); ok && nowT.Add(d).After(dl) {
				return d, false // waiting would outlast the call: fail now
			}
		}
		if l.tat.CompareAndSwap(old, math.Float64bits(next)) {
			return d, true
		}
	}
}

// Wait takes a token for one call. With wait, a call waits for its turn, unless that would
// outlast ctx's deadline; without, it fails at once when no token is left. A call that gets
// no token returns ErrLimited, with how long until one is free (a Retry-After), or wrapping
// ctx's error when ctx ended while it waited.
func (l *Limiter) Wait(ctx context.Context, wait bool) (time.Duration, error) {
	d, ok := l.take(ctx, wait)
	if !ok {
		return d, ErrLimited
	}
	if d == 0 {
		return 0, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return 0, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %w", ErrLimited, ctx.Err())
	}
}

// ErrLimited is the error of a call Wait refused.
var ErrLimited = errors.New("rate limited")

// admit waits for a token or fails with status TooMany.
func (l *Limiter) admit(ctx context.Context, wait bool, service, endpoint string, retryable bool) error {
	if _, err := l.Wait(ctx, wait); err != nil {
		return &status.Error{Code: status.TooMany, Message: err.Error(), Service: service, Endpoint: endpoint, Retryable: retryable}
	}
	return nil
}

// CallWrapper limits the calls made through a client. With wait, a call waits for its turn
// (within its timeout); without, it fails at once with status TooMany.
func (l *Limiter) CallWrapper(wait bool) client.CallWrapper {
	return func(next client.CallFunc) client.CallFunc {
		return func(ctx context.Context, req *client.Request, rsp any) error {
			if err := l.admit(ctx, wait, req.Service, req.Endpoint, false); err != nil {
				return err
			}
			return next(ctx, req, rsp)
		}
	}
}

// HandlerWrapper limits the calls a server handles. A refused call is status TooMany marked
// retryable: another node may have room.
func (l *Limiter) HandlerWrapper(wait bool) server.HandlerWrapper {
	return func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req *server.Request, rsp any) error {
			if err := l.admit(ctx, wait, req.Service, req.Endpoint, true); err != nil {
				return err
			}
			return next(ctx, req, rsp)
		}
	}
}
