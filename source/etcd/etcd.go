// Package etcd is the source of type etcd: a key prefix of etcd v3, read
// with Get and followed with Watch.
//
//	sources:
//	  - name: infra
//	    type: etcd
//	    endpoints: [127.0.0.1:2379]   # or http://..., https://...
//	    prefix: /infra/               # read this prefix ...
//	    mount: infra/                 # ... and mount it here (stripped)
//	    username: configd             # optional, with password
//	    password: ...
//	    tls: {ca_file: ..., cert_file: ..., key_file: ...}
//
// The prefix may start with '/', as etcd keys often do; the rest must be a
// valid key prefix. etcd key /infra/db/host becomes db/host (infra/db/host
// once mounted). Values are text/plain when UTF-8, else
// application/octet-stream; a value over Options.MaxValueSize or a key
// that is not a valid configd key is left out with a warning.
//
// # Reading
//
// The source Gets the prefix at revision R, emits it, then Watches the
// prefix from R+1, applying each batch of events (one etcd transaction or
// one watch response) to its copy and emitting the new snapshot. When the
// watch reports a compaction past the revision it needs, or fails in any
// other way, the source reads the prefix again and emits a fresh snapshot:
// the receiver diffs it, so nothing is missed. A quiet watch is checked
// every Config.ProbeInterval with a cheap count-only Get, so that a server
// that went away shows as degraded. The client is created in Run, so a
// server that is down at start (or refuses the credentials) makes the
// source degraded rather than failing configd's start; connection attempts
// back off with jitter, fast at first.
package etcd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/plugin"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/backoff"
	"github.com/configd/configd/source/internal/publish"
)

// Defaults of the Config fields set in code only.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultProbeInterval  = 5 * time.Second
)

// Config is the etcd source's own config: the fields of a sources: entry
// of type etcd. It is the plugin module source.etcd.
type Config struct {
	// Endpoints are the etcd client URLs or host:port pairs. Required.
	Endpoints []string `yaml:"endpoints" json:"endpoints,omitempty"`
	// Prefix is the etcd key prefix read, which may start with '/'; it is
	// stripped from the keys. "" reads every key.
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// Username and Password authenticate to etcd; both or neither.
	Username string `yaml:"username" json:"username,omitempty"`
	Password string `yaml:"password" json:"-"`
	// TLS turns on TLS to the server.
	TLS *source.TLSConfig `yaml:"tls" json:"tls,omitempty"`

	// RequestTimeout bounds one read that is not a watch, and a connection
	// attempt. Default DefaultRequestTimeout (5s). Set in code only, not in
	// a config file.
	RequestTimeout time.Duration `yaml:"-" json:"-"`
	// ProbeInterval is how often a quiet watch checks that the server
	// still answers, so that a server that went away shows as degraded.
	// Default DefaultProbeInterval (5s). Set in code only.
	ProbeInterval time.Duration `yaml:"-" json:"-"`
}

var _ source.TypeConfig = Config{}

// PluginInfo names the module: source.etcd.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: source.Namespace + ".etcd", New: func() plugin.Module { return new(Config) }}
}

// Validate checks the fields without reading the TLS files or contacting
// etcd.
func (c Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("endpoints is required (such as [127.0.0.1:2379])")
	}
	for _, e := range c.Endpoints {
		if e == "" || strings.ContainsAny(e, " \t\n") {
			return fmt.Errorf("endpoint %q: want host:port or a URL", e)
		}
	}
	if (c.Username == "") != (c.Password == "") {
		return errors.New("username and password go together")
	}
	if _, err := Prefix(c.Prefix); err != nil {
		return err
	}
	return c.TLS.Validate()
}

