package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/sdk/go/micro"
	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/server/announce"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/setting"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/all"
)

// MaxMaxValueSize is the largest max_value_size a Config accepts: 256 MiB.
const MaxMaxValueSize = 256 << 20

// Config is the daemon's configuration. Every field is a setting with a
// flag (--data-dir), an environment variable (CONFIGD_DATA_DIR) and a key
// in the YAML config file (data_dir), declared once in Config.Settings;
// LoadConfig layers them.
type Config struct {
	// DataDir holds the database, configd.db; it is created (0700) when
	// missing. Default "./data".
	DataDir string
	// HTTPAddr is the address the HTTP API listens on; port 0 picks a free
	// port, which the "listening" log line reports. Default
	// api.DefaultAddr.
	HTTPAddr string
	// LogFormat is "text" (default) or "json".
	LogFormat string
	// LogLevel is "debug", "info" (default), "warn" or "error".
	LogLevel string
	// DebugAddr, when set, is the host:port of a separate listener serving
	// Go's pprof profiles under /debug/pprof/ (flag --debug-addr, env
	// CONFIGD_DEBUG_ADDR, config key debug_addr). Off by default; it has
	// no authentication, so keep it on loopback.
	DebugAddr string
	// ConsulAddr, when set, is the host:port of a listener serving the KV
	// part of Consul's HTTP API (package consulapi, docs/compat.md): the
	// consul CLI and Consul's clients read and write configd there (flag
	// --consul-addr, env CONFIGD_CONSUL_ADDR, config key consul_addr).
	// Off by default. It cannot share HTTPAddr: Consul's /v1/kv paths are
	// configd's own.
	ConsulAddr string
	// EtcdAPIPrefix, when set, is the key prefix of the etcd API (package
	// etcdapi): etcd's clients see configd's key K as EtcdAPIPrefix+K, so
	// that "/" serves the clients whose keys start with '/' (flag
	// --etcd-api-prefix, env CONFIGD_ETCD_API_PREFIX, config key
	// etcd_api_prefix). Default "": configd's keys as they are. Not one of
	// the replica's --etcd-* settings, which are about the etcd a replica
	// stores its log in.
	EtcdAPIPrefix string
	// MaxValueSize is the largest value, in bytes (default 1 MiB).
	MaxValueSize int
	// ShutdownTimeout bounds how long a shutdown waits for in-flight
	// requests before it closes their connections (default 10s).
	ShutdownTimeout time.Duration
	// Sources are the layers under (or around) the writable store, lowest
	// precedence first: the `sources:` list of the config file (see
	// configd.example.yaml). An entry of type "store" places the store
	// layer; without one it is on top. Only the config file sets them.
	Sources []source.Config
	// Auth turns authentication on (flag --auth, env CONFIGD_AUTH, config
	// key auth_enabled). It is on regardless when HTTPAddr is not a
	// loopback address; see AuthOn.
	Auth bool
	// BootstrapToken is the secret of the admin token created when
	// authentication is on and no token exists; empty: one is generated
	// and logged once. Only the environment sets it
	// (CONFIGD_BOOTSTRAP_TOKEN), so that it stays out of process lists and
	// config files.
	BootstrapToken string
	// BootstrapTokenFile names a file whose content (trimmed) is the
	// bootstrap token instead, e.g. a mounted secret (flag
	// --bootstrap-token-file, env CONFIGD_BOOTSTRAP_TOKEN_FILE, config key
	// auth.bootstrap_token_file). Setting both is an error.
	BootstrapTokenFile string
	// RateLimit is the requests per second each identity (token, or client
	// IP when authentication is off) may make; 0, the default, is no limit.
	// RateBurst is the burst (0: twice the rate). MaxWatchesPerIdentity
	// caps each identity's open watches (default 1000; 0: no cap). See
	// NewLimits.
	RateLimit             float64
	RateBurst             int
	MaxWatchesPerIdentity int
	// BodyReadTimeout bounds how long a client may take to send a
	// request's body (default 1m; 0: no bound; flag --body-read-timeout,
	// env CONFIGD_BODY_READ_TIMEOUT, config key body_read_timeout). See
	// WithBodyReadTimeout.
	BodyReadTimeout time.Duration
	// TLSCert and TLSKey are PEM files of the server's certificate (with
	// its chain) and key: set, configd serves HTTPS and gRPC over TLS on
	// its port, and nothing in clear text (flags --tls-cert, --tls-key,
	// env CONFIGD_TLS_CERT, CONFIGD_TLS_KEY, config keys tls.cert,
	// tls.key). Both or neither.
	TLSCert, TLSKey string
	// TLSClientCA is a PEM file of the CAs that sign client certificates:
	// set, configd requires and verifies a client certificate on every
	// connection (mutual TLS). It needs TLSCert (flag --tls-client-ca, env
	// CONFIGD_TLS_CLIENT_CA, config key tls.client_ca).
	TLSClientCA string
	// HistoryKeepRevisions and HistoryKeepAge are the history retention:
	// a revision is compacted away once it is outside the newest
	// HistoryKeepRevisions AND older than HistoryKeepAge, so both promises
	// hold; 0 puts no limit of that kind, and both 0 (the default) keep
	// history forever (flags --history-keep-revisions, --history-keep-age,
	// config keys history.keep_revisions, history.keep_age).
	HistoryKeepRevisions int
	HistoryKeepAge       time.Duration
	// Registry is where configd registers itself for clients to find it
	// (--registry, MICRO_REGISTRY, config section registry:, ...); off by
	// default. See RegistryConfig and docs/registry.md.
	Registry RegistryConfig
	// MasterKeyFile is a file holding the master key of secret keys: 32
	// bytes, raw or in base64, readable by its owner only (flag
	// --master-key-file, env CONFIGD_MASTER_KEY_FILE, config key
	// secrets.master_key_file). MasterKey is the key itself in base64, from
	// the environment only (CONFIGD_MASTER_KEY), so that it stays out of
	// process lists and config files. Without either, configd cannot write
	// secrets nor open a database that holds some. See docs/security.md.
	MasterKeyFile string
	MasterKey     string
	// Store is where the commit log lives: StoreSQLite (default), this data
	// dir alone, or StoreEtcd, a replica of a cluster whose log is in etcd
	// (flag --store, env CONFIGD_STORE, config key store; docs/ha.md).
	// Etcd says how a replica reaches etcd (--etcd-*, etcd: section).
	Store string
	Etcd  EtcdConfig
	// ReadWait bounds how long a read that names a revision it must see
	// (X-Configd-Rev, min_rev=) or asks to be linearizable waits for a
	// replica to catch up (default DefaultReadWait; flag --read-wait).
	ReadWait time.Duration
	// ClientExpiry is how long an SDK client that stopped reporting is
	// kept (delivery tracking; default api.DefaultClientExpiry; flag
	// --client-expiry).
	ClientExpiry time.Duration
}

