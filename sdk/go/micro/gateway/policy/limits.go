package policy

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// bucket is a Limit made live: the RPC core's token bucket, and how long a request may wait
// for it.
type bucket struct {
	l    *wrapper.Limiter
	wait time.Duration
}

func newBucket(l Limit) *bucket {
	lim, err := wrapper.NewLimiter(l.Rate, l.burst())
	if err != nil {
		panic(err) // validated before
	}
	return &bucket{l: lim, wait: time.Duration(l.Wait)}
}

// take takes a token for a request, waiting for it up to b.wait. A request that gets none
// is told how long until one is free.
func (b *bucket) take(ctx context.Context) (time.Duration, error) {
	if b.wait == 0 {
		return b.l.Wait(ctx, false)
	}
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	return b.l.Wait(ctx, true)
}

// clientKey names a client: the subject of its token, or its IP address.
type clientKey struct {
	subject bool
	id      string
}

// clientBuckets are the buckets of the clients seen last, at most max of them: the least
// recently seen client's is dropped first.
type clientBuckets struct {
	limit Limit
	max   int

	mu    sync.Mutex
	byKey map[clientKey]*list.Element // of *clientBucket
	order list.List                   // the most recently seen first
}

type clientBucket struct {
	key clientKey
	b   *bucket
}

func newClientBuckets(l Limit, max int) *clientBuckets {
	return &clientBuckets{limit: l, max: max, byKey: map[clientKey]*list.Element{}}
}

// get returns k's bucket, a full one for a client not seen (or dropped) before.
func (c *clientBuckets) get(k clientKey) *bucket {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*clientBucket).b
	}
	var cb *clientBucket
	if c.order.Len() >= c.max { // reuse the oldest's element for the new client
		e := c.order.Back()
		cb = e.Value.(*clientBucket)
		delete(c.byKey, cb.key)
		cb.key, cb.b = k, newBucket(c.limit)
		c.order.MoveToFront(e)
		c.byKey[k] = e
		return cb.b
	}
	cb = &clientBucket{key: k, b: newBucket(c.limit)}
	c.byKey[k] = c.order.PushFront(cb)
	return cb.b
}

// len is how many clients have a bucket.
func (c *clientBuckets) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// rateLimits are compiled Limits.
type rateLimits struct {
	clients *clientBuckets         // nil: no limit by client
	routes  *matcher[*bucket]      // nil: no limit by route
	byRoute map[RouteLimit]*bucket // routes' buckets, kept by an update that keeps their limit
}

// newLimits compiles l. The buckets of old that l keeps the same are kept, so that an update
// does not refill them.
func newLimits(l Limits, old *rateLimits) (*rateLimits, error) {
	var e errs
	rl := &rateLimits{byRoute: map[RouteLimit]*bucket{}}
	if l.MaxClients < 0 {
		e.add(fmt.Errorf("limits: max_clients must be >= 0, got %d", l.MaxClients))
	}
	maxClients := l.MaxClients
	if maxClients == 0 {
		maxClients = DefaultMaxClients
	}
	if l.Client != nil {
		if err := l.Client.validate("limits: client"); err != nil {
			e.add(err)
		} else if old != nil && old.clients != nil && old.clients.limit == *l.Client && old.clients.max == maxClients {
			rl.clients = old.clients
		} else {
			rl.clients = newClientBuckets(*l.Client, maxClients)
		}
	}
	if len(l.Routes) > 0 {
		rl.routes = newMatcher[*bucket]()
	}
	for i, r := range l.Routes {
		what := fmt.Sprintf("limits: route %d (%s %s)", i, r.Method, r.Path)
		if err := r.Limit.validate(what); err != nil {
			e.add(err)
			continue
		}
		b := rl.byRoute[r]
		if b == nil && old != nil {
			b = old.byRoute[r]
		}
		if b == nil {
			b = newBucket(r.Limit)
		}
		rl.byRoute[r] = b
		e.add(rl.routes.add(what, r.Match, b))
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	if rl.clients == nil && rl.routes == nil {
		return nil, nil
	}
	return rl, nil
}
