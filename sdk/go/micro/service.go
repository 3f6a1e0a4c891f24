package micro

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/debug"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrBuilt: an Init option would change a part already built (a server that has handlers, a
	// client handed out); give it earlier.
	ErrBuilt = errors.New("micro: option given after the part it changes was built")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("micro: service already run")
)

// Service is a server and a client sharing a registry, a transport and a selector, with
// options from defaults, code, flags and the environment. Create it with NewService; it is safe
// for concurrent use.
type Service struct {
	mu     sync.Mutex
	code   []Option
	fv     *FlagValues // set by the first Init
	fs     *flag.FlagSet
	opts   Options // resolved
	cfg    Config  // what the command line and the environment chose
	parts  *Parts
	pkey   partsKey
	srv    *server.Server
	skey   serverKey
	dbg    *debug.Handler
	cli    *client.Client
	caller client.Caller
	ckey   clientKey
	wraps  wrapState
	ran    bool
}

// wrapState holds the handler wrappers for the server to read when a handler is registered,
// however it is registered (Service.Handle or Server().Handle). Lock order: Service.mu first.
type wrapState struct {
	mu      sync.Mutex
	ws      []server.HandlerWrapper
	armed   bool // the Debug handler is registered: the next registration is the user's
	handled bool // a user handler was registered: the wrappers are fixed
}

// NewService returns a service with opts. Nothing is built or parsed yet: Init parses the
// command line and builds the parts; Client, Server, Handle and Run build what they need.
func NewService(opts ...Option) *Service {
	return &Service{code: slices.Clone(opts)}
}

// Init adds opts after those already given and resolves the options again, by the rule
//
//	defaults < options in code (NewService's, then each Init's, in order) < environment < command line
//
// whatever the order of the calls: an option in code never overrides a flag or a variable,
// and options given before Init are kept. The first Init parses the command line (Args,
// default os.Args[1:]) with the RegisterFlags flags and the binary's own (Flags), then runs the
// Actions; later Inits do not parse again. Init builds the registry, transport and selector,
// so a bad name or address fails here. An option that would change a part already built (the
// server after a handler was registered, the client after Client) fails with ErrBuilt.
func (s *Service) Init(opts ...Option) error {
	actions, fs, err := s.init(opts)
	if err != nil {
		return err
	}
	// Outside the lock, so that an action may call Init or Client.
	for _, a := range actions {
		if err := a(fs); err != nil {
			return err
		}
	}
	return nil
}

// init does Init's work and returns the actions to run when it parsed the command line.
func (s *Service) init(opts []Option) ([]func(*flag.FlagSet) error, *flag.FlagSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := append(slices.Clone(s.code), opts...)
	o := resolveCode(code)
	if s.fs == nil {
		s.fs = flag.NewFlagSet(serviceFlagSetName(o), flag.ContinueOnError)
		s.fv = RegisterFlags(s.fs)
		for _, f := range o.Flags {
			f(s.fs)
		}
		args := o.Args
		if args == nil {
			args = os.Args[1:]
		}
		if err := s.fs.Parse(args); err != nil {
			return nil, nil, fmt.Errorf("micro: %w", err)
		}
		s.code = code
		if err := s.resolveLocked(); err != nil {
			return nil, nil, err
		}
		return o.Actions, s.fs, s.partsLocked()
	}
	return nil, nil, s.reinitLocked(code, o)
}

func (s *Service) reinitLocked(code []Option, o Options) error {
	if len(o.Flags) != len(resolveCode(s.code).Flags) {
		return fmt.Errorf("%w: micro.Flags after the command line was parsed", ErrBuilt)
	}
	prev := s.code
	s.code = code
	if err := s.resolveLocked(); err != nil {
		s.code = prev
		s.resolveLocked()
		return err
	}
	return s.partsLocked()
}

func serviceFlagSetName(o Options) string {
	if o.Name != "" {
		return o.Name
	}
	return os.Args[0]
}

// resolveCode applies the options in code over the defaults.
func resolveCode(code []Option) Options {
	o := defaultOptions()
	for _, f := range code {
		f(&o)
	}
	return o
}

