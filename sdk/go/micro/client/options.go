package client

import (
	"log/slog"
	"time"

	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Options configure a Client.
type Options struct {
	// Selector picks nodes; required unless every call passes WithAddress.
	Selector selector.Selector
	// Transport to dial; required.
	Transport transport.Transport
	// Codecs encode requests; default codec.Default().
	Codecs *codec.Set
	// ContentType of requests; empty picks application/protobuf for proto messages and
	// application/json for anything else.
	ContentType string
	// RequestTimeout bounds a whole Call, every retry included. Default 5 s.
	RequestTimeout time.Duration
	// PoolSize is the number of idle connections kept per node. Default 8. Over a transport
	// that multiplexes (tcp), the pool keeps idle shared sockets instead, at least
	// transport.MinSharedIdle; streams then get a connection of their own.
	PoolSize int
	// Wrappers wrap every attempt; the first is outermost.
	Wrappers []CallWrapper
	// StreamWrappers wrap every attempt to open a stream; the first is outermost.
	StreamWrappers []StreamWrapper
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Option sets an Options field.
type Option func(*Options)

// Selector sets the selector.
func Selector(s selector.Selector) Option { return func(o *Options) { o.Selector = s } }

// Transport sets the transport.
func Transport(t transport.Transport) Option { return func(o *Options) { o.Transport = t } }

// Codecs sets the codecs.
func Codecs(s *codec.Set) Option { return func(o *Options) { o.Codecs = s } }

// ContentType sets the default content type of requests.
func ContentType(ct string) Option { return func(o *Options) { o.ContentType = ct } }

// RequestTimeout bounds each Call, retries included.
func RequestTimeout(d time.Duration) Option { return func(o *Options) { o.RequestTimeout = d } }

// PoolSize sets the idle connections kept per node.
func PoolSize(n int) Option { return func(o *Options) { o.PoolSize = n } }

// Wrap adds call wrappers; the first added is outermost.
func Wrap(w ...CallWrapper) Option { return func(o *Options) { o.Wrappers = append(o.Wrappers, w...) } }

// WrapStream adds stream wrappers; the first added is outermost.
func WrapStream(w ...StreamWrapper) Option {
	return func(o *Options) { o.StreamWrappers = append(o.StreamWrappers, w...) }
}

// Logger sets the logger.
func Logger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// CallOptions configure one Call.
type CallOptions struct {
	// Addresses bypass the selector: the call goes to these, in turn.
	Addresses []string
	// SelectOptions are passed to the selector.
	SelectOptions []selector.SelectOption
	// RequestTimeout overrides the client's for this call.
	RequestTimeout time.Duration
	// ContentType overrides the client's for this call.
	ContentType string
	// Idempotent says the call may run twice: a failure after the request was sent (a node that
	// died mid-call, an attempt timeout) may then be retried on another node.
	Idempotent bool
	// ResponseMetadata, if set, receives the metadata the handler sent back.
	ResponseMetadata *metadata.Metadata
}

// CallOption sets a CallOptions field.
type CallOption func(*CallOptions)

// WithAddress sends the call to the given addresses instead of asking the selector.
func WithAddress(addrs ...string) CallOption { return func(o *CallOptions) { o.Addresses = addrs } }

// WithSelectOption passes options to the selector.
func WithSelectOption(so ...selector.SelectOption) CallOption {
	return func(o *CallOptions) { o.SelectOptions = append(o.SelectOptions, so...) }
}

// WithRequestTimeout bounds this call, retries included.
func WithRequestTimeout(d time.Duration) CallOption {
	return func(o *CallOptions) { o.RequestTimeout = d }
}

// WithContentType sets this call's content type.
func WithContentType(ct string) CallOption { return func(o *CallOptions) { o.ContentType = ct } }

// Idempotent marks the call safe to run twice.
func Idempotent() CallOption { return func(o *CallOptions) { o.Idempotent = true } }

// WithResponseMetadata receives the handler's response metadata into md.
func WithResponseMetadata(md *metadata.Metadata) CallOption {
	return func(o *CallOptions) { o.ResponseMetadata = md }
}
