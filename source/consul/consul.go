// Package consul is the source of type consul: a prefix of Consul's KV
// store, kept current with blocking queries.
//
//	sources:
//	  - name: shared
//	    type: consul
//	    address: 127.0.0.1:8500     # default; https://host:8501 or tls: for TLS
//	    prefix: micro/config/       # read this prefix ...
//	    mount: app/                 # ... and mount it here (the prefix is stripped)
//	    token: ...                  # ACL token; default $CONSUL_HTTP_TOKEN
//	    tls: {ca_file: ..., cert_file: ..., key_file: ..., server_name: ...}
//
// Consul key micro/config/db/host becomes db/host (app/db/host once
// mounted). Keys that end in '/' with no value are Consul's folders and are
// skipped. Values are text/plain when they are UTF-8, else
// application/octet-stream; a value over Options.MaxValueSize (1 MiB by
// default) or a key that is not a valid configd key is left out and
// reported in the update's warnings, the rest applied.
//
// # Reading
//
// The first read, and every read after an error, is an ordinary query with
// ?consistent, so that a server that has just restarted answers only once
// it has caught up: a partial answer would delete keys. Then each query
// blocks (index, wait) until the prefix changes. The index rules of
// Consul's documentation apply: an index that goes backwards (a restored
// snapshot, a new cluster) resets to 0, so the next read is a fresh full
// read; an index of 0 is taken as 1; queries that return at once without
// progress are spaced out. A snapshot restore does not wake a blocking
// query (Consul keeps waiting for an index above the old one), so it shows
// when the query's wait time (Config.WaitTime, 1m) is over, or at the
// next write under the prefix. Errors are retried with jittered exponential
// backoff, fast at first (Options.MinBackoff, MaxBackoff); while they last
// the source is degraded and configd keeps its last good snapshot.
package consul

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/consul/api"

	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/plugin"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/backoff"
	"github.com/configd/configd/source/internal/publish"
)

// DefaultAddress is the Consul agent's HTTP address when Config.Address is
// empty.
const DefaultAddress = "127.0.0.1:8500"

// Defaults of the Config fields set in code only.
const (
	DefaultWaitTime       = time.Minute
	DefaultRequestTimeout = 5 * time.Second
)

// Config is the Consul source's own config: the fields of a sources: entry
// of type consul. It is the plugin module source.consul.
type Config struct {
	// Address is host:port of the Consul HTTP API, optionally with a
	// scheme: http://, https:// (implied by TLS). Default DefaultAddress.
	Address string `yaml:"address" json:"address,omitempty"`
	// Prefix is the Consul KV prefix read; it is stripped from the keys.
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// Datacenter to read from; empty is the agent's own.
	Datacenter string `yaml:"datacenter" json:"datacenter,omitempty"`
	// Token is the ACL token. When empty, Consul's usual
	// CONSUL_HTTP_TOKEN environment variable applies.
	Token string `yaml:"token" json:"-"`
	// TLS turns on TLS to the server.
	TLS *source.TLSConfig `yaml:"tls" json:"tls,omitempty"`

	// WaitTime is how long one blocking query waits for a change. It also
	// bounds how long a Consul snapshot restore, which does not wake
	// blocking queries, takes to show (unless a write under the prefix
	// comes first). Default DefaultWaitTime (1m); Consul's own maximum is
	// 10m. Set in code only, not in a config file.
	WaitTime time.Duration `yaml:"-" json:"-"`
	// RequestTimeout bounds one read that is not a blocking query.
	// Default DefaultRequestTimeout (5s). Set in code only.
	RequestTimeout time.Duration `yaml:"-" json:"-"`
}

var _ source.TypeConfig = Config{}

// PluginInfo names the module: source.consul.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: source.Namespace + ".consul", New: func() plugin.Module { return new(Config) }}
}

// Validate checks the fields without reading the TLS files or contacting
// Consul.
func (c Config) Validate() error {
	if strings.HasPrefix(c.Prefix, "/") {
		return fmt.Errorf("prefix %q: Consul keys do not start with '/'", c.Prefix)
	}
	if _, err := keyspace.Prefix(c.Prefix); err != nil {
		return fmt.Errorf("prefix %q is not a valid key prefix: %w", c.Prefix, err)
	}
	if _, _, err := c.endpoint(); err != nil {
		return err
	}
	return c.TLS.Validate()
}

// endpoint returns the scheme and host:port of the Consul HTTP API.
func (c Config) endpoint() (scheme, addr string, err error) {
	scheme, addr = "http", cmp.Or(c.Address, DefaultAddress)
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return "", "", fmt.Errorf("address %q: want host:port, http://host:port or https://host:port", c.Address)
		}
		scheme, addr = u.Scheme, u.Host
	}
	if c.TLS != nil {
		scheme = "https"
	}
	return scheme, addr, nil
}

// NewSource returns a Consul source; source.New calls it. It reads the TLS
// files and builds the client but does not contact Consul.
func (c Config) NewSource(cfg source.Config, opts ...source.Option) (source.Source, error) {
	ac := api.DefaultConfig()
	var err error
	if ac.Scheme, ac.Address, err = c.endpoint(); err != nil {
		return nil, cfg.Errorf("%w", err)
	}
	if c.TLS != nil {
		ac.TLSConfig = api.TLSConfig{
			Address:            c.TLS.ServerName,
			CAFile:             c.TLS.CAFile,
			CertFile:           c.TLS.CertFile,
			KeyFile:            c.TLS.KeyFile,
			InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		}
		if _, err := c.TLS.ClientTLS(); err != nil { // the files exist and parse
			return nil, cfg.Errorf("%w", err)
		}
	}
	if c.Token != "" {
		ac.Token = c.Token
	}
	ac.Datacenter = c.Datacenter
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, cfg.Errorf("consul client: %w", err)
	}
	prefix, _ := keyspace.Prefix(c.Prefix) // checked by Validate
	c.WaitTime = cmp.Or(c.WaitTime, DefaultWaitTime)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	o := source.NewOptions(opts...)
	o.Logger = o.Logger.With("source", cfg.Name)
	tr := ac.Transport
	return &Source{cfg: cfg, own: c, opts: o, prefix: prefix, client: client, pub: publish.New(),
		addr: ac.Scheme + "://" + ac.Address, idle: tr.CloseIdleConnections}, nil
}