// resolveLocked computes the options and checks them against what is built.
func (s *Service) resolveLocked() error {
	o := resolveCode(s.code)
	// The command line and the environment set cfg, whose part names NewParts reads, and the
	// service's options straight in o, over the options in code.
	var cfg Config
	if err := s.fv.load(append(cfg.Settings(), o.settings()...), o.LookupEnv); err != nil {
		return err
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s.wraps.mu.Lock()
	defer s.wraps.mu.Unlock()
	if s.srv != nil {
		if k := newServerKey(o); !s.skey.equal(k, s.wraps.handled) {
			return fmt.Errorf("%w: the server's options changed after it was built (by Server, Handle or Run)", ErrBuilt)
		}
	}
	if s.cli != nil && !s.ckey.equal(newClientKey(o)) {
		return fmt.Errorf("%w: the client's options changed after Client was called", ErrBuilt)
	}
	if s.parts != nil && (s.srv != nil || s.cli != nil) && !s.pkey.equal(newPartsKey(o, cfg)) {
		return fmt.Errorf("%w: the registry, transport or selector changed after the server or client was built", ErrBuilt)
	}
	s.opts, s.cfg = o, cfg
	s.wraps.ws = slices.Clone(o.HandlerWrappers)
	if s.srv != nil {
		s.skey = newServerKey(o)
	}
	return nil
}

// partsLocked builds the parts, or rebuilds them when the options changed and nothing uses
// them yet.
func (s *Service) partsLocked() error {
	k := newPartsKey(s.opts, s.cfg)
	if s.parts != nil && s.pkey.equal(k) {
		return nil
	}
	if s.parts != nil {
		s.parts.Close()
		s.parts = nil
	}
	p, err := NewParts(s.cfg, Parts{Registry: s.opts.Registry, Transport: s.opts.Transport, Selector: s.opts.Selector}, s.opts.Catalog, s.opts.Logger)
	if err != nil {
		return err
	}
	s.parts, s.pkey = p, k
	return nil
}

// ensureLocked resolves (env only, when Init was never called) and builds the parts.
func (s *Service) ensureLocked() error {
	if s.parts == nil {
		if err := s.resolveLocked(); err != nil {
			return err
		}
	}
	return s.partsLocked()
}

// Options returns the resolved options; Registry, Transport and Selector are those in use once
// built.
func (s *Service) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fs == nil && s.parts == nil {
		s.resolveLocked()
	}
	o := s.opts
	if s.parts != nil {
		o.Registry, o.Transport, o.Selector = s.parts.Registry, s.parts.Transport, s.parts.Selector
	}
	return o
}

// Server returns the service's server, building it (and the parts) on first use, with the
// Debug handler registered; nil when that fails (Handle and Run return the error).
func (s *Service) Server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, err := s.serverLocked()
	if err != nil {
		s.opts.Logger.Error("micro: building the server", "err", err)
		return nil
	}
	return srv
}

// Handle registers rcvr's methods on the server (server.Server.Handle). Handler wrappers given
// after the first Handle fail Init with ErrBuilt.
func (s *Service) Handle(rcvr any, opts ...server.HandlerOption) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, err := s.serverLocked()
	if err != nil {
		return err
	}
	return srv.Handle(rcvr, opts...)
}

// HandleDesc registers impl, a service generated by protoc-gen-go-grpc, through its
// ServiceDesc (server.Server.HandleDesc): svc.HandleDesc(&pb.Greeter_ServiceDesc, impl).
func (s *Service) HandleDesc(desc *grpc.ServiceDesc, impl any, opts ...server.HandlerOption) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, err := s.serverLocked()
	if err != nil {
		return err
	}
	return srv.HandleDesc(desc, impl, opts...)
}

