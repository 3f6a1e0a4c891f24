package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/all"

	"github.com/configd/configd/audit"
)

// MaxMaxValueSize is the largest max_value_size a Config accepts: 256 MiB.
const MaxMaxValueSize = 256 << 20

// Config is the daemon's configuration. Every field is a setting with a
// flag (--data-dir), an environment variable (CONFIGD_DATA_DIR) and a key
// in the YAML config file (data_dir); LoadConfig layers them.
type Config struct {
	// DataDir holds the database, configd.db; it is created (0700) when
	// missing. Default "./data".
	DataDir string
	// HTTPAddr is the address the HTTP API listens on; port 0 picks a free
	// port, which the "listening" log line reports. Default
	// "127.0.0.1:7700".
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
}

// TLSOn reports whether configd serves TLS.
func (c Config) TLSOn() bool { return c.TLSCert != "" }

// AuthOn reports whether configd authenticates requests: when Auth is set,
// and always when HTTPAddr is not a loopback address (a host name other
// than localhost, a non-loopback IP, or an empty host: every interface).
func (c Config) AuthOn() bool {
	return c.Auth || !isLoopbackAddr(c.HTTPAddr)
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
		HTTPAddr:        "127.0.0.1:7700",
		LogFormat:       "text",
		LogLevel:        "info",
		MaxValueSize:    audit.DefaultMaxValueSize,
		ShutdownTimeout: 10 * time.Second,

		MaxWatchesPerIdentity: DefaultMaxWatchesPerIdentity,
		BodyReadTimeout:       DefaultBodyReadTimeout,
	}
}

// Validate says what is wrong with c, all in one line, or returns nil.
func (c Config) Validate() error {
	var errs []string
	for _, s := range settings {
		if err := s.check(&c); err != nil {
			errs = append(errs, s.key()+": "+err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New("invalid configuration: " + strings.Join(errs, "; "))
	}
	return nil
}

// ErrVersion is returned by LoadConfig when --version is given: the caller
// prints Version() and exits with success.
var ErrVersion = errors.New("version requested")

// EnvPrefix starts the name of every environment variable configd reads.
const EnvPrefix = "CONFIGD_"

// LoadConfig builds the configuration from the command-line args (without
// the program name), the environment (through lookupEnv, e.g. os.LookupEnv)
// and the YAML file named by --config or CONFIGD_CONFIG. Precedence, from
// strongest: flag, environment, file, default. An environment variable
// that is set but empty counts as unset. Usage and flag errors are printed
// to output. It returns flag.ErrHelp for -h and ErrVersion for --version.
func LoadConfig(args []string, lookupEnv func(string) (string, bool), output io.Writer) (Config, error) {
	def := DefaultConfig()
	fs := flag.NewFlagSet("configd", flag.ContinueOnError)
	fs.SetOutput(output)
	vals := make(map[string]*string, len(settings))
	for _, s := range settings {
		v := s.get(&def)
		vals[s.name] = &v
		fs.Var(&flagValue{s: &v, boolean: s.boolean}, s.name, fmt.Sprintf("%s\n(env %s, config key %s)", s.usage, s.env(), s.key()))
	}
	microFlags := addMicroFlags(fs) // --registry, ... and MICRO_* (registry.go)
	configPath := fs.String("config", "", "YAML config file; see configd.example.yaml\n(env "+EnvPrefix+"CONFIG)")
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
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (configd takes only flags; see configd -h)", fs.Arg(0))
	}
	if *showVersion {
		return Config{}, ErrVersion
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	cfg := def
	path := *configPath
	if !given["config"] {
		if v, ok := lookupEnv(EnvPrefix + "CONFIG"); ok && v != "" {
			path = v
		}
	}
	if path != "" {
		if err := applyConfigFile(&cfg, path); err != nil {
			return Config{}, err
		}
	}
	for _, s := range settings {
		if v, ok := lookupEnv(s.env()); ok && v != "" {
			if err := s.set(&cfg, v); err != nil {
				return Config{}, fmt.Errorf("environment %s: %w", s.env(), err)
			}
		}
	}
	for _, s := range settings {
		if given[s.name] {
			if err := s.set(&cfg, *vals[s.name]); err != nil {
				return Config{}, fmt.Errorf("flag --%s: %w", s.name, err)
			}
		}
	}
	if err := cfg.Registry.load(microFlags, lookupEnv); err != nil {
		return Config{}, err
	}
	if v, ok := lookupEnv(EnvPrefix + "BOOTSTRAP_TOKEN"); ok {
		cfg.BootstrapToken = v
	}
	if v, ok := lookupEnv(EnvPrefix + "MASTER_KEY"); ok {
		cfg.MasterKey = v
	}
	return cfg, cfg.Validate()
}

// applyConfigFile sets what the YAML file at path sets: a flat mapping of
// setting keys to scalars. Unknown keys are errors, so that a typo does not
// silently leave a default in place.
func applyConfigFile(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config file %s: %v", path, apierror.OneLine(err.Error()))
	}
	if len(doc.Content) == 0 {
		return nil // empty, or only comments
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: want a mapping of settings (key: value)", path, root.Line)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value == "registry" {
			if err := decodeRegistry(v, &cfg.Registry.Micro); err != nil {
				return fmt.Errorf("config file %s: %w", path, err)
			}
			continue
		}
		if k.Value == "sources" {
			if err := decodeSources(v, &cfg.Sources); err != nil {
				return fmt.Errorf("config file %s: %w", path, err)
			}
			continue
		}
		if section, ok := sections[k.Value]; ok {
			// A section (tls:) is a mapping of its own settings, whose
			// keys are section.key (tls.cert).
			if line, dup := seen[k.Value]; dup {
				return fmt.Errorf("config file %s: line %d: %s is already set on line %d", path, k.Line, k.Value, line)
			}
			seen[k.Value] = k.Line
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return fmt.Errorf("config file %s: line %d: %s: want a mapping (%s)", path, v.Line, k.Value, section)
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				if err := applyFileSetting(cfg, path, seen, v.Content[j], v.Content[j+1], k.Value+"."); err != nil {
					return err
				}
			}
			continue
		}
		if err := applyFileSetting(cfg, path, seen, k, v, ""); err != nil {
			return err
		}
	}
	return nil
}

