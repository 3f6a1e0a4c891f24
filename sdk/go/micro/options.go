package micro

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Options are a service's resolved options: defaults, then the options given in code (in the
// order given, across NewService and every Init), then the command line and the environment.
type Options struct {
	// Name, Version, ID, Address, Advertise, Metadata, RegisterTTL and RegisterInterval are the
	// server's (see server.Options).
	Name, Version, ID  string
	Address, Advertise string
	Metadata           map[string]string
	RegisterTTL        time.Duration
	RegisterInterval   time.Duration
	// GracePeriod and DrainTimeout shape the graceful stop (see server.Options).
	GracePeriod, DrainTimeout time.Duration
	// RequestTimeout bounds each call of Client, retries included.
	RequestTimeout time.Duration

	// Registry, Transport and Selector given in code. Options() reports the parts in use once
	// they are built (by Init, Client, Server, Handle or Run).
	Registry  registry.Registry
	Transport transport.Transport
	Selector  selector.Selector

	// HandlerWrappers wrap every handler, CallWrappers every attempt of a call, StreamWrappers
	// every attempt to open a stream, ClientWrappers the whole client; the first of each is
	// outermost.
	HandlerWrappers []server.HandlerWrapper
	CallWrappers    []client.CallWrapper
	StreamWrappers  []client.StreamWrapper
	ClientWrappers  []client.ClientWrapper

	// Context ends Run (as SIGINT and SIGTERM do); default context.Background().
	Context context.Context
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Catalog the command line and the environment choose parts from; default catalog.Default().
	Catalog *catalog.Catalog
	// Args is the command line the first Init parses; default os.Args[1:].
	Args []string
	// LookupEnv reads the environment; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Flags add the binary's own flags to the flag set the first Init parses.
	Flags []func(*flag.FlagSet)
	// Actions run after the first Init parsed the command line; their error is Init's.
	Actions []func(*flag.FlagSet) error
	// BeforeStart, AfterStart, BeforeStop and AfterStop run in Run, in order.
	BeforeStart, AfterStart, BeforeStop, AfterStop []func() error
}

func defaultOptions() Options {
	return Options{
		Address: "127.0.0.1:0", RegisterTTL: 30 * time.Second, GracePeriod: 2 * time.Second,
		DrainTimeout: 10 * time.Second, RequestTimeout: 5 * time.Second,
	}
}

// Option sets an Options field.
type Option func(*Options)

// Name sets the service name (--server-name, MICRO_SERVER_NAME).
func Name(n string) Option { return func(o *Options) { o.Name = n } }

// Version sets the service version (--server-version, MICRO_SERVER_VERSION).
func Version(v string) Option { return func(o *Options) { o.Version = v } }

// ID sets the node id (--server-id, MICRO_SERVER_ID).
func ID(id string) Option { return func(o *Options) { o.ID = id } }

// Address sets the listen address (--server-address, MICRO_SERVER_ADDRESS).
func Address(a string) Option { return func(o *Options) { o.Address = a } }

// Advertise sets the registered address (--server-advertise, MICRO_SERVER_ADVERTISE).
func Advertise(a string) Option { return func(o *Options) { o.Advertise = a } }

// Metadata sets the node metadata (--server-metadata, MICRO_SERVER_METADATA).
func Metadata(md map[string]string) Option { return func(o *Options) { o.Metadata = md } }

// RegisterTTL sets the registration TTL (--register-ttl, MICRO_REGISTER_TTL).
func RegisterTTL(d time.Duration) Option { return func(o *Options) { o.RegisterTTL = d } }

// RegisterInterval sets the registration refresh (--register-interval, MICRO_REGISTER_INTERVAL).
func RegisterInterval(d time.Duration) Option { return func(o *Options) { o.RegisterInterval = d } }

// GracePeriod sets how long the server serves after deregistering.
func GracePeriod(d time.Duration) Option { return func(o *Options) { o.GracePeriod = d } }

