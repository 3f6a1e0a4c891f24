// Package memory is a Source whose content the caller sets: an in-memory
// fake for tests of what consumes sources (configd's merge), following the
// same contract as the real sources.
//
//	src := memory.New("consul-fake")
//	src.Set(map[string]source.Value{"db/host": {Data: []byte("db1"), ContentType: source.TypeText}})
//	go merge.Run(ctx, src)
//	src.Fail(errors.New("consul down"))   // degraded: the merge keeps db/host
//	src.Set(nil)                          // healthy again, and empty: db/host goes
//
// It is not registered as a type: build it with New.
package memory

import (
	"context"
	"sync"

	"github.com/configd/configd/source"
	"github.com/configd/configd/source/internal/publish"
)

// Source is an in-memory source.
type Source struct {
	name string
	pub  *publish.Publisher

	mu      sync.Mutex
	pending []func()
	wake    chan struct{}
	rev     int64
}

var _ source.Source = (*Source)(nil)

// New returns a memory source named name.
func New(name string) *Source {
	return &Source{name: name, pub: publish.New(), wake: make(chan struct{}, 1)}
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Status returns the source's status; Revision counts calls of Set.
func (s *Source) Status() source.Status { return s.pub.Status() }

// Close ends Run.
func (s *Source) Close() error {
	s.pub.Close()
	return nil
}

// Set makes snap (nil is empty) the source's content, with warnings. Run
// emits it unless it equals the previous snapshot, as the real sources do.
// Calls before Run are emitted, in order, when Run starts. snap must not be
// modified afterwards.
func (s *Source) Set(snap map[string]source.Value, warnings ...source.Warning) {
	if snap == nil {
		snap = map[string]source.Value{}
	}
	s.push(func() {
		s.rev++
		s.pub.Snapshot(snap, warnings, s.rev)
	})
}

// Fail makes the source degraded with err; Run emits it.
func (s *Source) Fail(err error) {
	s.push(func() { s.pub.Error(err) })
}

func (s *Source) push(f func()) {
	s.mu.Lock()
	s.pending = append(s.pending, f)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run emits what Set and Fail give, in order, from its own goroutine,
// until ctx is done or Close is called.
func (s *Source) Run(ctx context.Context, emit func(source.Update)) error {
	ctx, cancel, err := s.pub.Start(ctx, emit)
	if err != nil {
		return err
	}
	defer cancel()
	for {
		s.mu.Lock()
		work := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, f := range work {
			f()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
	}
}