// sections are the config file keys whose value is a mapping of settings,
// with the keys they hold, for messages.
var sections = map[string]string{"tls": "cert, key, client_ca", "history": "keep_revisions, keep_age", "auth": "bootstrap_token_file", "secrets": "master_key_file"}

// applyFileSetting sets the setting of key k (prefixed by section, e.g.
// "tls.") to the scalar v; seen holds the line of every key already set.
func applyFileSetting(cfg *Config, path string, seen map[string]int, k, v *yaml.Node, section string) error {
	key := section + k.Value
	s, ok := settingByKey(key)
	if !ok {
		return fmt.Errorf("config file %s: line %d: unknown key %q (known: %s)", path, k.Line, key, knownKeys())
	}
	if line, dup := seen[key]; dup {
		return fmt.Errorf("config file %s: line %d: %s is already set on line %d", path, k.Line, key, line)
	}
	seen[key] = k.Line
	if v.Kind != yaml.ScalarNode {
		return fmt.Errorf("config file %s: line %d: %s: want a single value", path, v.Line, key)
	}
	if err := s.set(cfg, v.Value); err != nil {
		return fmt.Errorf("config file %s: line %d: %s: %w", path, v.Line, key, err)
	}
	return nil
}

// decodeSources decodes the `sources:` list (source.DecodeConfig with the
// types of source/all): a field an entry's type does not have, or a value
// of the wrong kind, is an error naming its line, the source and the field.
func decodeSources(v *yaml.Node, out *[]source.Config) error {
	if v.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: sources: want a list of sources", v.Line)
	}
	types := all.Types()
	for _, item := range v.Content {
		c, err := decodeSource(item, types)
		if err != nil {
			return err
		}
		*out = append(*out, c)
	}
	if _, err := layerOrder(*out); err != nil {
		return fmt.Errorf("line %d: %w", v.Line, err)
	}
	return nil
}

// setting is one configuration setting: its flag name, and from it its
// file key (data-dir → data_dir) and environment variable
// (CONFIGD_DATA_DIR).
type setting struct {
	name  string
	usage string
	// fileKey, when set, is the config file key instead of the one
	// derived from name.
	fileKey string
	// boolean settings are flags that take no value (--auth).
	boolean bool
	get     func(*Config) string
	// set parses and checks v, then stores it.
	set   func(c *Config, v string) error
	check func(*Config) error
}

func (s setting) key() string {
	if s.fileKey != "" {
		return s.fileKey
	}
	return strings.ReplaceAll(s.name, "-", "_")
}

func (s setting) env() string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// flagValue is a setting's flag: the raw text, parsed by the setting's set
// once flags, environment and file are layered.
type flagValue struct {
	s       *string
	boolean bool
}

func (f *flagValue) String() string {
	if f.s == nil {
		return ""
	}
	return *f.s
}
func (f *flagValue) Set(v string) error { *f.s = v; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.boolean }

func settingByKey(k string) (setting, bool) {
	for _, s := range settings {
		if s.key() == k {
			return s, true
		}
	}
	return setting{}, false
}