// TLSOn reports whether configd serves TLS.
func (c Config) TLSOn() bool { return c.TLSCert != "" }

// AuthOn reports whether configd authenticates requests: when Auth is set,
// and always when HTTPAddr (or ConsulAddr, when set) is not a loopback
// address (a host name other than localhost, a non-loopback IP, or an
// empty host: every interface).
func (c Config) AuthOn() bool {
	return c.Auth || !isLoopbackAddr(c.HTTPAddr) || c.ConsulAddr != "" && !isLoopbackAddr(c.ConsulAddr)
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DBFile is the name of the database file in the data dir.
const DBFile = "configd.db"

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		DataDir:         "./data",
		HTTPAddr:        api.DefaultAddr,
		LogFormat:       "text",
		LogLevel:        "info",
		MaxValueSize:    api.DefaultMaxValueSize,
		ShutdownTimeout: 10 * time.Second,

		MaxWatchesPerIdentity: authz.DefaultMaxWatchesPerIdentity,
		BodyReadTimeout:       httpapi.DefaultBodyReadTimeout,

		Store:        StoreSQLite,
		Etcd:         EtcdConfig{Prefix: DefaultEtcdPrefix, Timeout: audit.DefaultEtcdTimeout, LeaseTTL: DefaultEtcdLeaseTTL, ForwardWrites: true},
		ReadWait:     DefaultReadWait,
		ClientExpiry: api.DefaultClientExpiry,
	}
}

