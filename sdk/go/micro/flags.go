package micro

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/configd/configd/setting"
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

// EnvPrefix starts the name of every variable of micro's settings: go-micro's MICRO_*.
const EnvPrefix = "MICRO_"

// Settings returns micro's settings bound to c's fields, with their flags (go-micro's names)
// and MICRO_* variables, and no config-file keys: a binary that reads a config file gives the
// settings it takes keys of its own (configd's registry: section does). Every setting is
// Optional: a zero field is unset.
func (c *Config) Settings() setting.Table {
	positive := setting.MoreThan(time.Duration(0))
	t := setting.Table{
		setting.String(&c.Registry, "registry", "registry `name`: memory, mdns, remote, consul, etcd (default memory)"),
		setting.List(&c.RegistryAddress, "registry-address", "registry server `addresses`, comma-separated"),
		setting.Duration(&c.RegistryTimeout, "registry-timeout", "bound on each registry call (mdns: how long a query waits for answers)", positive),
		setting.String(&c.Transport, "transport", "transport `name`: tcp, memory, grpc (default tcp)"),
		setting.File(&c.TransportTLSCA, "transport-tls-ca", "PEM `file` of the CAs that verify servers (and, with a certificate, clients: mutual TLS)"),
		setting.File(&c.TransportTLSCert, "transport-tls-cert", "PEM certificate `file` the server serves TLS with and the client presents"),
		setting.File(&c.TransportTLSKey, "transport-tls-key", "PEM key `file` of --transport-tls-cert"),
		setting.String(&c.Selector, "selector", "selector `name`: cache (default cache)"),
		setting.String(&c.SelectorStrategy, "selector-strategy", "selector `strategy`: roundrobin, random, p2c (default roundrobin)"),
	}
	t = append(t, serviceFields{name: &c.ServerName, version: &c.ServerVersion, id: &c.ServerID, address: &c.ServerAddress,
		advertise: &c.ServerAdvertise, metadata: &c.ServerMetadata, ttl: &c.RegisterTTL, interval: &c.RegisterInterval,
		timeout: &c.RequestTimeout}.settings()...)
	return optional(t)
}

// settings returns the settings that are a service's options too, bound to o's fields, so that
// a Service lays the command line and the environment straight over the options in code.
func (o *Options) settings() setting.Table {
	return optional(serviceFields{name: &o.Name, version: &o.Version, id: &o.ID, address: &o.Address,
		advertise: &o.Advertise, metadata: &o.Metadata, ttl: &o.RegisterTTL, interval: &o.RegisterInterval,
		timeout: &o.RequestTimeout}.settings())
}

// serviceFields are the variables of the settings that are both a Config's fields and a
// service's Options.
type serviceFields struct {
	name, version, id, address, advertise *string
	metadata                              *map[string]string
	ttl, interval, timeout                *time.Duration
}

func (f serviceFields) settings() setting.Table {
	positive := setting.MoreThan(time.Duration(0))
	return setting.Table{
		setting.String(f.name, "server-name", "service `name` the server registers"),
		setting.String(f.version, "server-version", "service `version` the server registers"),
		setting.String(f.id, "server-id", "node `id` (default: name and random hex)"),
		setting.String(f.address, "server-address", "`address` the server listens on (default 127.0.0.1:0)"),
		setting.String(f.advertise, "server-advertise", "`address` registered, when it differs from the listener's"),
		setting.Map(f.metadata, "server-metadata", "node metadata, `k=v` pairs comma-separated"),
		setting.Duration(f.ttl, "register-ttl", "registration TTL, a Go duration (default 30s)", positive),
		setting.Duration(f.interval, "register-interval", "registration refresh interval (default TTL/3)", positive),
		setting.Duration(f.timeout, "client-request-timeout", "bound on each call, retries included (default 5s)", positive),
	}
}

func optional(t setting.Table) setting.Table {
	for _, s := range t {
		s.Optional()
	}
	return t.Env(EnvPrefix)
}

// Setting describes one flag and its environment variable, for help texts and docs.
type Setting struct{ Flag, Env, Usage string }

// Settings lists every flag RegisterFlags adds, with its environment variable.
func Settings() []Setting {
	t := new(Config).Settings()
	out := make([]Setting, len(t))
	for i, s := range t {
		out[i] = Setting{Flag: s.Name(), Env: s.Env(), Usage: s.Usage()}
	}
	return out
}

// FlagValues holds what RegisterFlags' flags were set to on the command line.
type FlagValues struct {
	flags *setting.Flags
}

// RegisterFlags adds the --registry, --transport, --selector, --server-* ... flags (Settings) to
// fs and returns their values; after fs.Parse, Config reads them. A bad value fails fs.Parse.
// A flag given on the command line wins over its variable, and a flag left alone does not
// override code. The flags work with pflag.FlagSet.AddGoFlagSet too.
func RegisterFlags(fs *flag.FlagSet) *FlagValues {
	return &FlagValues{flags: new(Config).Settings().AddFlags(fs, setting.ParseNow)}
}

// Config returns what the flags set on the command line and the environment say, a flag given
// on the command line winning over its variable. lookupEnv is os.LookupEnv when nil; an empty
// variable counts as unset. fv may be nil: then only the environment is read.
func (fv *FlagValues) Config(lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	if err := fv.load(c.Settings(), lookupEnv); err != nil {
		return Config{}, err
	}
	return c, nil
}

// load sets t's variables from the environment and the command line.
func (fv *FlagValues) load(t setting.Table, lookupEnv func(string) (string, bool)) error {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	src := setting.Sources{Env: lookupEnv}
	if fv != nil {
		src.Flags = fv.flags
	}
	if err := t.Load(src); err != nil {
		return fmt.Errorf("micro: %w", err)
	}
	return nil
}

// FromEnv returns what the MICRO_* environment variables say (os.LookupEnv when lookupEnv is
// nil), for binaries without these flags.
func FromEnv(lookupEnv func(string) (string, bool)) (Config, error) {
	var fv *FlagValues
	return fv.Config(lookupEnv)
}