// DrainTimeout bounds the wait for in-flight calls at stop.
func DrainTimeout(d time.Duration) Option { return func(o *Options) { o.DrainTimeout = d } }

// RequestTimeout bounds each call (--client-request-timeout, MICRO_CLIENT_REQUEST_TIMEOUT).
func RequestTimeout(d time.Duration) Option { return func(o *Options) { o.RequestTimeout = d } }

// Registry sets the registry (overridden by --registry, MICRO_REGISTRY).
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// Transport sets the transport (overridden by --transport, MICRO_TRANSPORT).
func Transport(t transport.Transport) Option { return func(o *Options) { o.Transport = t } }

// Selector sets the selector (overridden by --selector, MICRO_SELECTOR). It must be over the
// service's registry.
func Selector(s selector.Selector) Option { return func(o *Options) { o.Selector = s } }

// WrapHandler adds handler wrappers; the first added is outermost.
func WrapHandler(w ...server.HandlerWrapper) Option {
	return func(o *Options) { o.HandlerWrappers = append(o.HandlerWrappers, w...) }
}

// WrapCall adds call wrappers, run around every attempt; the first added is outermost.
func WrapCall(w ...client.CallWrapper) Option {
	return func(o *Options) { o.CallWrappers = append(o.CallWrappers, w...) }
}

// WrapStream adds stream wrappers, run around every attempt to open a stream; the first added
// is outermost.
func WrapStream(w ...client.StreamWrapper) Option {
	return func(o *Options) { o.StreamWrappers = append(o.StreamWrappers, w...) }
}

// WrapClient adds client wrappers, run around every Call of Client; the first added is
// outermost.
func WrapClient(w ...client.ClientWrapper) Option {
	return func(o *Options) { o.ClientWrappers = append(o.ClientWrappers, w...) }
}

// Context sets the context whose end stops Run.
func Context(ctx context.Context) Option { return func(o *Options) { o.Context = ctx } }

// Logger sets the logger of the service and its parts.
func Logger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// Catalog sets the catalog flags and environment choose parts from.
func Catalog(c *catalog.Catalog) Option { return func(o *Options) { o.Catalog = c } }

// Args sets the command line the first Init parses, instead of os.Args[1:].
func Args(args ...string) Option {
	return func(o *Options) { o.Args = append([]string{}, args...) } // never nil: nil means os.Args
}

// Env replaces os.LookupEnv, for tests and for binaries that read settings elsewhere.
func Env(lookup func(string) (string, bool)) Option { return func(o *Options) { o.LookupEnv = lookup } }

// Flags adds the binary's own flags to the flag set the first Init parses, go-micro's
// micro.Flags; read their values in an Action or after Init.
//
//	micro.Flags(func(fs *flag.FlagSet) { n = fs.Int("n", 1, "calls to make") })
func Flags(f ...func(fs *flag.FlagSet)) Option {
	return func(o *Options) { o.Flags = append(o.Flags, f...) }
}

// Action adds a function run after the first Init parsed the command line (fs.Args() are the
// positional arguments); its error is Init's.
func Action(f func(fs *flag.FlagSet) error) Option {
	return func(o *Options) { o.Actions = append(o.Actions, f) }
}

// BeforeStart adds a function Run calls before starting the server; an error ends Run.
func BeforeStart(f func() error) Option {
	return func(o *Options) { o.BeforeStart = append(o.BeforeStart, f) }
}

// AfterStart adds a function Run calls once the server listens and is registered; an error
// stops the server and ends Run.
func AfterStart(f func() error) Option {
	return func(o *Options) { o.AfterStart = append(o.AfterStart, f) }
}

// BeforeStop adds a function Run calls when stopping, before the server's graceful stop.
func BeforeStop(f func() error) Option {
	return func(o *Options) { o.BeforeStop = append(o.BeforeStop, f) }
}

// AfterStop adds a function Run calls after the server stopped.
func AfterStop(f func() error) Option {
	return func(o *Options) { o.AfterStop = append(o.AfterStop, f) }
}
