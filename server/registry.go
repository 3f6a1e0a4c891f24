package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/sdk/go/micro"
	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/server/announce"
)

// ServiceName is the service name configd registers under unless
// --server-name (MICRO_SERVER_NAME, registry.service) names another.
const ServiceName = api.ServiceName

// RegistryConfig says where configd registers itself, so that clients find
// it through a registry (docs/registry.md). Off unless a registry is named
// or given in code.
type RegistryConfig struct {
	// Micro holds micro's settings that configd uses (micro.Config.Settings):
	// --registry, --registry-address, --registry-timeout, --server-name,
	// --server-version, --server-id, --server-advertise, --server-metadata,
	// --register-ttl and --register-interval, each with its MICRO_*
	// variable, over the config file's registry: section (Config.Settings).
	// A zero field is unset. configd offers no other flag of micro's: it
	// serves no micro transport and calls no service. MICRO_SERVER_ADDRESS
	// is refused: configd listens on --http-addr.
	Micro micro.Config
	// Use is a registry given in code (tests, an embedding program): it is
	// used when Micro.Registry names none, and is not closed by Run.
	Use registry.Registry
}

// on reports whether configd registers itself.
func (r RegistryConfig) on() bool { return r.Micro.Registry != "" || r.Use != nil }

// check says what is wrong with r, or returns nil.
func (r RegistryConfig) check() error {
	m := r.Micro
	switch {
	case m.Registry != "" && !slices.Contains(catalog.Registries().Names(), m.Registry):
		return fmt.Errorf("--registry %q: want one of %s", m.Registry, strings.Join(catalog.Registries().Names(), ", "))
	case len(m.RegistryAddress) > 0 && m.Registry == "":
		return errors.New("a registry address (--registry-address, MICRO_REGISTRY_ADDRESS, registry.address) needs a registry name (--registry, MICRO_REGISTRY, registry.name)")
	case m.ServerAddress != "":
		return errors.New("--server-address (MICRO_SERVER_ADDRESS) is not used by configd: it listens on --http-addr; --server-advertise sets the registered address")
	case m.ServerAdvertise != "":
		if _, port, err := net.SplitHostPort(m.ServerAdvertise); err != nil || port == "" {
			return fmt.Errorf("--server-advertise %q is not host:port", m.ServerAdvertise)
		}
	}
	ttl, interval := r.timing()
	if interval >= ttl {
		return fmt.Errorf("--register-interval %v must be shorter than --register-ttl %v", interval, ttl)
	}
	return nil
}

// timing returns the registration TTL and refresh interval, defaults
// filled in.
func (r RegistryConfig) timing() (ttl, interval time.Duration) {
	return announce.Timing(r.Micro.RegisterTTL, r.Micro.RegisterInterval)
}

// newAnnouncer builds the registry cfg names and the Announcer that keeps
// configd registered in it (nil, nil when registration is off). It
// registers nothing yet: see announce.Announcer.Start.
func newAnnouncer(cfg Config, logger *slog.Logger) (*announce.Announcer, error) {
	rc := cfg.Registry
	if !rc.on() {
		return nil, nil
	}
	if err := rc.check(); err != nil {
		return nil, fmt.Errorf("invalid configuration: registry: %w", err)
	}
	m := rc.Micro
	ac := announce.Config{Registry: rc.Use, Service: m.ServerName, Version: m.ServerVersion, ID: m.ServerID,
		Advertise: m.ServerAdvertise, Metadata: m.ServerMetadata, ConfigdVersion: Version(),
		TTL: m.RegisterTTL, Interval: m.RegisterInterval, Timeout: m.RegistryTimeout, Logger: logger}
	if m.Registry != "" {
		var opts []registry.Option
		if len(m.RegistryAddress) > 0 {
			opts = append(opts, registry.Addrs(m.RegistryAddress...))
		}
		if m.RegistryTimeout > 0 {
			opts = append(opts, registry.Timeout(m.RegistryTimeout))
		}
		r, err := catalog.Default().NewRegistry(m.Registry, opts...)
		if err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		ac.Registry = r
		ac.Closer, _ = r.(io.Closer)
	}
	return announce.New(ac), nil
}