// Validate says what is wrong with c, all in one line, or returns nil: the
// checks of each setting (Config.Settings) and those that relate them.
func (c Config) Validate() error { return c.Settings().Check() }

// ErrVersion is returned by LoadConfig when --version is given: the caller
// prints Version() and exits with success.
var ErrVersion = errors.New("version requested")

// EnvPrefix starts the name of every environment variable of configd's own
// settings; those it takes from micro keep their MICRO_ names.
const EnvPrefix = "CONFIGD_"

// LoadConfig builds the configuration from the command-line args (without
// the program name), the environment (through lookupEnv, e.g. os.LookupEnv)
// and the YAML file named by --config or CONFIGD_CONFIG. Precedence, from
// strongest: flag, environment, file, default. An environment variable
// that is set but empty counts as unset. The file is decoded strictly: an
// unknown key, a key given twice or a value of the wrong type is an error
// naming the file, the line, the key and what it wants. Usage and flag
// errors are printed to output. It returns flag.ErrHelp for -h and
// ErrVersion for --version.
func LoadConfig(args []string, lookupEnv func(string) (string, bool), output io.Writer) (Config, error) {
	cfg := DefaultConfig()
	settings := cfg.Settings()
	var path string
	configFile := setting.Table{setting.File(&path, "config", "YAML config file; see configd.example.yaml")}.Env(EnvPrefix)

	fs := flag.NewFlagSet("configd", flag.ContinueOnError)
	fs.SetOutput(output)
	flags := settings.AddFlags(fs, setting.ParseOnLoad)
	configFlag := configFile.AddFlags(fs, setting.ParseOnLoad)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: configd [flags]\n\nconfigd serves the configuration store over HTTP. Flags:\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nPrecedence: flag > environment > config file > default.\n"+
			"\nOffline commands, on a stopped configd's data dir (each takes -h):\n"+
			"  configd restore FILE             restore the data dir from a backup (configctl backup)\n"+
			"  configd rotate-master-key        re-wrap the secrets' data keys under a new master key\n"+
			"  configd rotate-data-keys         give the secrets of prefixes new data keys\n")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, notConfigdFlag(err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (configd takes only flags; see configd -h)", fs.Arg(0))
	}
	if *showVersion {
		return Config{}, ErrVersion
	}
	if err := configFile.Load(setting.Sources{Env: lookupEnv, Flags: configFlag}); err != nil {
		return Config{}, err
	}
	if err := settings.Load(setting.Sources{File: path, Env: lookupEnv, Flags: flags}); err != nil {
		return Config{}, err
	}
	if err := cfg.Registry.check(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration: registry: %w", err)
	}
	return cfg, cfg.Validate()
}

