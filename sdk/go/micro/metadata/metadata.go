// Package metadata carries string key/value pairs with a call, both ways: the caller's metadata
// reaches the handler through its context, and a handler's response metadata reaches the caller.
package metadata

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
)

// Metadata is a set of key/value pairs. Keys are case-sensitive.
type Metadata map[string]string

// HeaderPrefix prefixes metadata keys on the wire, so they never collide with the transport's
// own headers (Micro-*, Content-Type).
const HeaderPrefix = "Md-"

type requestKey struct{}
type responseKey struct{}

// carried is the metadata a context holds, never changed once stored: a base (a map, or the
// wire headers of a call, whose keys carry HeaderPrefix) and pairs added on top of it, the
// later winning.
type carried struct {
	base   Metadata
	header map[string]string
	added  []string  // key, value, key, value, ...
	one    [2]string // added's storage when it is one pair, saving an allocation
}

// wireHeaders is what HeaderContext stores: a call's headers as they came, a map, so storing it
// in a context allocates nothing.
type wireHeaders map[string]string

// carriedContext is a context holding a carried value: what context.WithValue(ctx, requestKey{},
// &carried{...}) holds, in one allocation instead of two.
type carriedContext struct {
	context.Context
	c carried
}

func (x *carriedContext) Value(key any) any {
	if _, ok := key.(requestKey); ok {
		return &x.c
	}
	return x.Context.Value(key)
}

func (x *carriedContext) String() string { return fmt.Sprint(x.Context) + ".WithMetadata" }

func fromContext(ctx context.Context) (carried, bool) {
	switch v := ctx.Value(requestKey{}).(type) {
	case *carried:
		return *v, true // a copy of the header: added still shares v's (never changed) storage
	case wireHeaders:
		return carried{header: v}, true
	}
	return carried{}, false
}

// each calls fn for every pair, base first then the added pairs in order; a key may come more
// than once, the last one is its value.
func (c *carried) each(fn func(key, value string)) {
	for k, v := range c.base {
		fn(k, v)
	}
	for k, v := range c.header {
		if key, ok := strings.CutPrefix(k, HeaderPrefix); ok {
			fn(key, v)
		}
	}
	for i := 0; i+1 < len(c.added); i += 2 {
		fn(c.added[i], c.added[i+1])
	}
}

// NewContext returns ctx carrying a copy of md: on a client, the metadata sent with calls made
// with ctx; on a server, the metadata the caller sent. It replaces what ctx carried.
func NewContext(ctx context.Context, md Metadata) context.Context {
	return &carriedContext{Context: ctx, c: carried{base: maps.Clone(md)}}
}

// AppendToContext returns ctx with the pairs kv (key, value, key, value, ...) added to the
// metadata it carries, replacing keys it has. Nothing ctx carries is copied, which makes it the
// cheap way for a wrapper to add a header to every call (a tracing span's traceparent). It
// panics when kv has an odd length.
func AppendToContext(ctx context.Context, kv ...string) context.Context {
	if len(kv)%2 == 1 {
		panic("metadata: AppendToContext got an odd number of strings; want key, value pairs")
	}
	x := &carriedContext{Context: ctx}
	c := &x.c
	var prevAdded []string
	if prev, ok := fromContext(ctx); ok {
		c.base, c.header, prevAdded = prev.base, prev.header, prev.added
	}
	if n := len(prevAdded) + len(kv); n <= len(c.one) {
		c.added = c.one[:0]
	} else {
		c.added = make([]string, 0, n)
	}
	c.added = append(append(c.added, prevAdded...), kv...)
	return x
}

// HeaderContext returns ctx carrying the metadata in a call's wire headers h (the keys with
// HeaderPrefix), as NewContext(ctx, FromHeader(h)) does but without building the map until
// FromContext asks for it. h must not change afterwards: servers keep a call's headers as they
// arrived.
func HeaderContext(ctx context.Context, h map[string]string) context.Context {
	return context.WithValue(ctx, requestKey{}, wireHeaders(h))
}

// FromContext returns a copy of the metadata in ctx.
func FromContext(ctx context.Context) (Metadata, bool) {
	c, ok := fromContext(ctx)
	if !ok {
		return nil, false
	}
	if c.header == nil && len(c.added) == 0 {
		return maps.Clone(c.base), true
	}
	var md Metadata
	c.each(func(k, v string) {
		if md == nil {
			md = Metadata{}
		}
		md[k] = v
	})
	return md, true
}

// ContextToHeader writes the metadata in ctx into h with HeaderPrefix, as
// ToHeader(FromContext(ctx)) does without the copy. It reports whether ctx carried metadata.
func ContextToHeader(ctx context.Context, h map[string]string) bool {
	c, ok := fromContext(ctx)
	if !ok {
		return false
	}
	c.each(func(k, v string) { h[headerKey(k)] = v })
	return true
}

// Response collects the metadata a handler sends back. The server puts one in each handler's
// context; SetResponse writes to it.
type Response struct {
	mu sync.Mutex
	md Metadata
}

// WithResponse returns ctx carrying r, for servers.
func WithResponse(ctx context.Context, r *Response) context.Context {
	return context.WithValue(ctx, responseKey{}, r)
}

// SetResponse sets key=value in the metadata returned to the caller. It reports false when ctx
// is not a handler's context.
func SetResponse(ctx context.Context, key, value string) bool {
	r, ok := ctx.Value(responseKey{}).(*Response)
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.md == nil {
		r.md = Metadata{}
	}
	r.md[key] = value
	return true
}

// Metadata returns a copy of what the handler set.
func (r *Response) Metadata() Metadata {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.md)
}

// ToHeader writes md into h with HeaderPrefix.
func ToHeader(md Metadata, h map[string]string) {
	for k, v := range md {
		h[headerKey(k)] = v
	}
}

// headerKey is HeaderPrefix+key, without building the string for the keys of the default
// OpenTelemetry propagators, which tracing adds to every call.
func headerKey(key string) string {
	switch key {
	case "traceparent":
		return HeaderPrefix + "traceparent"
	case "tracestate":
		return HeaderPrefix + "tracestate"
	case "baggage":
		return HeaderPrefix + "baggage"
	}
	return HeaderPrefix + key
}

// FromHeader returns the metadata in h.
func FromHeader(h map[string]string) Metadata {
	var md Metadata
	for k, v := range h {
		if key, ok := strings.CutPrefix(k, HeaderPrefix); ok {
			if md == nil {
				md = Metadata{}
			}
			md[key] = v
		}
	}
	return md
}
