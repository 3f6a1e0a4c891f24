package registry

import (
	"context"
	"time"
)

// RegisterOptions configure one Register call.
type RegisterOptions struct {
	// TTL is how long the registered nodes live without being registered again. Zero means
	// they live until deregistered.
	TTL time.Duration
	// Context bounds the call for registries that talk to a server.
	Context context.Context
}

// RegisterOption sets a RegisterOptions field.
type RegisterOption func(*RegisterOptions)

// RegisterTTL sets how long the nodes live without a refresh.
func RegisterTTL(d time.Duration) RegisterOption { return func(o *RegisterOptions) { o.TTL = d } }

// RegisterContext bounds the Register call.
func RegisterContext(ctx context.Context) RegisterOption {
	return func(o *RegisterOptions) { o.Context = ctx }
}

// DeregisterOptions configure one Deregister call.
type DeregisterOptions struct {
	// Context bounds the call for registries that talk to a server.
	Context context.Context
}

// DeregisterOption sets a DeregisterOptions field.
type DeregisterOption func(*DeregisterOptions)

// DeregisterContext bounds the Deregister call.
func DeregisterContext(ctx context.Context) DeregisterOption {
	return func(o *DeregisterOptions) { o.Context = ctx }
}

// GetOptions configure one GetService call.
type GetOptions struct {
	// Context bounds the call for registries that talk to a server.
	Context context.Context
}

// GetOption sets a GetOptions field.
type GetOption func(*GetOptions)

// GetContext bounds the GetService call.
func GetContext(ctx context.Context) GetOption { return func(o *GetOptions) { o.Context = ctx } }

// ListOptions configure one ListServices call.
type ListOptions struct {
	// Context bounds the call for registries that talk to a server.
	Context context.Context
}

// ListOption sets a ListOptions field.
type ListOption func(*ListOptions)

// ListContext bounds the ListServices call.
func ListContext(ctx context.Context) ListOption { return func(o *ListOptions) { o.Context = ctx } }

// WatchOptions configure one Watch call.
type WatchOptions struct {
	// Service limits the watch to one service name; empty watches every service.
	Service string
}

// WatchOption sets a WatchOptions field.
type WatchOption func(*WatchOptions)

// WatchService limits the watch to the named service.
func WatchService(name string) WatchOption { return func(o *WatchOptions) { o.Service = name } }

// Options configure a Registry implementation when it is built.
type Options struct {
	// Addrs are the addresses of the registry's servers, for implementations that have any.
	Addrs []string
	// Timeout bounds each call to a registry server.
	Timeout time.Duration
}

// Option sets an Options field.
type Option func(*Options)

// Addrs sets the registry servers' addresses.
func Addrs(addrs ...string) Option { return func(o *Options) { o.Addrs = addrs } }

// Timeout bounds each call to a registry server.
func Timeout(d time.Duration) Option { return func(o *Options) { o.Timeout = d } }

// CallContext is the context of one call to a registry server: ctx (Background when nil) bounded
// by timeout unless it has a deadline of its own.
func CallContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}