// NewSource returns an etcd source; source.New calls it. It reads the TLS
// files but does not contact etcd.
func (c Config) NewSource(cfg source.Config, opts ...source.Option) (source.Source, error) {
	prefix, err := Prefix(c.Prefix)
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	tlsCfg, err := c.TLS.ClientTLS()
	if err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.ProbeInterval = cmp.Or(c.ProbeInterval, DefaultProbeInterval)
	o := source.NewOptions(opts...)
	o.Logger = o.Logger.With("source", cfg.Name)
	cc := clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.RequestTimeout,
		Username:    c.Username,
		Password:    c.Password,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			// gRPC's default waits up to 2 minutes between attempts to
			// reconnect; a configuration source should be back within
			// MaxBackoff of its server.
			Backoff: grpcbackoff.Config{
				BaseDelay:  max(o.MinBackoff, 10*time.Millisecond),
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   max(o.MaxBackoff, o.MinBackoff),
			},
			MinConnectTimeout: c.RequestTimeout,
		})},
	}
	return &Source{cfg: cfg, own: c, opts: o, prefix: prefix, client: cc, pub: publish.New()}, nil
}

// Source reads an etcd prefix. Build it with source.New.
type Source struct {
	cfg    source.Config
	own    Config
	opts   source.Options
	prefix string
	client clientv3.Config
	pub    *publish.Publisher

	afterLoad func() // tests: runs between the Get and the Watch
}

var _ source.Source = (*Source)(nil)

// Prefix checks an etcd prefix and returns its canonical form: an optional
// leading '/', then a valid key prefix ending in '/'. "" reads every key,
// "/" every key that starts with '/'.
func Prefix(p string) (string, error) {
	lead := ""
	if strings.HasPrefix(p, "/") {
		lead, p = "/", p[1:]
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("prefix %q: %w: more than one leading '/'", lead+p, keyspace.ErrInvalidKey)
	}
	canon, err := keyspace.Prefix(p)
	if err != nil {
		return "", fmt.Errorf("prefix %q is not a valid key prefix (after an optional leading '/'): %w", lead+p, err)
	}
	return lead + canon, nil
}

// Name returns the source's name.
func (s *Source) Name() string { return s.cfg.Name }

// Status returns the source's status. Its Revision is the last etcd store
// revision seen.
func (s *Source) Status() source.Status { return s.pub.Status() }

// Close ends Run, which closes the client.
func (s *Source) Close() error {
	s.pub.Close()
	return nil
}

// errCompacted: the watch cannot continue from the revision it needs.
var errCompacted = errors.New("watched revision compacted")

// Run reads the prefix, follows it with a watch, and reads again after
// every failure, until ctx is done or Close is called.
func (s *Source) Run(ctx context.Context, emit func(source.Update)) error {
	ctx, cancel, err := s.pub.Start(ctx, emit)
	if err != nil {
		return err
	}
	defer cancel()
	bo := backoff.Backoff{Min: s.opts.MinBackoff, Max: s.opts.MaxBackoff}
	var client *clientv3.Client
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	fail := func(err error) bool {
		s.pub.Error(err)
		d := bo.Next()
		s.opts.Logger.Warn("etcd source: failed; keeping the last good snapshot", "err", err, "retry_in", d)
		return backoff.Sleep(ctx, d) == nil
	}
	for ctx.Err() == nil {
		if client == nil {
			cc := s.client
			cc.Context = ctx
			client, err = clientv3.New(cc)
			if err != nil {
				client = nil
				if ctx.Err() != nil || !fail(fmt.Errorf("etcd %s: connect: %w", s.endpoints(), err)) {
					break
				}
				continue
			}
		}
		kvs, rev, err := s.load(ctx, client)
		if err != nil {
			if ctx.Err() != nil || !fail(err) {
				break
			}
			continue
		}
		bo.Reset()
		if s.afterLoad != nil {
			s.afterLoad()
		}
		s.publish(kvs, rev)
		err = s.watch(ctx, client, kvs, rev)
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, errCompacted):
			s.opts.Logger.Info("etcd source: watch compacted; reading the prefix again", "err", err)
		default:
			if !fail(err) {
				return nil
			}
		}
	}
	return nil
}

func (s *Source) endpoints() string { return strings.Join(s.own.Endpoints, ",") }

