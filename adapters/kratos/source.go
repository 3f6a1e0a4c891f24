// Package kratos is a Kratos config.Source over configd: it loads the keys
// of a configd prefix through configd's Go SDK and follows their changes
// through the SDK's watch stream (pushed by configd, never polled).
//
//	src, err := kratos.New(ctx, kratos.WithPrefix("app"),
//		kratos.WithClientOptions(config.WithAddress("configd:7700"), config.WithToken(tok)))
//	c := kconfig.New(kconfig.WithSource(src))
//	defer src.Close()
//
// Each configd key becomes one KeyValue: Key is the key relative to the
// prefix (or the whole key, WithFullKeys), Value its bytes, and Format
// "json" or "yaml" for a JSON or YAML document holding an object, which
// Kratos's decoder merges at the config's root as it does a file's. Any
// other value (text, bytes, a JSON scalar or list) has Format "", which
// Kratos stores as it is under its Key.
package kratos

import (
	"context"
	"fmt"
	"path"
	"strings"
	"sync/atomic"

	"github.com/configd/configd/adapters/internal/follow"
	"github.com/configd/configd/adapters/internal/keys"
	"github.com/configd/configd/sdk/go/config"
	kconfig "github.com/go-kratos/kratos/v2/config"
	"github.com/go-kratos/kratos/v2/encoding"
)

// Option configures a Source.
type Option func(*options)

type options struct {
	prefix   string
	fullKeys bool
	client   []config.Option
}

// WithPrefix makes the Source load and watch the keys under prefix only.
func WithPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// WithFullKeys keeps the prefix in each KeyValue's Key (by default Key is
// relative to the prefix).
func WithFullKeys() Option { return func(o *options) { o.fullKeys = true } }

// WithClientOptions passes options to the SDK client the Source reads
// through: its address, token, TLS, timeout, snapshot file.
func WithClientOptions(opts ...config.Option) Option {
	return func(o *options) { o.client = append(o.client, opts...) }
}

// Source is a Kratos config.Source over one configd prefix. Close it when
// done: it owns an SDK client.
type Source struct {
	c      *config.Client
	prefix string       // prepended to keys, "" when they stay relative
	loaded atomic.Int64 // the revision the last Load read
}

var _ kconfig.Source = (*Source)(nil)

// New connects to configd through the SDK (config.New) and returns a
// Source of the prefix. It fails as config.New does: when no configd
// answers within the client's timeout and no snapshot file serves.
func New(ctx context.Context, opts ...Option) (*Source, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	prefix := strings.Trim(o.prefix, "/")
	copts := append([]config.Option{}, o.client...)
	if prefix != "" {
		copts = append(copts, config.WithPrefix(prefix))
	}
	c, err := config.New(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("kratos: configd source: %w", err)
	}
	s := &Source{c: c}
	if o.fullKeys {
		s.prefix = prefix
	}
	return s, nil
}

// Load returns every key of the Source's prefix, in key order.
func (s *Source) Load() ([]*kconfig.KeyValue, error) {
	if err := s.c.Err(); err != nil {
		return nil, fmt.Errorf("kratos: configd source: %w", err)
	}
	v := s.c.Get()
	s.loaded.Store(v.Rev())
	return s.keyValues(v)
}

// keyValues lists the keys of v, the value of the client's whole scope.
func (s *Source) keyValues(v config.Value) ([]*kconfig.KeyValue, error) {
	var kvs []*kconfig.KeyValue
	err := keys.Each(v, func(key string, kv config.Value) {
		if s.prefix != "" {
			key = path.Join(s.prefix, key)
		}
		kvs = append(kvs, &kconfig.KeyValue{Key: key, Value: kv.Bytes(), Format: format(kv)})
	})
	if err != nil {
		return nil, fmt.Errorf("kratos: configd source: %w", err)
	}
	return kvs, nil
}

// format is the Kratos codec name for a value Kratos can merge as a
// document (an object in JSON or YAML), else "".
func format(v config.Value) string {
	var name string
	switch v.ContentType() {
	case "application/json":
		name = "json"
	case "application/yaml":
		name = "yaml"
	default:
		return ""
	}
	var m map[string]any
	if err := encoding.GetCodec(name).Unmarshal(v.Bytes(), &m); err != nil || m == nil {
		return ""
	}
	return name
}

// Watch returns a Watcher whose Next returns the whole prefix again after
// each change to it, the first one being any change since the last Load.
func (s *Source) Watch() (kconfig.Watcher, error) {
	w, err := s.c.Watch()
	if err != nil {
		return nil, fmt.Errorf("kratos: configd source: %w", err)
	}
	return &watcher{s: s, f: follow.New(s.c, w, s.loaded.Load())}, nil
}

// Client returns the SDK client the Source reads through, for what Kratos
// has no word for: Validate, WaitRev, writes.
func (s *Source) Client() *config.Client { return s.c }

// Close closes the Source's SDK client; its Watchers end.
func (s *Source) Close() error { return s.c.Close() }

type watcher struct {
	s *Source
	f *follow.Watcher
}

var _ kconfig.Watcher = (*watcher)(nil)

// Next blocks until the prefix changes and returns all its keys. A change
// made between Load and Watch is returned at once. After Stop it returns
// an error wrapping context.Canceled, which ends Kratos's watch loop.
func (w *watcher) Next() ([]*kconfig.KeyValue, error) {
	u, err := w.f.Next()
	if follow.Ended(err) {
		return nil, fmt.Errorf("kratos: configd source: %w (%w)", context.Canceled, err)
	}
	if err != nil {
		return nil, fmt.Errorf("kratos: configd source: %w", err)
	}
	return w.s.keyValues(u.Value)
}

// Stop ends the Watcher.
func (w *watcher) Stop() error {
	w.f.Stop()
	return nil
}