// Settings returns configd's settings bound to c's fields, each with its
// flag (--data-dir), environment variable (CONFIGD_DATA_DIR) and config
// file key (data_dir; tls.cert sits in the file's tls: section), then the
// settings of micro's that configd uses to register itself (--registry,
// MICRO_REGISTRY, registry.name, ...). LoadConfig lays the sources over c;
// Validate checks c with them.
func (c *Config) Settings() setting.Table {
	t := setting.Table{
		setting.String(&c.DataDir, "data-dir", "directory of the database, "+DBFile+" (created 0700 if missing)", checkDataDir).
			Expect("a directory"),
		setting.String(&c.HTTPAddr, "http-addr", "host:port the HTTP API listens on (port 0: any free port)", checkHTTPAddr).
			Expect("host:port"),
		setting.String(&c.LogFormat, "log-format", "log format: text or json", checkLogFormat).Expect("text or json"),
		setting.String(&c.LogLevel, "log-level", "log level: debug, info, warn or error", checkLogLevel).
			Expect("debug, info, warn or error"),
		setting.String(&c.DebugAddr, "debug-addr", "host:port of a separate listener for Go's pprof profiles (/debug/pprof/); empty: off. Keep it on loopback",
			checkOptionalAddr).Expect("host:port, or nothing"),
		setting.String(&c.ConsulAddr, "consul-addr", "host:port of a separate listener serving Consul's KV HTTP API (docs/compat.md); empty: off",
			checkOptionalAddr).Expect("host:port, or nothing"),
		setting.String(&c.EtcdAPIPrefix, "etcd-api-prefix", "key prefix of the etcd API: etcd's clients see configd's key K as this prefix followed by K, "+
			"and only keys that start with it (\"/\": etcd's usual \"/app/x\" is configd's app/x; docs/compat.md); empty: configd's keys as they are"),
		setting.Int(&c.MaxValueSize, "max-value-size", "largest value accepted, in bytes", checkMaxValueSize).
			Expect("a whole number of bytes"),
		setting.Duration(&c.ShutdownTimeout, "shutdown-timeout", "how long a shutdown waits for in-flight requests (e.g. 10s)", checkShutdownTimeout),
		setting.Bool(&c.Auth, "auth", "require bearer tokens (always on when --http-addr is not loopback)").WithKey("auth_enabled"),
		setting.String(&c.BootstrapToken, "bootstrap-token", "secret of the bootstrap admin token; from the environment only").
			NoFlag().NoFile(),
		setting.File(&c.BootstrapTokenFile, "bootstrap-token-file", "file holding the bootstrap admin token (content trimmed), instead of "+EnvPrefix+"BOOTSTRAP_TOKEN").
			WithKey("auth.bootstrap_token_file").Also(func() error { return checkBootstrapSources(c) }),
	}
	t = append(t, c.limitSettings()...) // limits_config.go
	t = append(t,
		setting.Int(&c.HistoryKeepRevisions, "history-keep-revisions",
			"keep at least this many newest revisions of history (0: no count limit; with --history-keep-age 0 too, keep forever)",
			setting.AtLeast(0)).WithKey("history.keep_revisions"),
		setting.Duration(&c.HistoryKeepAge, "history-keep-age",
			"keep at least this much history, e.g. 720h (0: no age limit; with --history-keep-revisions 0 too, keep forever)",
			setting.AtLeast(time.Duration(0))).WithKey("history.keep_age"),
		setting.File(&c.MasterKeyFile, "master-key-file", "file holding the master key of secret keys (32 bytes, raw or base64; mode 0600); "+
			"or the key in base64 in env "+EnvPrefix+"MASTER_KEY").
			WithKey("secrets.master_key_file").Also(func() error { return checkMasterKey(c) }),
		setting.String(&c.MasterKey, "master-key", "the master key of secret keys in base64; from the environment only").
			NoFlag().NoFile(),
		setting.File(&c.TLSCert, "tls-cert", "PEM file of the server certificate (and chain): serve HTTPS and gRPC over TLS; needs --tls-key").
			WithKey("tls.cert").Also(func() error { return checkTLSPair(c) }),
		setting.File(&c.TLSKey, "tls-key", "PEM file of the key of --tls-cert").WithKey("tls.key"),
		setting.File(&c.TLSClientCA, "tls-client-ca", "PEM file of the CAs of client certificates: require and verify one on every connection (mutual TLS); needs --tls-cert").
			WithKey("tls.client_ca").Also(func() error { return checkTLSClientCA(c) }),
	)
	t = append(t, c.replicaSettings()...) // replica_config.go
	t = append(t,
		setting.YAML(&c.Sources, "sources", "the layers under (or around) the store, lowest precedence first (configd.example.yaml)", decodeSources),
	)
	return append(t.Env(EnvPrefix).Keys(), c.Registry.settings()...)
}

