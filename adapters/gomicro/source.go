// Package configdsource is a go-micro v4 config/source.Source over configd:
// it reads the keys of a configd prefix through configd's Go SDK as one
// JSON document and follows their changes through the SDK's watch stream
// (pushed by configd, never polled).
//
//	src := configdsource.NewSource(configdsource.WithPrefix("/micro/config"),
//		configdsource.StripPrefix(true),
//		configdsource.WithClientOptions(config.WithAddress("configd:7700"), config.WithToken(tok)))
//	defer src.(*configdsource.Source).Close()
//	c, _ := microconfig.NewConfig()
//	err := c.Load(src)
//
// The document nests the keys by their '/' segments: micro/config/db/host
// is {"micro": {"config": {"db": {"host": ...}}}}, or {"db": {"host": ...}}
// with StripPrefix(true). A key's value is its decoded value: a JSON or
// YAML document is parsed into the tree, anything else is a string. A key
// that also has keys under it keeps its own value under "_value", as in
// configd's tree format.
package configdsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/adapters/internal/follow"
	"github.com/configd/configd/sdk/go/config"
	"go-micro.dev/v4/config/source"
)

// ErrReadOnly is Write's error: a Source only reads. Write keys through
// configd's API, its CLI, or the SDK client (Source.Client).
var ErrReadOnly = errors.New("configdsource: read-only source")

// Source is a go-micro source.Source over one configd prefix. It connects
// on its first Read and owns an SDK client from then on: Close it when
// done (NewSource returns it as a source.Source, so
// src.(*configdsource.Source).Close()).
type Source struct {
	prefix string // configd's prefix, no leading or trailing '/'
	strip  bool   // root the document at the prefix
	copts  []config.Option

	mu     sync.Mutex
	c      *config.Client
	closed bool

	rev atomic.Int64 // the revision last handed to go-micro
}

var _ source.Source = (*Source)(nil)

// NewSource returns a Source of the prefix (WithPrefix, default
// DefaultPrefix). It does not connect: Read does, and fails as the SDK's
// config.New does when no configd answers within the client's timeout.
func NewSource(opts ...source.Option) source.Source {
	o := source.NewOptions(opts...)
	ctx := contextOf(&o)
	prefix := DefaultPrefix
	if p, ok := ctx.Value(prefixKey{}).(string); ok {
		prefix = p
	}
	s := &Source{prefix: strings.Trim(prefix, "/")}
	s.strip, _ = ctx.Value(stripPrefixKey{}).(bool)
	s.copts, _ = ctx.Value(clientOptionsKey{}).([]config.Option)
	if s.prefix != "" {
		s.copts = append(append([]config.Option{}, s.copts...), config.WithPrefix(s.prefix))
	}
	return s
}

// client returns the Source's SDK client, connecting it on the first call
// that succeeds.
func (s *Source) client() (*config.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, config.ErrClosed
	}
	if s.c == nil {
		c, err := config.New(context.Background(), s.copts...)
		if err != nil {
			return nil, err
		}
		s.c = c
	}
	return s.c, nil
}

// Read returns the keys of the prefix as one JSON document.
func (s *Source) Read() (*source.ChangeSet, error) {
	c, err := s.client()
	if err != nil {
		return nil, fmt.Errorf("configdsource: read %q: %w", s.prefix, err)
	}
	if err := c.Err(); err != nil {
		return nil, fmt.Errorf("configdsource: read %q: %w", s.prefix, err)
	}
	return s.changeSet(c.Get())
}

// changeSet is the ChangeSet of v, the value of the client's whole scope,
// and records its revision as handed out.
func (s *Source) changeSet(v config.Value) (*source.ChangeSet, error) {
	var tree any = map[string]any{}
	if v.Exists() {
		if err := v.Scan(&tree); err != nil {
			return nil, fmt.Errorf("configdsource: read %q: %w", s.prefix, err)
		}
	}
	if !s.strip && s.prefix != "" {
		segs := strings.Split(s.prefix, "/")
		for i := len(segs) - 1; i >= 0; i-- {
			tree = map[string]any{segs[i]: tree}
		}
	}
	data, err := json.Marshal(tree) // map keys sorted: same keys, same bytes
	if err != nil {
		return nil, fmt.Errorf("configdsource: read %q: %w", s.prefix, err)
	}
	cs := &source.ChangeSet{Data: data, Format: "json", Source: s.String(), Timestamp: time.Now()}
	cs.Checksum = cs.Sum()
	for {
		old := s.rev.Load()
		if v.Rev() <= old || s.rev.CompareAndSwap(old, v.Rev()) {
			break
		}
	}
	return cs, nil
}

// Write returns ErrReadOnly.
func (s *Source) Write(*source.ChangeSet) error { return ErrReadOnly }

// String names the source in go-micro's errors.
func (s *Source) String() string { return "configd" }

// Watch returns a Watcher whose Next returns the whole prefix again after
// each change to it, the first one being any change since the last Read
// or Next.
func (s *Source) Watch() (source.Watcher, error) {
	c, err := s.client()
	if err != nil {
		return nil, fmt.Errorf("configdsource: watch %q: %w", s.prefix, err)
	}
	w, err := c.Watch()
	if err != nil {
		return nil, fmt.Errorf("configdsource: watch %q: %w", s.prefix, err)
	}
	return &watcher{s: s, f: follow.New(c, w, s.rev.Load())}, nil
}

// Client returns the SDK client the Source reads through (connecting it),
// for what go-micro has no word for: Validate, WaitRev, writes.
func (s *Source) Client() (*config.Client, error) { return s.client() }

// Close closes the Source's SDK client; its Watchers end, and Read and
// Watch fail with config.ErrClosed.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}

type watcher struct {
	s *Source
	f *follow.Watcher
}

var _ source.Watcher = (*watcher)(nil)

// Next blocks until configd pushes a change to the prefix and returns the
// whole prefix. A change made since the last Read or Next is returned at
// once. After Stop (or Close) it returns an error wrapping
// source.ErrWatcherStopped.
func (w *watcher) Next() (*source.ChangeSet, error) {
	u, err := w.f.Next()
	if follow.Ended(err) {
		return nil, fmt.Errorf("configdsource: %w (%w)", source.ErrWatcherStopped, err)
	}
	if err != nil {
		return nil, fmt.Errorf("configdsource: watch %q: %w", w.s.prefix, err)
	}
	return w.s.changeSet(u.Value)
}

// Stop ends the Watcher.
func (w *watcher) Stop() error {
	w.f.Stop()
	return nil
}
