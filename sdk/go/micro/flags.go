package micro

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"
)

// Config is what the command line and the environment choose; a zero field was chosen by
// neither, and leaves the value from code (or the default) in place. Build the parts it names
// with NewParts.
type Config struct {
	Registry         string            // --registry, MICRO_REGISTRY: memory, mdns, remote, consul, etcd
	RegistryAddress  []string          // --registry-address, MICRO_REGISTRY_ADDRESS: comma-separated
	RegistryTimeout  time.Duration     // --registry-timeout, MICRO_REGISTRY_TIMEOUT
	Transport        string            // --transport, MICRO_TRANSPORT: tcp, memory, grpc
	TransportTLSCA   string            // --transport-tls-ca, MICRO_TRANSPORT_TLS_CA: PEM file of CAs
	TransportTLSCert string            // --transport-tls-cert, MICRO_TRANSPORT_TLS_CERT: PEM certificate file
	TransportTLSKey  string            // --transport-tls-key, MICRO_TRANSPORT_TLS_KEY: PEM key file
	Selector         string            // --selector, MICRO_SELECTOR: cache
	SelectorStrategy string            // --selector-strategy, MICRO_SELECTOR_STRATEGY: roundrobin, random, p2c
	ServerName       string            // --server-name, MICRO_SERVER_NAME
	ServerVersion    string            // --server-version, MICRO_SERVER_VERSION
	ServerID         string            // --server-id, MICRO_SERVER_ID
	ServerAddress    string            // --server-address, MICRO_SERVER_ADDRESS
	ServerAdvertise  string            // --server-advertise, MICRO_SERVER_ADVERTISE
	ServerMetadata   map[string]string // --server-metadata, MICRO_SERVER_METADATA: k=v,k=v
	RegisterTTL      time.Duration     // --register-ttl, MICRO_REGISTER_TTL
	RegisterInterval time.Duration     // --register-interval, MICRO_REGISTER_INTERVAL
	RequestTimeout   time.Duration     // --client-request-timeout, MICRO_CLIENT_REQUEST_TIMEOUT
}

// setting is one flag and its environment variable.
type setting struct {
	flag, env, usage string
	apply            func(c *Config, v string) error
}

func str(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func dur(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return fmt.Errorf("%v: must be > 0", d)
		}
		*f(c) = d
		return nil
	}
}

// settings is the one table of flags and environment variables. Flag names follow go-micro's
// with dashes; the variables are go-micro's MICRO_* names.
var settings = []setting{
	{"registry", "MICRO_REGISTRY", "registry `name`: memory, mdns, remote, consul, etcd (default memory)", str(func(c *Config) *string { return &c.Registry })},
	{"registry-address", "MICRO_REGISTRY_ADDRESS", "registry server `addresses`, comma-separated", func(c *Config, v string) error {
		c.RegistryAddress = splitList(v)
		return nil
	}},
	{"registry-timeout", "MICRO_REGISTRY_TIMEOUT", "bound on each registry call (mdns: how long a query waits for answers)", dur(func(c *Config) *time.Duration { return &c.RegistryTimeout })},
	{"transport", "MICRO_TRANSPORT", "transport `name`: tcp, memory, grpc (default tcp)", str(func(c *Config) *string { return &c.Transport })},
	{"transport-tls-ca", "MICRO_TRANSPORT_TLS_CA", "PEM `file` of the CAs that verify servers (and, with a certificate, clients: mutual TLS)", str(func(c *Config) *string { return &c.TransportTLSCA })},
	{"transport-tls-cert", "MICRO_TRANSPORT_TLS_CERT", "PEM certificate `file` the server serves TLS with and the client presents", str(func(c *Config) *string { return &c.TransportTLSCert })},
	{"transport-tls-key", "MICRO_TRANSPORT_TLS_KEY", "PEM key `file` of --transport-tls-cert", str(func(c *Config) *string { return &c.TransportTLSKey })},
	{"selector", "MICRO_SELECTOR", "selector `name`: cache (default cache)", str(func(c *Config) *string { return &c.Selector })},
	{"selector-strategy", "MICRO_SELECTOR_STRATEGY", "selector `strategy`: roundrobin, random, p2c (default roundrobin)", str(func(c *Config) *string { return &c.SelectorStrategy })},
	{"server-name", "MICRO_SERVER_NAME", "service `name` the server registers", str(func(c *Config) *string { return &c.ServerName })},
	{"server-version", "MICRO_SERVER_VERSION", "service `version` the server registers", str(func(c *Config) *string { return &c.ServerVersion })},
	{"server-id", "MICRO_SERVER_ID", "node `id` (default: name and random hex)", str(func(c *Config) *string { return &c.ServerID })},
	{"server-address", "MICRO_SERVER_ADDRESS", "`address` the server listens on (default 127.0.0.1:0)", str(func(c *Config) *string { return &c.ServerAddress })},
	{"server-advertise", "MICRO_SERVER_ADVERTISE", "`address` registered, when it differs from the listener's", str(func(c *Config) *string { return &c.ServerAdvertise })},
	{"server-metadata", "MICRO_SERVER_METADATA", "node metadata, `k=v` pairs comma-separated", func(c *Config, v string) error {
		md := map[string]string{}
		for _, kv := range splitList(v) {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("%q is not k=v", kv)
			}
			md[k] = val
		}
		c.ServerMetadata = md
		return nil
	}},
	{"register-ttl", "MICRO_REGISTER_TTL", "registration TTL, a Go duration (default 30s)", dur(func(c *Config) *time.Duration { return &c.RegisterTTL })},
	{"register-interval", "MICRO_REGISTER_INTERVAL", "registration refresh interval (default TTL/3)", dur(func(c *Config) *time.Duration { return &c.RegisterInterval })},
	{"client-request-timeout", "MICRO_CLIENT_REQUEST_TIMEOUT", "bound on each call, retries included (default 5s)", dur(func(c *Config) *time.Duration { return &c.RequestTimeout })},
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Setting describes one flag and its environment variable, for help texts and docs.
type Setting struct{ Flag, Env, Usage string }