// load Gets the whole prefix.
func (s *Source) load(ctx context.Context, client *clientv3.Client) (map[string][]byte, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.own.RequestTimeout)
	defer cancel()
	resp, err := client.Get(ctx, s.prefix, s.rangeOpts()...)
	if err != nil {
		return nil, 0, fmt.Errorf("etcd %s: get %q: %w", s.endpoints(), s.prefix, err)
	}
	kvs := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs[string(kv.Key)] = kv.Value
	}
	return kvs, resp.Header.Revision, nil
}

func (s *Source) rangeOpts(more ...clientv3.OpOption) []clientv3.OpOption {
	if s.prefix == "" {
		return append(more, clientv3.WithFromKey()) // every key: from "" on
	}
	return append(more, clientv3.WithPrefix())
}

// watch follows the prefix from rev+1, keeping kvs current and emitting a
// snapshot after every batch of events. It returns when the watch fails,
// is compacted, or a probe finds the server gone.
func (s *Source) watch(ctx context.Context, client *clientv3.Client, kvs map[string][]byte, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// Watch blocks until the server has registered the watch, which never
	// happens while the server is away: call it aside, and probe meanwhile.
	watchc := make(chan clientv3.WatchChan, 1)
	go func() {
		watchc <- client.Watch(wctx, s.prefix, s.rangeOpts(clientv3.WithRev(rev+1), clientv3.WithProgressNotify())...)
	}()
	var wch clientv3.WatchChan // nil until Watch returns
	probe := time.NewTicker(s.own.ProbeInterval)
	defer probe.Stop()
	heard := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case wch = <-watchc:
		case resp, ok := <-wch:
			if !ok {
				return fmt.Errorf("etcd %s: watch %q ended", s.endpoints(), s.prefix)
			}
			if resp.CompactRevision != 0 {
				return fmt.Errorf("%w: need revision %d, compacted up to %d", errCompacted, rev+1, resp.CompactRevision)
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("etcd %s: watch %q: %w", s.endpoints(), s.prefix, err)
			}
			heard = time.Now()
			if len(resp.Events) == 0 {
				if resp.Header.Revision > rev {
					rev = resp.Header.Revision
				}
				s.pub.Synced(rev)
				continue
			}
			for _, ev := range resp.Events {
				switch ev.Type {
				case clientv3.EventTypePut:
					kvs[string(ev.Kv.Key)] = ev.Kv.Value
				case clientv3.EventTypeDelete:
					delete(kvs, string(ev.Kv.Key))
				}
			}
			rev = resp.Header.Revision
			s.publish(kvs, rev)
		case <-probe.C:
			if time.Since(heard) < s.own.ProbeInterval {
				continue
			}
			pctx, pcancel := context.WithTimeout(ctx, s.own.RequestTimeout)
			resp, err := client.Get(pctx, s.prefix, s.rangeOpts(clientv3.WithCountOnly())...)
			pcancel()
			if err != nil {
				return fmt.Errorf("etcd %s: probe: %w", s.endpoints(), err)
			}
			heard = time.Now()
			s.pub.Synced(max(rev, resp.Header.Revision))
		}
	}
}

// publish emits the snapshot of kvs at rev, if it changed.
func (s *Source) publish(kvs map[string][]byte, rev int64) {
	snap, warnings := Snapshot(kvs, s.prefix, s.cfg.MountPrefix(), s.opts.MaxValueSize)
	if s.pub.Snapshot(snap, warnings, rev) {
		for _, w := range warnings {
			s.opts.Logger.Warn("etcd source: left out", "key", w.Where, "problem", w.Problem)
		}
	}
}

// Snapshot maps etcd keys and values read under prefix to the keys of a
// source mounted at mount, as the package documentation describes.
func Snapshot(kvs map[string][]byte, prefix, mount string, maxValueSize int) (map[string]source.Value, []source.Warning) {
	keys := make([]string, 0, len(kvs))
	for k := range kvs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b := source.NewBuilder(mount, maxValueSize)
	for _, k := range keys {
		v := kvs[k]
		ct := source.TypeText
		if !utf8.Valid(v) {
			ct = source.TypeBinary
		}
		if v == nil {
			v = []byte{}
		}
		b.Add(k, k[len(prefix):], source.Value{Data: v, ContentType: ct})
	}
	return b.Result()
}
