// Package metadata carries string key/value pairs with a call, both ways: the caller's metadata
// reaches the handler through its context, and a handler's response metadata reaches the caller.
package metadata

import (
	"context"
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

// NewContext returns ctx carrying md: on a client, the metadata sent with calls made with ctx;
// on a server, the metadata the caller sent.
func NewContext(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, requestKey{}, maps.Clone(md))
}

// FromContext returns a copy of the metadata in ctx.
func FromContext(ctx context.Context) (Metadata, bool) {
	md, ok := ctx.Value(requestKey{}).(Metadata)
	return maps.Clone(md), ok
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
		h[HeaderPrefix+k] = v
	}
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
