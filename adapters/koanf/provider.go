// Package koanf is a koanf Provider over configd: it reads the keys of a
// configd prefix through configd's Go SDK as koanf's nested map, and,
// like koanf's file and consul providers, calls back on a change, pushed
// by configd through the SDK's watch stream (never polled).
//
//	p, err := koanf.New(ctx, koanf.WithPrefix("app"),
//		koanf.WithClientOptions(config.WithAddress("configd:7700"), config.WithToken(tok)))
//	k := kv2.New(".")
//	err = k.Load(p, nil)
//	p.Watch(func(event any, err error) { ... k.Load(p, nil) again ... })
//
// A key's "/" segments nest (app/db/host is db → host, which koanf reads
// as "db.host" with its "." delimiter). A JSON value is parsed into the
// tree (WithRawJSON keeps it as its text); any other value is its text. A
// key that also has keys under it puts its own value in the member
// "_value", as the SDK's Scan does.
package koanf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/configd/configd/adapters/internal/follow"
	"github.com/configd/configd/adapters/internal/keys"
	"github.com/configd/configd/sdk/go/config"
	kv2 "github.com/knadh/koanf/v2"
)

// Option configures a Provider.
type Option func(*options)

type options struct {
	prefix  string
	rawJSON bool
	client  []config.Option
}

// WithPrefix makes the Provider read and watch the keys under prefix
// only, relative to it.
func WithPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// WithRawJSON keeps JSON values as their text instead of parsing them into
// the tree.
func WithRawJSON() Option { return func(o *options) { o.rawJSON = true } }

// WithClientOptions passes options to the SDK client the Provider reads
// through: its address, token, TLS, timeout, snapshot file.
func WithClientOptions(opts ...config.Option) Option {
	return func(o *options) { o.client = append(o.client, opts...) }
}

// ownValue is the member that holds the value of a key with keys under it.
const ownValue = "_value"

// Provider is a koanf Provider over one configd prefix. Close it when
// done: it owns an SDK client.
type Provider struct {
	c       *config.Client
	rawJSON bool
	read    atomic.Int64 // the revision the last Read read

	mu      sync.Mutex
	watcher *config.Watcher // while watching
}

var _ kv2.Provider = (*Provider)(nil)

// New connects to configd through the SDK (config.New) and returns a
// Provider of the prefix. It fails as config.New does: when no configd
// answers within the client's timeout and no snapshot file serves.
func New(ctx context.Context, opts ...Option) (*Provider, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	copts := append([]config.Option{}, o.client...)
	if prefix := strings.Trim(o.prefix, "/"); prefix != "" {
		copts = append(copts, config.WithPrefix(prefix))
	}
	c, err := config.New(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("koanf: configd provider: %w", err)
	}
	return &Provider{c: c, rawJSON: o.rawJSON}, nil
}

// Read returns the prefix's keys as a nested map.
func (p *Provider) Read() (map[string]any, error) {
	if err := p.c.Err(); err != nil {
		return nil, fmt.Errorf("koanf: configd provider: %w", err)
	}
	v := p.c.Get()
	p.read.Store(v.Rev())
	return p.tree(v)
}

// ReadBytes returns Read's map as JSON, for koanf's json parser.
func (p *Provider) ReadBytes() ([]byte, error) {
	m, err := p.Read()
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// tree nests the keys of v by their segments.
func (p *Provider) tree(v config.Value) (map[string]any, error) {
	type leaf struct {
		segs []string
		val  any
	}
	var leaves []leaf
	prefixes := map[string]bool{}
	var bad error
	err := keys.Each(v, func(key string, kv config.Value) {
		segs := strings.Split(key, "/")
		for i := 1; i < len(segs); i++ {
			prefixes[strings.Join(segs[:i], "/")] = true
		}
		val, err := p.value(kv)
		if err != nil && bad == nil {
			bad = fmt.Errorf("koanf: configd provider: key %s: %w", key, err)
		}
		leaves = append(leaves, leaf{segs, val})
	})
	if err != nil {
		return nil, fmt.Errorf("koanf: configd provider: %w", err)
	}
	if bad != nil {
		return nil, bad
	}
	root := map[string]any{}
	for _, l := range leaves {
		segs := l.segs
		if prefixes[strings.Join(segs, "/")] {
			segs = append(segs, ownValue)
		}
		m := root
		for _, s := range segs[:len(segs)-1] {
			sub, ok := m[s].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[s] = sub
			}
			m = sub
		}
		m[segs[len(segs)-1]] = l.val
	}
	return root, nil
}

// value is what a key holds in the tree.
func (p *Provider) value(v config.Value) (any, error) {
	raw := v.Bytes()
	if p.rawJSON || v.ContentType() != "application/json" {
		return string(raw), nil
	}
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		return nil, err
	}
	return x, nil
}

// Watch calls cb after each change to the prefix, with the SDK's
// config.Update as event and a nil error, the first time at once when the
// prefix changed since the last Read. When configd refuses the client's
// token the watch ends with cb(nil, err). Reload in cb (k.Load(p, nil)).
// Only one watch runs at a time; Unwatch ends it.
func (p *Provider) Watch(cb func(event any, err error)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watcher != nil {
		return errors.New("koanf: configd provider: already watching")
	}
	w, err := p.c.Watch()
	if err != nil {
		return fmt.Errorf("koanf: configd provider: %w", err)
	}
	p.watcher = w
	go p.follow(follow.New(p.c, w, p.read.Load()), cb)
	return nil
}

func (p *Provider) follow(w *follow.Watcher, cb func(event any, err error)) {
	for {
		u, err := w.Next()
		if follow.Ended(err) {
			return
		}
		if err != nil {
			cb(nil, fmt.Errorf("koanf: configd provider: %w", err))
			return
		}
		cb(u, nil)
	}
}

// Unwatch ends the watch Watch started.
func (p *Provider) Unwatch() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watcher != nil {
		p.watcher.Stop()
		p.watcher = nil
	}
	return nil
}

// Client returns the SDK client the Provider reads through, for what
// koanf has no word for: Validate, WaitRev, writes.
func (p *Provider) Client() *config.Client { return p.c }

// Close closes the Provider's SDK client, which ends its watch.
func (p *Provider) Close() error { return p.c.Close() }