// settings are the settings of micro's (micro.Config.Settings) that
// configd uses to register itself, with the keys of the config file's
// registry: section and what they mean for configd. Of the others, only
// --server-address is read, from the environment, to be refused (check):
// configd listens on --http-addr.
func (r *RegistryConfig) settings() setting.Table {
	m := r.Micro.Settings()
	return setting.Table{
		m.Lookup("registry").WithKey("registry.name").
			WithUsage("registry `name` configd registers itself in: " + strings.Join(catalog.Registries().Names(), ", ") + " (default none: configd does not register)"),
		m.Lookup("registry-address").WithKey("registry.address"),
		m.Lookup("registry-timeout").WithKey("registry.timeout").WithUsage("bound on each registry call (default " + announce.DefaultCallTimeout.String() + ")"),
		m.Lookup("server-name").WithKey("registry.service").WithUsage("service `name` configd registers (default " + ServiceName + ")"),
		m.Lookup("server-version").WithKey("registry.version").WithUsage("service `version` registered (default configd's version)"),
		m.Lookup("server-id").WithKey("registry.id").WithUsage("node `id` registered (default configd- and random hex)"),
		m.Lookup("server-advertise").WithKey("registry.advertise").
			WithUsage("host:port registered (default the --http-addr listener's, an interface address when it listens on all)"),
		m.Lookup("server-metadata").WithKey("registry.metadata"),
		m.Lookup("register-ttl").WithKey("registry.ttl"),
		m.Lookup("register-interval").WithKey("registry.interval"),
		m.Lookup("server-address").NoFlag(),
	}
}

// notConfigdFlag turns the error of fs.Parse about a flag of micro's that
// configd does not offer (--transport, --server-address, ...) into one that
// says why.
func notConfigdFlag(err error) error {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok || new(micro.Config).Settings().Lookup(name) == nil {
		return err
	}
	why := "configd serves no micro transport and calls no micro service"
	if name == "server-address" {
		why = "configd listens on --http-addr (--server-advertise sets the address it registers)"
	}
	return fmt.Errorf("--%s is a flag of micro services, not used by configd: %s", name, why)
}

// decodeSources decodes the `sources:` list (source.DecodeConfig with the
// types of source/all): a field an entry's type does not have, or a value
// of the wrong kind, is an error naming its line, the source and the field.
func decodeSources(v *yaml.Node) ([]source.Config, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: sources: want a list of sources", v.Line)
	}
	types := all.Types()
	var out []source.Config
	for _, item := range v.Content {
		c, err := decodeSource(item, types)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if _, err := layerOrder(out); err != nil {
		return nil, fmt.Errorf("line %d: %w", v.Line, err)
	}
	return out, nil
}

func checkTLSPair(c *Config) error {
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return errors.New("the certificate needs its key (--tls-key, " + EnvPrefix + "TLS_KEY, tls.key)")
	case c.TLSCert == "" && c.TLSKey != "":
		return errors.New("the key needs its certificate (--tls-cert, " + EnvPrefix + "TLS_CERT, tls.cert)")
	}
	return nil
}

func checkTLSClientCA(c *Config) error {
	if c.TLSClientCA != "" && c.TLSCert == "" {
		return errors.New("client certificates need TLS: set --tls-cert and --tls-key too")
	}
	return nil
}

func checkDataDir(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func checkHTTPAddr(s string) error {
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
		return fmt.Errorf("%q is not host:port (e.g. %s)", s, api.DefaultAddr)
	}
	return nil
}

func checkLogFormat(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("%q: want text or json", s)
	}
	return nil
}

func checkLogLevel(s string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("%q: want debug, info, warn or error", s)
	}
	return nil
}

func checkOptionalAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q: want host:port (or empty: off)", addr)
	}
	return nil
}

func checkMaxValueSize(n int) error {
	if n < 1 || n > MaxMaxValueSize {
		return fmt.Errorf("%d: want 1 to %d bytes", n, MaxMaxValueSize)
	}
	return nil
}

func checkShutdownTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s: want a positive duration", d)
	}
	return nil
}

// NewLogger returns a logger writing to w in format ("text" or "json") at
// level ("debug", "info", "warn", "error").
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
