package wrapper

import (
	"sync"
	"sync/atomic"
)

// maxCachedEndpoints bounds the per-endpoint values a wrapper keeps (span names and attributes,
// Prometheus series handles): past it, values are built per call instead of cached.
const maxCachedEndpoints = 1024

type endpointKey struct{ service, endpoint string }

// endpointCache maps service+endpoint to a value built once. Reads take no lock: the map is
// immutable, replaced by a copy on insert, which only happens the first time an endpoint is
// seen.
//
// A bounded cache (keepAll false) stops storing at maxCachedEndpoints and returns a value
// built per call for a new endpoint then. A cache that must return the same value for an
// endpoint every time (keepAll true: the breaker's circuits) keeps the endpoints past
// maxCachedEndpoints in an overflow map read under the lock.
type endpointCache[V any] struct {
	m       atomic.Pointer[map[endpointKey]V]
	build   func(service, endpoint string) V
	keepAll bool

	mu       sync.Mutex
	overflow map[endpointKey]V
}

func newEndpointCache[V any](keepAll bool, build func(service, endpoint string) V) *endpointCache[V] {
	return &endpointCache[V]{build: build, keepAll: keepAll}
}

// get returns the value of service+endpoint, built on first use.
func (c *endpointCache[V]) get(service, endpoint string) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[endpointKey{service, endpoint}]; ok {
			return v
		}
	}
	return c.getSlow(endpointKey{service, endpoint})
}

func (c *endpointCache[V]) getSlow(k endpointKey) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[endpointKey]V
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if v, ok := old[k]; ok {
		return v
	}
	if v, ok := c.overflow[k]; ok {
		return v
	}
	v := c.build(k.service, k.endpoint)
	switch {
	case len(old) < maxCachedEndpoints:
		m := make(map[endpointKey]V, len(old)+1)
		for kk, vv := range old {
			m[kk] = vv
		}
		m[k] = v
		c.m.Store(&m)
	case c.keepAll:
		if c.overflow == nil {
			c.overflow = map[endpointKey]V{}
		}
		c.overflow[k] = v
	}
	return v
}

// lookup returns the value of service+endpoint if there is one, building none.
func (c *endpointCache[V]) lookup(service, endpoint string) (V, bool) {
	k := endpointKey{service, endpoint}
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v, true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v, true
		}
	}
	v, ok := c.overflow[k]
	return v, ok
}

// each calls f with every value in the cache.
func (c *endpointCache[V]) each(f func(V)) {
	c.mu.Lock()
	vs := make([]V, 0, len(c.overflow))
	if m := c.m.Load(); m != nil {
		for _, v := range *m {
			vs = append(vs, v)
		}
	}
	for _, v := range c.overflow {
		vs = append(vs, v)
	}
	c.mu.Unlock()
	for _, v := range vs {
		f(v)
	}
}
