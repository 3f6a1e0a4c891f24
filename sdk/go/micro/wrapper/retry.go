package wrapper

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/status"
)

// RetryOptions configure Retry.
type RetryOptions struct {
	// MaxAttempts bounds the attempts of one call, the first included. Default 3.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the jittered exponential wait between attempts.
	// Defaults 10 ms and 500 ms.
	BackoffBase, BackoffMax time.Duration
	// PerAttemptTimeout bounds one attempt; zero leaves only the call's timeout. A timed-out
	// attempt is retried only for idempotent calls.
	PerAttemptTimeout time.Duration
	// Budget limits retries across calls; default NewBudget(0.2, 10).
	Budget *Budget
	// Retryable decides which errors are retried; default status.IsRetryable.
	Retryable func(error) bool
}

// RetryOption sets a RetryOptions field.
type RetryOption func(*RetryOptions)

// MaxAttempts bounds the attempts of one call.
func MaxAttempts(n int) RetryOption { return func(o *RetryOptions) { o.MaxAttempts = n } }

// Backoff sets the base and the cap of the wait between attempts.
func Backoff(base, max time.Duration) RetryOption {
	return func(o *RetryOptions) { o.BackoffBase, o.BackoffMax = base, max }
}

// PerAttemptTimeout bounds each attempt.
func PerAttemptTimeout(d time.Duration) RetryOption {
	return func(o *RetryOptions) { o.PerAttemptTimeout = d }
}

// WithBudget shares a retry budget.
func WithBudget(b *Budget) RetryOption { return func(o *RetryOptions) { o.Budget = b } }

// RetryIf replaces the retryable test.
func RetryIf(f func(error) bool) RetryOption { return func(o *RetryOptions) { o.Retryable = f } }

// Retry returns a CallWrapper that retries failed attempts marked retryable, on another node,
// with jittered exponential backoff, while the call's context (which carries the client's
// request timeout, so the timeout covers every attempt) and the budget allow.
func Retry(opts ...RetryOption) client.CallWrapper {
	o := RetryOptions{MaxAttempts: 3, BackoffBase: 10 * time.Millisecond, BackoffMax: 500 * time.Millisecond, Retryable: status.IsRetryable}
	for _, f := range opts {
		f(&o)
	}
	if o.Budget == nil {
		o.Budget = NewBudget(0.2, 10)
	}
	return func(next client.CallFunc) client.CallFunc {
		return func(ctx context.Context, req *client.Request, rsp any) error {
			o.Budget.request()
			for attempt := 1; ; attempt++ {
				req.Attempt = attempt
				err := o.attempt(ctx, next, req, rsp)
				if ctx.Err() != nil {
					return timedOut(ctx, req, attempt, err)
				}
				if err == nil || attempt >= o.MaxAttempts || !o.Retryable(err) {
					return err
				}
				if !o.Budget.withdraw() {
					return fmt.Errorf("retry budget exhausted: %w", err)
				}
				wait := min(o.BackoffBase<<(attempt-1), o.BackoffMax)
				wait = wait/2 + rand.N(wait/2+1)
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return timedOut(ctx, req, attempt, err)
				}
			}
		}
	}
}

// timedOut is the error of a call whose request deadline passed during its
// attempts: a Timeout, whatever the last attempt failed with (its dial may
// time out a moment before the deadline does).
func timedOut(ctx context.Context, req *client.Request, attempts int, err error) error {
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) || status.CodeOf(err) == status.Timeout {
		return err
	}
	return &status.Error{Code: status.Timeout, Message: fmt.Sprintf("call timed out after %d attempts: %v", attempts, err),
		Service: req.Service, Endpoint: req.Endpoint}
}

func (o *RetryOptions) attempt(ctx context.Context, next client.CallFunc, req *client.Request, rsp any) error {
	if o.PerAttemptTimeout <= 0 {
		return next(ctx, req, rsp)
	}
	actx, cancel := context.WithTimeout(ctx, o.PerAttemptTimeout)
	defer cancel()
	return next(actx, req, rsp)
}

// Budget limits retries to a share of requests, so that retries cannot multiply load on a
// struggling service: every call deposits Ratio tokens, every retry takes one, and MinPerSecond
// tokens a second trickle in so that low-traffic clients can still retry. Tokens are capped at
// ten seconds' worth of MinPerSecond plus what 100 calls deposit. Safe for concurrent use.
type Budget struct {
	ratio, perSecond, cap float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewBudget returns a budget allowing about ratio retries per call plus minPerSecond a second.
func NewBudget(ratio float64, minPerSecond int) *Budget {
	b := &Budget{ratio: ratio, perSecond: float64(minPerSecond), now: time.Now}
	b.cap = 10*b.perSecond + 100*ratio
	b.tokens = b.cap
	b.last = b.now()
	return b
}

// WithClock replaces time.Now, for tests. It returns b.
func (b *Budget) WithClock(now func() time.Time) *Budget {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now, b.last = now, now()
	return b
}

// Tokens returns the retries currently allowed.
func (b *Budget) Tokens() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	return b.tokens
}

func (b *Budget) refill() {
	now := b.now()
	b.tokens = min(b.cap, b.tokens+now.Sub(b.last).Seconds()*b.perSecond)
	b.last = now
}

func (b *Budget) request() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.tokens = min(b.cap, b.tokens+b.ratio)
}

func (b *Budget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