// Source reads a Consul KV prefix. Build it with source.New.
type Source struct {
	cfg    source.Config
	own    Config
	opts   source.Options
	prefix string
	client *api.Client
	addr   string // scheme://host:port, for messages
	idle   func() // closes idle connections
	pub    *publish.Publisher
}

var _ source.Source = (*Source)(nil)

// Name returns the source's name.
func (s *Source) Name() string { return s.cfg.Name }

// Status returns the source's status. Its Revision is the last
// X-Consul-Index seen.
func (s *Source) Status() source.Status { return s.pub.Status() }

// Close ends Run. The HTTP client's idle connections are closed when Run
// returns.
func (s *Source) Close() error {
	s.pub.Close()
	return nil
}

// minQueryGap spaces out blocking queries that return without progress,
// as Consul's documentation asks of clients.
const minQueryGap = 100 * time.Millisecond

// Run reads the prefix and follows it with blocking queries until ctx is
// done or Close is called.
func (s *Source) Run(ctx context.Context, emit func(source.Update)) error {
	ctx, cancel, err := s.pub.Start(ctx, emit)
	if err != nil {
		return err
	}
	defer cancel()
	defer s.idle()

	bo := backoff.Backoff{Min: s.opts.MinBackoff, Max: s.opts.MaxBackoff}
	var index uint64
	for ctx.Err() == nil {
		start := time.Now()
		pairs, lastIndex, err := s.list(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			index = 0 // the next read is a fresh, consistent one
			s.pub.Error(err)
			d := bo.Next()
			s.opts.Logger.Warn("consul source: read failed; keeping the last good snapshot", "err", err, "retry_in", d)
			if backoff.Sleep(ctx, d) != nil {
				break
			}
			continue
		}
		bo.Reset()
		if lastIndex == 0 {
			lastIndex = 1 // Consul's docs: an index below 1 is a bug; never block on 0
		}
		switch {
		case index != 0 && lastIndex == index:
			// Wait time over, nothing changed.
			s.pub.Synced(int64(lastIndex))
			if time.Since(start) < minQueryGap {
				if backoff.Sleep(ctx, minQueryGap) != nil {
					return nil
				}
			}
			continue
		case lastIndex < index:
			// Went backwards: take this answer, then start again from 0.
			s.opts.Logger.Info("consul source: index went backwards; resetting", "from", index, "to", lastIndex)
			s.publish(pairs, lastIndex)
			index = 0
			continue
		}
		s.publish(pairs, lastIndex)
		index = lastIndex
	}
	return nil
}

// list reads the prefix: at once when index is 0 (consistent), else
// blocking until the index passes index or the wait time is over.
func (s *Source) list(ctx context.Context, index uint64) (api.KVPairs, uint64, error) {
	q := &api.QueryOptions{}
	timeout := s.own.RequestTimeout
	if index == 0 {
		q.RequireConsistent = true
	} else {
		q.WaitIndex = index
		q.WaitTime = s.own.WaitTime
		// Consul adds up to wait/16 of jitter to the wait.
		timeout += s.own.WaitTime + s.own.WaitTime/16
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pairs, meta, err := s.client.KV().List(s.prefix, q.WithContext(ctx))
	if err != nil {
		return nil, 0, fmt.Errorf("consul %s: list %q: %w", s.addr, s.prefix, err)
	}
	if meta == nil {
		return nil, 0, errors.New("consul: list: no query metadata")
	}
	return pairs, meta.LastIndex, nil
}

// publish turns the pairs into a snapshot and emits it if it changed.
func (s *Source) publish(pairs api.KVPairs, index uint64) {
	snap, warnings := Snapshot(pairs, s.prefix, s.cfg.MountPrefix(), s.opts.MaxValueSize)
	if s.pub.Snapshot(snap, warnings, int64(index)) {
		for _, w := range warnings {
			s.opts.Logger.Warn("consul source: left out", "key", w.Where, "problem", w.Problem)
		}
	}
}

// Snapshot maps Consul KV pairs read under prefix to the keys of a source
// mounted at mount, as the package documentation describes.
func Snapshot(pairs api.KVPairs, prefix, mount string, maxValueSize int) (map[string]source.Value, []source.Warning) {
	b := source.NewBuilder(mount, maxValueSize)
	for _, p := range pairs {
		if p == nil || !strings.HasPrefix(p.Key, prefix) {
			continue
		}
		rel := p.Key[len(prefix):]
		if strings.HasSuffix(p.Key, "/") && len(p.Value) == 0 {
			continue // a folder
		}
		ct := source.TypeText
		if !utf8.Valid(p.Value) {
			ct = source.TypeBinary
		}
		data := p.Value
		if data == nil {
			data = []byte{}
		}
		b.Add(p.Key, rel, source.Value{Data: data, ContentType: ct})
	}
	return b.Result()
}
