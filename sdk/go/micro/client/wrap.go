package client

import "context"

// Caller makes calls: a *Client, or a Client wrapped by ClientWrappers. It is what a
// ClientWrapper wraps and what micro.Service.Client returns.
type Caller interface {
	// Call calls service's endpoint with req and decodes the answer into rsp; see Client.Call.
	Call(ctx context.Context, service, endpoint string, req, rsp any, opts ...CallOption) error
}

var _ Caller = (*Client)(nil)

// ClientWrapper wraps a whole client, go-micro's client.Wrapper: it sees each Call once, before
// the request is encoded and a node selected, and may change the context, the options, or
// answer without calling through (a fallback, a cache). Use a CallWrapper instead for what must
// happen once per attempt (retry, per-node metrics).
type ClientWrapper func(Caller) Caller

// CallerFunc adapts a function to a Caller, for writing ClientWrappers.
type CallerFunc func(ctx context.Context, service, endpoint string, req, rsp any, opts ...CallOption) error

// Call implements Caller.
func (f CallerFunc) Call(ctx context.Context, service, endpoint string, req, rsp any, opts ...CallOption) error {
	return f(ctx, service, endpoint, req, rsp, opts...)
}

// WrapCaller applies ws to c; the first wrapper is outermost (it sees a call first).
func WrapCaller(c Caller, ws ...ClientWrapper) Caller {
	for i := len(ws) - 1; i >= 0; i-- {
		c = ws[i](c)
	}
	return c
}