func (s *Service) serverLocked() (*server.Server, error) {
	if s.srv != nil {
		return s.srv, nil
	}
	if err := s.ensureLocked(); err != nil {
		return nil, err
	}
	o := s.opts
	if o.Name == "" {
		return nil, errors.New("micro: no service name: set micro.Name, --server-name or MICRO_SERVER_NAME")
	}
	dbg := debug.New()
	opts := []server.Option{
		server.Name(o.Name), server.Version(o.Version), server.ID(o.ID), server.Address(o.Address),
		server.Advertise(o.Advertise), server.Metadata(maps.Clone(o.Metadata)),
		server.Registry(s.parts.Registry), server.Transport(s.parts.Transport),
		server.RegisterTTL(o.RegisterTTL), server.RegisterInterval(o.RegisterInterval),
		server.GracePeriod(o.GracePeriod), server.DrainTimeout(o.DrainTimeout), server.Logger(o.Logger),
		// The handler wrappers are read when a handler is registered, so that Init may still add
		// some between building the server and the first Handle.
		server.WrapHandler(dbg.Wrapper(), s.wraps.wrap),
	}
	srv, err := server.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("micro: %w", err)
	}
	if err := srv.Handle(dbg, server.HandlerName(debug.Name)); err != nil {
		return nil, fmt.Errorf("micro: debug handler: %w", err)
	}
	s.wraps.mu.Lock()
	s.wraps.armed = true
	s.wraps.mu.Unlock()
	s.srv, s.dbg, s.skey = srv, dbg, newServerKey(o)
	return srv, nil
}

// wrap applies the handler wrappers known when a handler is registered; the server calls it
// from Handle.
func (w *wrapState) wrap(next server.HandlerFunc) server.HandlerFunc {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handled = w.armed
	ws := w.ws
	for i := len(ws) - 1; i >= 0; i-- {
		next = ws[i](next)
	}
	return next
}

// Client returns the service's client, wrapped by the client wrappers, building it (and the
// parts) on first use. When that fails, every call returns the error (status Unavailable).
func (s *Service) Client() client.Caller {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.caller != nil {
		return s.caller
	}
	fail := func(err error) client.Caller {
		s.opts.Logger.Error("micro: building the client", "err", err)
		return client.CallerFunc(func(context.Context, string, string, any, any, ...client.CallOption) error {
			return err
		})
	}
	if err := s.ensureLocked(); err != nil {
		return fail(err)
	}
	o := s.opts
	cli, err := client.New(client.Selector(s.parts.Selector), client.Transport(s.parts.Transport),
		client.RequestTimeout(o.RequestTimeout), client.Wrap(o.CallWrappers...), client.WrapStream(o.StreamWrappers...), client.Logger(o.Logger))
	if err != nil {
		return fail(fmt.Errorf("micro: %w", err))
	}
	s.cli, s.ckey = cli, newClientKey(o)
	s.caller = client.WrapCaller(cli, o.ClientWrappers...)
	return s.caller
}

// Stream opens a stream with the service's client (client.Client.Stream), building the client
// on first use. Client and call wrappers see calls only, not streams.
func (s *Service) Stream(ctx context.Context, service, endpoint string, opts ...client.CallOption) (client.Stream, error) {
	s.Client()
	s.mu.Lock()
	cli := s.cli
	s.mu.Unlock()
	if cli == nil {
		return nil, &status.Error{Code: status.Unavailable, Message: "micro: the client could not be built", Service: service, Endpoint: endpoint}
	}
	return cli.Stream(ctx, service, endpoint, opts...)
}

// Run starts the server (registering it), serves until SIGINT, SIGTERM or the end of the
// Context option, then stops gracefully in the server's order (deregister → grace period →
// stop accepting → drain → close), with Debug.Health answering "draining" from the start of
// the stop. Then it closes the client and the parts the service built. The hooks run around
// start and stop. Run can be called once.
func (s *Service) Run() (err error) {
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return ErrRunning
	}
	s.ran = true
	srv, err := s.serverLocked()
	s.mu.Unlock()
	defer func() { err = errors.Join(err, s.close()) }()
	if err != nil {
		return err
	}
	o := s.Options()
	ctx, stop := signal.NotifyContext(o.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runHooks(o.BeforeStart); err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	if err := runHooks(o.AfterStart); err != nil {
		return errors.Join(err, s.stop(srv, o))
	}
	<-ctx.Done()
	o.Logger.Info("micro: stopping", "service", o.Name, "cause", context.Cause(ctx))
	return s.stop(srv, o)
}