func knownKeys() string {
	keys := make([]string, len(settings))
	for i, s := range settings {
		keys[i] = s.key()
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// stringSetting is a setting whose value is a string checked by check.
func stringSetting(name, usage string, field func(*Config) *string, check func(string) error) setting {
	return setting{
		name:  name,
		usage: usage,
		get:   func(c *Config) string { return *field(c) },
		set: func(c *Config, v string) error {
			if err := check(v); err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
		check: func(c *Config) error { return check(*field(c)) },
	}
}

var settings = []setting{
	stringSetting("data-dir", "directory of the database, "+DBFile+" (created 0700 if missing)",
		func(c *Config) *string { return &c.DataDir }, checkDataDir),
	stringSetting("http-addr", "host:port the HTTP API listens on (port 0: any free port)",
		func(c *Config) *string { return &c.HTTPAddr }, checkHTTPAddr),
	stringSetting("log-format", "log format: text or json",
		func(c *Config) *string { return &c.LogFormat }, checkLogFormat),
	stringSetting("log-level", "log level: debug, info, warn or error",
		func(c *Config) *string { return &c.LogLevel }, checkLogLevel),
	stringSetting("debug-addr", "host:port of a separate listener for Go's pprof profiles (/debug/pprof/); empty: off. Keep it on loopback",
		func(c *Config) *string { return &c.DebugAddr }, checkDebugAddr),
	{
		name:  "max-value-size",
		usage: "largest value accepted, in bytes",
		get:   func(c *Config) string { return strconv.Itoa(c.MaxValueSize) },
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a whole number of bytes", v)
			}
			if err := checkMaxValueSize(n); err != nil {
				return err
			}
			c.MaxValueSize = n
			return nil
		},
		check: func(c *Config) error { return checkMaxValueSize(c.MaxValueSize) },
	},
	{
		name:  "shutdown-timeout",
		usage: "how long a shutdown waits for in-flight requests (e.g. 10s)",
		get:   func(c *Config) string { return c.ShutdownTimeout.String() },
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a duration (e.g. 10s, 1m)", v)
			}
			if err := checkShutdownTimeout(d); err != nil {
				return err
			}
			c.ShutdownTimeout = d
			return nil
		},
		check: func(c *Config) error { return checkShutdownTimeout(c.ShutdownTimeout) },
	},
	{
		name:    "auth",
		fileKey: "auth_enabled",
		boolean: true,
		usage:   "require bearer tokens (always on when --http-addr is not loopback)",
		get:     func(c *Config) string { return strconv.FormatBool(c.Auth) },
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q: want true or false", v)
			}
			c.Auth = b
			return nil
		},
		check: func(*Config) error { return nil },
	},
	// Limits and the bootstrap token file: limits_config.go.
	bootstrapTokenFileSetting, rateLimitSetting, rateBurstSetting, maxWatchesSetting, bodyReadTimeoutSetting,
	{
		name:    "history-keep-revisions",
		fileKey: "history.keep_revisions",
		usage:   "keep at least this many newest revisions of history (0: no count limit; with --history-keep-age 0 too, keep forever)",
		get:     func(c *Config) string { return strconv.Itoa(c.HistoryKeepRevisions) },
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return fmt.Errorf("%q: want a whole number >= 0", v)
			}
			c.HistoryKeepRevisions = n
			return nil
		},
		check: func(c *Config) error {
			if c.HistoryKeepRevisions < 0 {
				return fmt.Errorf("%d: want a whole number >= 0", c.HistoryKeepRevisions)
			}
			return nil
		},
	},
	{
		name:    "history-keep-age",
		fileKey: "history.keep_age",
		usage:   "keep at least this much history, e.g. 720h (0: no age limit; with --history-keep-revisions 0 too, keep forever)",
		get:     func(c *Config) string { return c.HistoryKeepAge.String() },
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d < 0 {
				return fmt.Errorf("%q: want a duration >= 0 (e.g. 720h)", v)
			}
			c.HistoryKeepAge = d
			return nil
		},
		check: func(c *Config) error {
			if c.HistoryKeepAge < 0 {
				return fmt.Errorf("%v: want a duration >= 0", c.HistoryKeepAge)
			}
			return nil
		},
	},
	fileSetting("master-key-file", "secrets.master_key_file", "file holding the master key of secret keys (32 bytes, raw or base64; mode 0600); "+
		"or the key in base64 in env "+EnvPrefix+"MASTER_KEY",
		func(c *Config) *string { return &c.MasterKeyFile }, checkMasterKey),
	fileSetting("tls-cert", "tls.cert", "PEM file of the server certificate (and chain): serve HTTPS and gRPC over TLS; needs --tls-key",
		func(c *Config) *string { return &c.TLSCert }, checkTLSPair),
	fileSetting("tls-key", "tls.key", "PEM file of the key of --tls-cert",
		func(c *Config) *string { return &c.TLSKey }, func(*Config) error { return nil }),
	fileSetting("tls-client-ca", "tls.client_ca", "PEM file of the CAs of client certificates: require and verify one on every connection (mutual TLS); needs --tls-cert",
		func(c *Config) *string { return &c.TLSClientCA }, checkTLSClientCA),
}

// fileSetting is a setting naming a file (or nothing), whose config file
// key is fileKey, checked against the whole Config by check.
func fileSetting(name, fileKey, usage string, field func(*Config) *string, check func(*Config) error) setting {
	return setting{
		name:    name,
		fileKey: fileKey,
		usage:   usage,
		get:     func(c *Config) string { return *field(c) },
		set:     func(c *Config, v string) error { *field(c) = strings.TrimSpace(v); return nil },
		check:   check,
	}
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
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:7700)", s)
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

func checkDebugAddr(addr string) error {
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