// Settings lists every flag RegisterFlags adds, with its environment variable.
func Settings() []Setting {
	out := make([]Setting, len(settings))
	for i, s := range settings {
		out[i] = Setting{Flag: s.flag, Env: s.env, Usage: s.usage}
	}
	return out
}

// FlagValues holds what RegisterFlags' flags were set to on the command line.
type FlagValues struct {
	vals []*flagValue
}

// flagValue is a flag.Value that remembers whether it was set, so a flag given on the command
// line wins over the environment and a flag left alone does not override code. It works with
// pflag.FlagSet.AddGoFlagSet too.
type flagValue struct {
	s   *setting
	v   string
	set bool
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.v
}

func (f *flagValue) Set(v string) error {
	var probe Config
	if err := f.s.apply(&probe, v); err != nil {
		return err
	}
	f.v, f.set = v, true
	return nil
}

// RegisterFlags adds the --registry, --transport, --selector, --server-* ... flags (Settings) to
// fs and returns their values; after fs.Parse, Config reads them.
func RegisterFlags(fs *flag.FlagSet) *FlagValues {
	fv := &FlagValues{}
	for i := range settings {
		s := &settings[i]
		v := &flagValue{s: s}
		fs.Var(v, s.flag, s.usage+" ($"+s.env+")")
		fv.vals = append(fv.vals, v)
	}
	return fv
}

// Config returns what the flags set on the command line and the environment say, a flag given
// on the command line winning over its variable. lookupEnv is os.LookupEnv when nil; an empty
// variable counts as unset. fv may be nil: then only the environment is read.
func (fv *FlagValues) Config(lookupEnv func(string) (string, bool)) (Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var c Config
	for i := range settings {
		s := &settings[i]
		if fv != nil && fv.vals[i].set {
			if err := s.apply(&c, fv.vals[i].v); err != nil {
				return Config{}, fmt.Errorf("micro: --%s: %w", s.flag, err)
			}
			continue
		}
		if v, ok := lookupEnv(s.env); ok && v != "" {
			if err := s.apply(&c, v); err != nil {
				return Config{}, fmt.Errorf("micro: $%s: %w", s.env, err)
			}
		}
	}
	return c, nil
}

// FromEnv returns what the MICRO_* environment variables say (os.LookupEnv when lookupEnv is
// nil), for binaries without these flags.
func FromEnv(lookupEnv func(string) (string, bool)) (Config, error) {
	var fv *FlagValues
	return fv.Config(lookupEnv)
}

// apply sets the service options that c chooses; a zero field changes nothing.
func (c Config) apply(o *Options) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setD := func(dst *time.Duration, v time.Duration) {
		if v != 0 {
			*dst = v
		}
	}
	set(&o.Name, c.ServerName)
	set(&o.Version, c.ServerVersion)
	set(&o.ID, c.ServerID)
	set(&o.Address, c.ServerAddress)
	set(&o.Advertise, c.ServerAdvertise)
	if c.ServerMetadata != nil {
		o.Metadata = maps.Clone(c.ServerMetadata)
	}
	setD(&o.RegisterTTL, c.RegisterTTL)
	setD(&o.RegisterInterval, c.RegisterInterval)
	setD(&o.RequestTimeout, c.RequestTimeout)
}
