package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
)

// EnvAddress is the environment variable that names configd when no
// WithAddress option is given: one host:port, or several separated by
// commas to fail over between instances.
const EnvAddress = api.EnvAddr

// DefaultAddress is where configd is looked for when neither WithAddress
// nor CONFIGD_ADDR names it: api.DefaultAddr.
const DefaultAddress = api.DefaultAddr

// DefaultTimeout bounds how long New waits for its first copy of the
// configuration.
const DefaultTimeout = 5 * time.Second

// Option configures a Client (New) or the default client (Init).
type Option func(*options)

type options struct {
	addrs    []string
	prefix   string
	keys     []string // WithKeys, as full keys; nil: every key under prefix
	snapshot string
	timeout  time.Duration
	logger   *slog.Logger
	dial     []grpc.DialOption
	token    string
	tls      *tls.Config       // nil: plaintext
	grpc     bool              // watch over gRPC, see WithGRPC
	disc     *discovery        // WithRegistry, WithSelector (discovery.go)
	instance string            // WithInstance; "" until buildOptions
	labels   map[string]string // WithLabels
	noReport bool              // WithoutReports
}

// WithAddress names the configd instances to use, as host:port. The client
// talks to one at a time: when a connection fails or a stream breaks it
// moves to the next, round robin. All of them must serve the same store
// (the same revisions). Without this option the client reads CONFIGD_ADDR,
// and falls back to DefaultAddress.
func WithAddress(addrs ...string) Option {
	return func(o *options) { o.addrs = append(make([]string, 0, len(addrs)), addrs...) }
}

// WithPrefix makes the client mirror only the keys under prefix ("app" and
// "app/" are the same). Paths given to the client (Get, Watch) are then
// relative to it: with WithPrefix("app"), c.Get("db", "timeout") reads the
// key app/db/timeout. The default is the whole keyspace.
func WithPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// WithKeys makes the client mirror only the given keys (relative to
// WithPrefix, as every path given to the client): configd then sends it
// those keys and nothing else, and a token needs read on them only. Get
// and Watch take the same paths: with WithKeys("app/db/timeout"),
// c.Get("app/db/timeout") reads the key and c.Watch("app/db/timeout")
// watches it; other paths hold nothing. Without it the client mirrors
// every key under its prefix.
func WithKeys(keys ...string) Option {
	return func(o *options) { o.keys = append(make([]string, 0, len(keys)), keys...) }
}

// WithSnapshot makes the client keep its copy in the file at path, rewritten
// atomically after every change it applies. When configd can't be reached
// at start, New starts from that file and catches up in the background once
// configd answers. The file's directory must exist. When configd is
// reachable at start, the file is not read but refreshed; a corrupt file, or
// one written for another prefix, is then only logged and replaced.
func WithSnapshot(path string) Option { return func(o *options) { o.snapshot = path } }

// WithTimeout bounds how long New (and the first use of the default client)
// waits for configd to send the configuration: DefaultTimeout unless set.
// When it expires New starts from the snapshot file (WithSnapshot) if there
// is one, or fails with an error that wraps ErrUnavailable. It must be
// positive.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithLogger sets where the client reports reconnects, fallbacks to the
// snapshot file and refused files. The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithDialOptions adds options to every gRPC connection the client makes
// (with WithGRPC), after its own (transport credentials, keepalive), which
// they override.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// WithTLS makes the client talk to configd over TLS with cfg (server name,
// root CAs, and a client certificate for mutual TLS). See LoadTLS to build
// cfg from PEM files. Without it the client connects in plaintext, which
// is what a configd on loopback without TLS expects.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// buildOptions applies opts over the defaults and checks the result.
func buildOptions(opts []Option) (options, error) {
	o := options{timeout: DefaultTimeout, logger: slog.Default()}
	if env := os.Getenv(EnvAddress); env != "" {
		o.addrs = splitAddrs(env)
	}
	o.token = os.Getenv(EnvToken)
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.discover(); err != nil {
		return o, err
	}
	if o.addrs == nil {
		o.addrs = []string{DefaultAddress}
	}
	if len(o.addrs) == 0 {
		return o, errors.New("config: WithAddress needs at least one address")
	}
	var addrs []string
	for _, a := range o.addrs {
		if strings.TrimSpace(a) == "" {
			return o, fmt.Errorf("config: empty address in %q", o.addrs)
		}
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	o.addrs = addrs
	p, err := keyspace.Prefix(o.prefix)
	if err != nil {
		return o, fmt.Errorf("config: WithPrefix: %w", err)
	}
	o.prefix = p
	if o.keys != nil {
		if o.keys, err = scopeKeys(p, o.keys); err != nil {
			return o, err
		}
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("config: WithTimeout must be positive, got %v", o.timeout)
	}
	if o.logger == nil {
		return o, errors.New("config: WithLogger needs a logger")
	}
	if err := o.identify(); err != nil {
		return o, err
	}
	return o, nil
}

// scopeKeys returns the full keys of WithKeys's keys under prefix, sorted
// and without repeats.
func scopeKeys(prefix string, keys []string) ([]string, error) {
	if len(keys) == 0 {
		return nil, errors.New("config: WithKeys needs at least one key")
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		full := prefix + k
		if err := keyspace.Validate(full); err != nil {
			return nil, fmt.Errorf("config: WithKeys: %w", err)
		}
		out = append(out, full)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// filter is the watch filter of the client's scope, as configd takes it:
// its keys, or its prefix.
func (o *options) filter() (keys, prefixes []string) {
	if o.keys != nil {
		return o.keys, nil
	}
	return nil, []string{o.prefix}
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
