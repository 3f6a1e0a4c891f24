package wrapper

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
)

// Limiter is a token bucket: rate tokens a second, at most burst at once. One Limiter is one
// limit: share it between wrappers to share the limit (a client shared by many callers is
// limited as a whole, which is the usual surprise; give each its own Limiter otherwise).
type Limiter struct {
	rate, burst float64
	unlimited   bool // rate is +Inf: every call passes, without taking the lock

	mu     sync.Mutex
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewLimiter returns a full bucket. rate must be > 0 and burst >= 1; a rate of math.Inf(1)
// is no limit at all (every call passes at no cost).
func NewLimiter(rate float64, burst int) (*Limiter, error) {
	if !(rate > 0) || burst < 1 {
		return nil, fmt.Errorf("wrapper: rate limit needs rate > 0 and burst >= 1, got %v and %d", rate, burst)
	}
	l := &Limiter{rate: rate, burst: float64(burst), unlimited: math.IsInf(rate, 1), tokens: float64(burst), now: time.Now}
	l.last = l.now()
	return l, nil
}

// WithClock replaces time.Now, for tests. It returns l.
func (l *Limiter) WithClock(now func() time.Time) *Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now, l.last = now, now()
	return l
}

// take takes a token. Fail-fast (wait false) reports false when none is left; waiting reserves
// one and returns how long to wait for it, unless that is past ctx's deadline.
func (l *Limiter) take(ctx context.Context, wait bool) (time.Duration, bool) {
	if l.unlimited {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return 0, true
	}
	if !wait {
		return 0, false
	}
	d := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
	if dl, ok := ctx.Deadline(); ok && now.Add(d).After(dl) {
		return 0, false // waiting would outlast the call: fail now
	}
	l.tokens--
	return d, true
}

// admit waits for a token or fails with status TooMany.
func (l *Limiter) admit(ctx context.Context, wait bool, service, endpoint string, retryable bool) error {
	d, ok := l.take(ctx, wait)
	if !ok {
		return &status.Error{Code: status.TooMany, Message: "rate limited", Service: service, Endpoint: endpoint, Retryable: retryable}
	}
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return &status.Error{Code: status.TooMany, Message: "rate limited: " + ctx.Err().Error(), Service: service, Endpoint: endpoint, Retryable: retryable}
	}
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
