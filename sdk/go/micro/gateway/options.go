package gateway

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/selector"
)

// Defaults of a Gateway's limits.
const (
	// DefaultMaxBody is the largest request body read (413 above it): the tcp transport's
	// largest frame.
	DefaultMaxBody = 4 << 20
	// DefaultTimeout bounds a call or a proxied request (504 at it).
	DefaultTimeout = 10 * time.Second
	// DefaultContentType is the codec of the rpc handler's calls: JSON, which every server
	// on the core decodes into its handler's request type.
	DefaultContentType = codec.JSONContentType
)

// Options configure a Gateway; set them with the Option functions.
type Options struct {
	// Client makes the rpc handler's calls, through its selector and wrappers. Required for
	// rpc routes.
	Client client.Caller
	// Selector picks the nodes the http and web handlers proxy to; by default the Client's when
	// it is a *client.Client.
	Selector selector.Selector
	// Registry is where services declare routes (endpoint metadata) and, for the web index,
	// what is listed. Required.
	Registry registry.Registry
	// Namespace is prefixed, with a dot, to the service a path names ("" by default).
	Namespace string
	// Routes are the configured routes; SetRoutes replaces them.
	Routes []Route
	// Middleware wraps the gateway, the first outermost.
	Middleware []func(http.Handler) http.Handler
	// PathHandler is the handler the path rule uses: HandlerRPC (micro api, the default),
	// HandlerHTTP, or HandlerWeb (micro web, whose "/" is the index of services).
	PathHandler string
	// MaxBody is the largest request body read, in bytes; DefaultMaxBody when 0.
	MaxBody int64
	// Timeout bounds each call or proxied request; DefaultTimeout when 0.
	Timeout time.Duration
	// ContentType is the codec the rpc handler calls services with (an alias names its codec):
	// JSON requests go in it when it is of the JSON family (application/json,
	// application/json-rpc, application/grpc+json), protobuf bodies when it is of the
	// protobuf family (application/protobuf, application/proto-rpc, application/grpc+proto).
	// The gateway has no schema to turn one family into the other, so the requests of the
	// other family go as application/json or application/protobuf. DefaultContentType when
	// empty.
	ContentType string
	// Filters narrow the nodes every call and proxied request may go to
	// (selector.FilterVersion, selector.FilterLabel, ...), after the selector's own.
	Filters []selector.Filter
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
}

// Option sets an Options field.
type Option func(*Options)

// WithFilter narrows the nodes the gateway sends to: a call or a proxied request goes only to
// nodes every filter keeps (selector.FilterVersion("v2"), selector.FilterLabel("zone",
// "eu-1")); a service none of whose nodes pass is answered 503.
func WithFilter(f ...selector.Filter) Option {
	return func(o *Options) { o.Filters = append(o.Filters, f...) }
}

// WithClient sets the client the rpc handler calls through.
func WithClient(c client.Caller) Option { return func(o *Options) { o.Client = c } }

// WithSelector sets the selector the http and web handlers pick nodes with.
func WithSelector(s selector.Selector) Option { return func(o *Options) { o.Selector = s } }

// WithRegistry sets the registry services declare their routes in.
func WithRegistry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// WithNamespace sets the namespace the path rule prefixes to service names.
func WithNamespace(ns string) Option { return func(o *Options) { o.Namespace = ns } }

// WithRoutes sets the configured routes.
func WithRoutes(rs []Route) Option { return func(o *Options) { o.Routes = rs } }

// WithMiddleware adds HTTP middleware (plugins), the first added outermost.
func WithMiddleware(mw ...func(http.Handler) http.Handler) Option {
	return func(o *Options) { o.Middleware = append(o.Middleware, mw...) }
}

// WithPathHandler sets the handler of the path rule (HandlerRPC, HandlerHTTP or HandlerWeb).
func WithPathHandler(kind string) Option { return func(o *Options) { o.PathHandler = kind } }

// WithMaxBody sets the largest request body read, in bytes.
func WithMaxBody(n int64) Option { return func(o *Options) { o.MaxBody = n } }

// WithTimeout bounds each call or proxied request.
func WithTimeout(d time.Duration) Option { return func(o *Options) { o.Timeout = d } }

// WithContentType sets the codec the rpc handler calls services with (see
// Options.ContentType).
func WithContentType(ct string) Option { return func(o *Options) { o.ContentType = ct } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }
