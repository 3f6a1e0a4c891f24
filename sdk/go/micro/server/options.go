package server

import (
	"log/slog"
	"time"

	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Options configure a Server. New fills defaults and rejects nonsense.
type Options struct {
	// Name is the service name registered and answered to. Required.
	Name string
	// Version is registered with the service.
	Version string
	// ID is this node's id; default Name + "-" + random hex.
	ID string
	// Address is where to listen; default "127.0.0.1:0".
	Address string
	// Advertise is the address registered, when it differs from the listener's.
	Advertise string
	// Metadata is registered with the node.
	Metadata map[string]string
	// Registry to register in; nil serves without registering.
	Registry registry.Registry
	// RegisterTTL is the TTL of the registration: a crashed node disappears after it. Default 30 s.
	RegisterTTL time.Duration
	// RegisterInterval is how often the registration is refreshed; default RegisterTTL/3.
	RegisterInterval time.Duration
	// Transport to listen on; required.
	Transport transport.Transport
	// Codecs decode requests by content type; default codec.Default().
	Codecs *codec.Set
	// GracePeriod is how long the server keeps serving after deregistering, so that callers'
	// caches drop it before it stops accepting. Default 2 s.
	GracePeriod time.Duration
	// DrainTimeout bounds the wait for in-flight calls once accepting has stopped. Default 10 s.
	DrainTimeout time.Duration
	// Wrappers wrap every handler; the first is outermost.
	Wrappers []HandlerWrapper
	// Logger; default slog.Default().
	Logger *slog.Logger
	// OnPhase, if set, is called as Stop passes each phase, in order (for logs and tests).
	OnPhase func(Phase)
}

// Option sets an Options field.
type Option func(*Options)

// Name sets the service name.
func Name(n string) Option { return func(o *Options) { o.Name = n } }

// Version sets the service version.
func Version(v string) Option { return func(o *Options) { o.Version = v } }

// ID sets the node id.
func ID(id string) Option { return func(o *Options) { o.ID = id } }

// Address sets the listen address.
func Address(a string) Option { return func(o *Options) { o.Address = a } }

// Advertise sets the registered address.
func Advertise(a string) Option { return func(o *Options) { o.Advertise = a } }

// Metadata sets the node metadata.
func Metadata(md map[string]string) Option { return func(o *Options) { o.Metadata = md } }

// Registry sets the registry.
func Registry(r registry.Registry) Option { return func(o *Options) { o.Registry = r } }

// RegisterTTL sets the registration TTL.
func RegisterTTL(d time.Duration) Option { return func(o *Options) { o.RegisterTTL = d } }

// RegisterInterval sets how often the registration is refreshed.
func RegisterInterval(d time.Duration) Option { return func(o *Options) { o.RegisterInterval = d } }

// Transport sets the transport.
func Transport(t transport.Transport) Option { return func(o *Options) { o.Transport = t } }

// Codecs sets the codecs.
func Codecs(s *codec.Set) Option { return func(o *Options) { o.Codecs = s } }

// GracePeriod sets how long the server serves after deregistering.
func GracePeriod(d time.Duration) Option { return func(o *Options) { o.GracePeriod = d } }

// DrainTimeout bounds the wait for in-flight calls at Stop.
func DrainTimeout(d time.Duration) Option { return func(o *Options) { o.DrainTimeout = d } }

// WrapHandler adds handler wrappers; the first added is outermost.
func WrapHandler(w ...HandlerWrapper) Option {
	return func(o *Options) { o.Wrappers = append(o.Wrappers, w...) }
}

// Logger sets the logger.
func Logger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// OnPhase sets a callback for Stop's phases.
func OnPhase(f func(Phase)) Option { return func(o *Options) { o.OnPhase = f } }

// Phase is a step of Stop, reported through OnPhase in this order.
type Phase string

// The phases of Stop.
const (
	PhaseDeregistered   Phase = "deregistered"    // removed from the registry; still serving
	PhaseGraceOver      Phase = "grace-over"      // the grace period has passed
	PhaseListenerClosed Phase = "listener-closed" // no new connections
	PhaseDrained        Phase = "drained"         // in-flight calls finished (or the deadline hit)
	PhaseClosed         Phase = "closed"          // every connection closed
)