func (s *Service) stop(srv *server.Server, o Options) error {
	s.dbg.SetDraining(true)
	errs := []error{runHooks(o.BeforeStop)}
	// Stop bounds each of its phases itself; the extra margin only guards against a registry
	// that hangs in Deregister.
	ctx, cancel := context.WithTimeout(context.Background(), o.GracePeriod+o.DrainTimeout+10*time.Second)
	defer cancel()
	errs = append(errs, srv.Stop(ctx), runHooks(o.AfterStop))
	return errors.Join(errs...)
}

// Close releases the client's connections and the parts the service built (Run does this
// when it returns), for a service that only calls and is never Run.
func (s *Service) Close() error { return s.close() }

func (s *Service) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.cli != nil {
		errs = append(errs, s.cli.Close())
	}
	if s.parts != nil {
		errs = append(errs, s.parts.Close())
	}
	return errors.Join(errs...)
}

func runHooks(fs []func() error) error {
	for _, f := range fs {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// The keys below hold what a built part was built from, to tell whether new options would
// change it. Functions cannot be compared: wrappers count by number.

type partsKey struct {
	cfgRegistry, cfgTransport, cfgSelector, cfgStrategy string
	cfgTLSCA, cfgTLSCert, cfgTLSKey                     string
	cfgAddrs                                            string
	cfgTimeout                                          time.Duration
	registry, transport, selector                       any
}

func newPartsKey(o Options, c Config) partsKey {
	return partsKey{
		cfgRegistry: c.Registry, cfgTransport: c.Transport, cfgSelector: c.Selector, cfgStrategy: c.SelectorStrategy,
		cfgTLSCA: c.TransportTLSCA, cfgTLSCert: c.TransportTLSCert, cfgTLSKey: c.TransportTLSKey,
		cfgAddrs: fmt.Sprint(c.RegistryAddress), cfgTimeout: c.RegistryTimeout,
		registry: o.Registry, transport: o.Transport, selector: o.Selector,
	}
}

func (k partsKey) equal(o partsKey) bool {
	return k.cfgRegistry == o.cfgRegistry && k.cfgTransport == o.cfgTransport && k.cfgSelector == o.cfgSelector &&
		k.cfgTLSCA == o.cfgTLSCA && k.cfgTLSCert == o.cfgTLSCert && k.cfgTLSKey == o.cfgTLSKey &&
		k.cfgStrategy == o.cfgStrategy && k.cfgAddrs == o.cfgAddrs && k.cfgTimeout == o.cfgTimeout &&
		same(k.registry, o.registry) && same(k.transport, o.transport) && same(k.selector, o.selector)
}

// same compares two values that may hold uncomparable dynamic types (those are never the same).
func same(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}

type serverKey struct {
	name, version, id, address, advertise, metadata string
	ttl, interval, grace, drain                     time.Duration
	wrappers                                        int
}

func newServerKey(o Options) serverKey {
	return serverKey{
		name: o.Name, version: o.Version, id: o.ID, address: o.Address, advertise: o.Advertise,
		metadata: fmt.Sprint(o.Metadata), // fmt prints maps sorted by key
		ttl:      o.RegisterTTL, interval: o.RegisterInterval, grace: o.GracePeriod, drain: o.DrainTimeout,
		wrappers: len(o.HandlerWrappers),
	}
}

// equal reports whether n leaves the built server as it is: handler wrappers may still be
// added while no handler is registered.
func (k serverKey) equal(n serverKey, handled bool) bool {
	if !handled && n.wrappers >= k.wrappers {
		n.wrappers = k.wrappers
	}
	return k == n
}

type clientKey struct {
	timeout                                time.Duration
	callWrappers, streamWrappers, cliWraps int
}

func newClientKey(o Options) clientKey {
	return clientKey{timeout: o.RequestTimeout, callWrappers: len(o.CallWrappers), streamWrappers: len(o.StreamWrappers),
		cliWraps: len(o.ClientWrappers)}
}

func (k clientKey) equal(n clientKey) bool { return k == n }
