package micro

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/configd/configd/internal/pemfile"
	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Parts are the pluggable parts a service or a client runs on.
type Parts struct {
	Registry  registry.Registry
	Transport transport.Transport
	Selector  selector.Selector

	owned []io.Closer // built here, closed by Close, last built first
}

// Defaults of the parts no one chose.
const (
	DefaultRegistry  = "memory"
	DefaultTransport = "tcp"
)

// NewParts builds the parts cfg names from cat (catalog.Default() when nil). Where cfg names
// nothing, the part in base (given in code) is used, and where base has none either, the
// default: a memory registry, the tcp transport, and the cache selector with round robin over
// the registry. Parts built here belong to the result and are released by its Close; parts
// from base stay the caller's.
//
// A selector from base is bound to its own registry: when cfg names a registry but no
// selector, NewParts fails rather than leave the selector on the registry cfg replaced.
func NewParts(cfg Config, base Parts, cat *catalog.Catalog, logger *slog.Logger) (*Parts, error) {
	if cat == nil {
		cat = catalog.Default()
	}
	if logger == nil {
		logger = slog.Default()
	}
	p := &Parts{}
	fail := func(err error) (*Parts, error) {
		p.Close()
		return nil, err
	}
	switch {
	case cfg.Registry != "":
		var opts []registry.Option
		if len(cfg.RegistryAddress) > 0 {
			opts = append(opts, registry.Addrs(cfg.RegistryAddress...))
		}
		if cfg.RegistryTimeout > 0 {
			opts = append(opts, registry.Timeout(cfg.RegistryTimeout))
		}
		r, err := cat.NewRegistry(cfg.Registry, opts...)
		if err != nil {
			return fail(fmt.Errorf("micro: %w", err))
		}
		p.Registry = r
		if c, ok := r.(io.Closer); ok {
			p.owned = append(p.owned, c)
		}
	case len(cfg.RegistryAddress) > 0:
		return fail(errors.New("micro: a registry address (--registry-address, MICRO_REGISTRY_ADDRESS) without a registry name (--registry, MICRO_REGISTRY)"))
	case base.Registry != nil:
		p.Registry = base.Registry
	default:
		r, err := cat.NewRegistry(DefaultRegistry)
		if err != nil {
			return fail(fmt.Errorf("micro: %w", err))
		}
		p.Registry = r
	}

	topts, err := cfg.transportOptions()
	if err != nil {
		return fail(err)
	}
	switch {
	case cfg.Transport != "":
		t, err := cat.NewTransport(cfg.Transport, topts...)
		if err != nil {
			return fail(fmt.Errorf("micro: %w", err))
		}
		p.Transport = t
		if c, ok := t.(io.Closer); ok {
			p.owned = append(p.owned, c)
		}
	case base.Transport != nil && len(topts) > 0:
		return fail(errors.New("micro: TLS is chosen by --transport-tls-*/MICRO_TRANSPORT_TLS_* but the transport was given in code; choose the transport by name too (--transport, MICRO_TRANSPORT) or give it transport.TLS in code"))
	case base.Transport != nil:
		p.Transport = base.Transport
	default:
		t, err := cat.NewTransport(DefaultTransport, topts...)
		if err != nil {
			return fail(fmt.Errorf("micro: %w", err))
		}
		p.Transport = t
		if c, ok := t.(io.Closer); ok {
			p.owned = append(p.owned, c)
		}
	}

	byName := cfg.Selector != "" || cfg.SelectorStrategy != ""
	switch {
	case !byName && base.Selector != nil && cfg.Registry != "":
		return fail(fmt.Errorf("micro: the registry is chosen by --registry/MICRO_REGISTRY (%s) but the selector was given in code over another registry; choose the selector by name too (--selector, MICRO_SELECTOR) or drop it from code", cfg.Registry))
	case !byName && base.Selector != nil:
		p.Selector = base.Selector
	default:
		name := cfg.Selector
		if name == "" {
			name = catalog.DefaultSelector
		}
		s, err := cat.NewSelector(name, cfg.SelectorStrategy, p.Registry, selector.Logger(logger))
		if err != nil {
			return fail(fmt.Errorf("micro: %w", err))
		}
		p.Selector = s
		p.owned = append(p.owned, s)
	}
	return p, nil
}

// Close releases the parts NewParts built (selector, transport, registry: a grpc transport holds
// connections, etcd a lease), not those from base.
func (p *Parts) Close() error {
	var errs []error
	for i := len(p.owned) - 1; i >= 0; i-- {
		errs = append(errs, p.owned[i].Close())
	}
	p.owned = nil
	return errors.Join(errs...)
}

// transportOptions turns the --transport-tls-* settings into transport options: with a
// certificate and key, the server serves TLS with it and the client presents it; with a CA file,
// the client verifies servers against those CAs (not the system's), and the server, when it has
// a certificate too, requires client certificates they signed (mutual TLS). A CA alone makes a
// client that calls TLS servers; a certificate without a CA verifies servers against the
// system's roots.
func (c Config) transportOptions() ([]transport.Option, error) {
	if c.TransportTLSCA == "" && c.TransportTLSCert == "" && c.TransportTLSKey == "" {
		return nil, nil
	}
	if (c.TransportTLSCert == "") != (c.TransportTLSKey == "") {
		return nil, errors.New("micro: --transport-tls-cert and --transport-tls-key (MICRO_TRANSPORT_TLS_CERT, _KEY) go together")
	}
	clientCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var serverCfg *tls.Config
	if c.TransportTLSCert != "" {
		cert, err := pemfile.KeyPair("transport TLS certificate", c.TransportTLSCert, "transport TLS key", c.TransportTLSKey)
		if err != nil {
			return nil, fmt.Errorf("micro: %w", err)
		}
		clientCfg.Certificates = []tls.Certificate{cert}
		serverCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	if c.TransportTLSCA != "" {
		pool, err := pemfile.CertPool("transport TLS CA", c.TransportTLSCA)
		if err != nil {
			return nil, fmt.Errorf("micro: %w", err)
		}
		clientCfg.RootCAs = pool
		if serverCfg != nil {
			serverCfg.ClientCAs, serverCfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	opts := []transport.Option{transport.ClientTLS(clientCfg)}
	if serverCfg != nil {
		opts = append(opts, transport.ServerTLS(serverCfg))
	}
	return opts, nil
}
