package wrapper

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/status"
)

// BreakerState is the state of one circuit.
type BreakerState string

// The states of a circuit.
const (
	Closed   BreakerState = "closed"    // calls pass
	Open     BreakerState = "open"      // calls fail fast with status Unavailable
	HalfOpen BreakerState = "half-open" // a few probe calls pass; their outcome closes or reopens
)

// BreakerOptions configure a Breaker.
type BreakerOptions struct {
	// Failures is how many consecutive failures open the circuit. Default 5.
	Failures int
	// OpenFor is how long the circuit stays open before probing. Default 10 s.
	OpenFor time.Duration
	// Probes is how many calls may probe at once while half-open. Default 1.
	Probes int
	// IsFailure says which errors count; default: Unavailable, Timeout and Internal (the
	// service's fault, not the caller's).
	IsFailure func(error) bool
	// OnChange, if set, is called on every state change.
	OnChange func(service, endpoint string, from, to BreakerState)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// BreakerOption sets a BreakerOptions field.
type BreakerOption func(*BreakerOptions)

// BreakAfter sets how many consecutive failures open the circuit.
func BreakAfter(n int) BreakerOption { return func(o *BreakerOptions) { o.Failures = n } }

// OpenFor sets how long the circuit stays open.
func OpenFor(d time.Duration) BreakerOption { return func(o *BreakerOptions) { o.OpenFor = d } }

// Probes sets how many calls probe at once while half-open.
func Probes(n int) BreakerOption { return func(o *BreakerOptions) { o.Probes = n } }

// BreakerClock replaces time.Now, for tests.
func BreakerClock(now func() time.Time) BreakerOption { return func(o *BreakerOptions) { o.Now = now } }

// OnBreakerChange sets a callback for state changes.
func OnBreakerChange(f func(service, endpoint string, from, to BreakerState)) BreakerOption {
	return func(o *BreakerOptions) { o.OnChange = f }
}

// Breaker keeps one circuit per service+endpoint.
type Breaker struct {
	opts     BreakerOptions
	circuits *endpointCache[*circuit]
}

// circuit is the state of one service+endpoint. Its fields are guarded by mu; closed mirrors
// "state Closed, no failure counted, no probe running", the state of a healthy endpoint, so
// that its calls take no lock: a closed circuit admits a call, and a success leaves it as is.
type circuit struct {
	service, endpoint string
	closed            atomic.Bool

	mu       sync.Mutex
	state    BreakerState
	failures int
	openedAt time.Time
	probing  int
}

// NewBreaker returns a Breaker.
func NewBreaker(opts ...BreakerOption) *Breaker {
	o := BreakerOptions{Failures: 5, OpenFor: 10 * time.Second, Probes: 1, Now: time.Now, IsFailure: func(err error) bool {
		switch status.CodeOf(err) {
		case status.Unavailable, status.Timeout, status.Internal:
			return true
		}
		return false
	}}
	for _, f := range opts {
		f(&o)
	}
	return &Breaker{opts: o, circuits: newEndpointCache(true, func(service, endpoint string) *circuit {
		c := &circuit{service: service, endpoint: endpoint, state: Closed}
		c.closed.Store(true)
		return c
	})}
}

// State returns the state of the circuit of service+endpoint.
func (b *Breaker) State(service, endpoint string) BreakerState {
	c, ok := b.circuits.lookup(service, endpoint)
	if !ok {
		return Closed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Open && !b.opts.Now().Before(c.openedAt.Add(b.opts.OpenFor)) {
		return HalfOpen
	}
	return c.state
}

// Wrapper returns the CallWrapper that applies the breaker.
func (b *Breaker) Wrapper() client.CallWrapper {
	return func(next client.CallFunc) client.CallFunc {
		return func(ctx context.Context, req *client.Request, rsp any) error {
			c := b.circuits.get(req.Service, req.Endpoint)
			probe, err := b.admit(c)
			if err != nil {
				return err
			}
			err = next(ctx, req, rsp)
			b.record(c, probe, err != nil && b.opts.IsFailure(err))
			return err
		}
	}
}

func (b *Breaker) admit(c *circuit) (probe bool, err error) {
	if c.closed.Load() {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Open && !b.opts.Now().Before(c.openedAt.Add(b.opts.OpenFor)) {
		b.setLocked(c, HalfOpen)
	}
	switch {
	case c.state == Closed:
		return false, nil
	case c.state == HalfOpen && c.probing < b.opts.Probes:
		c.probing++
		c.closed.Store(false)
		return true, nil
	}
	return false, &status.Error{Code: status.Unavailable, Message: "circuit breaker " + string(c.state),
		Service: c.service, Endpoint: c.endpoint}
}

func (b *Breaker) record(c *circuit, probe, failed bool) {
	if !probe && !failed && c.closed.Load() {
		return // a success on a healthy circuit changes nothing
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if probe {
		c.probing--
	}
	switch {
	case !failed && (probe || c.state == Closed):
		c.failures = 0
		if c.state != Closed {
			b.setLocked(c, Closed)
		}
	case failed && probe:
		c.openedAt = b.opts.Now()
		b.setLocked(c, Open)
	case failed && c.state == Closed:
		c.failures++
		if c.failures >= b.opts.Failures {
			c.openedAt = b.opts.Now()
			b.setLocked(c, Open)
		}
	}
	c.closed.Store(c.state == Closed && c.failures == 0 && c.probing == 0)
}

func (b *Breaker) setLocked(c *circuit, to BreakerState) {
	from := c.state
	c.state = to
	if to == Closed {
		c.failures = 0
	}
	if b.opts.OnChange != nil && from != to {
		b.opts.OnChange(c.service, c.endpoint, from, to)
	}
}
