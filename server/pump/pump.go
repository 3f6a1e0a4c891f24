// Package pump runs the sources configured under the store (files,
// environment, Consul, etcd) and pumps each snapshot a source delivers
// into the store, which records it as one revision of the source's layer
// by "source:<name>". It keeps each source's status for the API
// (Statuses) and records changes in a source's health in the audit trail.
// In a cluster of replicas (WithLeadership), each source runs on one
// replica at a time.
package pump

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/source"
)

// StoreType is the type of the `sources:` entry that places configd's own
// writable layer (what configctl set writes) among the sources. Without one
// the store layer is on top of every source.
const StoreType = "store"

// Store is what the pump writes to and reads from: audit.Store.
type Store interface {
	// Layers are the store's layers, lowest precedence first.
	Layers() []string
	MaxValueSize() int
	ApplySource(ctx context.Context, name string, snap map[string]audit.LayerValue, opts ...audit.SourceOption) (audit.Revision, error)
	RecordSourceEvent(ctx context.Context, e audit.SourceEvent) error
	// Sync waits until the store has applied every revision committed
	// anywhere in its cluster (at once for a store of its own).
	Sync(ctx context.Context) (int64, error)
}

var _ Store = (*audit.Store)(nil)

// Pump runs the configured sources and hands each snapshot to the store,
// which records it as a revision by "source:<name>". It is safe for
// concurrent use.
type Pump struct {
	st     Store
	logger *slog.Logger
	order  []string

	lead Leadership // nil: this replica syncs every source
	stop context.CancelFunc

	mu     sync.Mutex
	states map[string]*sourceState
	wg     sync.WaitGroup
}

// Option configures a Pump.
type Option func(*Pump)

type sourceState struct {
	degraded bool // the last Update was an error
	cfg      source.Config
	status   source.Status
	rev      int64
	applyErr string
	applyAt  time.Time
	warnings []string
	src      source.Source // the running source; replaced at each term with WithLeadership
	leading  bool          // this replica syncs the source now
	// With WithLeadership, during a term: the role's fence, what ends the
	// term, and why the store ended it (the fence fell).
	fence   audit.Fence
	endTerm context.CancelFunc
	fenced  error
}

// Start builds every source of cfgs (entries of type StoreType place the
// store's layer and are skipped) and starts it; the sources run until ctx
// ends, and Close waits for them. A source whose backend is down starts
// degraded; only a configuration error fails. With WithLeadership, a
// source runs only while this replica holds its role (see Leadership).
func Start(ctx context.Context, st Store, cfgs []source.Config, logger *slog.Logger, opts ...Option) (*Pump, error) {
	s := &Pump{st: st, logger: logger, order: st.Layers(), states: map[string]*sourceState{}}
	for _, o := range opts {
		o(s)
	}
	var srcs []source.Source
	for _, c := range cfgs {
		if c.Type == StoreType {
			continue
		}
		src, err := s.build(c)
		if err != nil {
			for _, src := range srcs {
				src.Close()
			}
			return nil, err
		}
		srcs = append(srcs, src)
		state := &sourceState{cfg: c, status: source.Status{State: source.StateStarting}, src: src}
		if s.lead != nil {
			state.status.State = StateStandby
		}
		s.states[c.Name] = state
	}
	ctx, s.stop = context.WithCancel(ctx)
	for _, src := range srcs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if s.lead != nil {
				s.campaign(ctx, src)
				return
			}
			s.run(ctx, src)
		}()
	}
	return s, nil
}

// build builds the source of c.
func (s *Pump) build(c source.Config) (source.Source, error) {
	return source.New(c, source.WithLogger(s.logger), source.WithMaxValueSize(s.st.MaxValueSize()))
}

// run runs src until ctx ends or src is closed.
func (s *Pump) run(ctx context.Context, src source.Source) {
	if err := src.Run(ctx, func(u source.Update) { s.update(ctx, src.Name(), u) }); err != nil {
		s.logger.Error("source stopped", "source", src.Name(), "err", err)
	}
}

// update applies one Update of a source. A failed read keeps the last good
// snapshot: nothing is deleted while a source is away.
func (s *Pump) update(ctx context.Context, name string, u source.Update) {
	s.mu.Lock()
	state := s.states[name]
	state.status = u.Status
	mount, fence := state.cfg.MountPrefix(), state.fence
	s.mu.Unlock()
	if u.Err != nil {
		// The event first: once the log line is out, the audit trail has it.
		s.event(ctx, name, "degraded", u.Err.Error())
		s.logger.Warn("source degraded; serving its last good snapshot", "source", name, "err", u.Err)
		s.mu.Lock()
		state.degraded = true
		s.mu.Unlock()
		return
	}
	warnings := make([]string, len(u.Warnings))
	for i, w := range u.Warnings {
		warnings[i] = w.String()
		s.logger.Warn("source: entry left out", "source", name, "where", w.Where, "problem", w.Problem)
	}
	snap := make(map[string]audit.LayerValue, len(u.Snapshot))
	for k, v := range u.Snapshot {
		snap[mount+k] = audit.LayerValue{Value: v.Data, ContentType: v.ContentType}
	}
	r, err := s.st.ApplySource(ctx, name, snap, audit.Fenced(fence))
	if errors.Is(err, audit.ErrFenced) {
		s.lostRole(name, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	state.warnings = warnings
	state.applyAt = time.Now().UTC()
	if err != nil {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, audit.ErrClosed) {
			state.applyErr = err.Error()
			s.logger.Error("source snapshot refused; keeping the last good one", "source", name, "err", err)
			go s.event(ctx, name, "refused", err.Error())
		}
		return
	}
	recovered := state.degraded || state.applyErr != ""
	state.applyErr, state.degraded = "", false
	if recovered {
		go s.event(ctx, name, "ok", "")
	}
	if len(r.Changes) > 0 || len(r.LayerChanges) > 0 {
		state.rev = r.Rev
		s.logger.Info("source changed", "source", name, "rev", r.Rev, "effective_changes", len(r.Changes), "layer_changes", len(r.LayerChanges))
	}
}

// Statuses returns every layer's status, highest precedence first.
func (s *Pump) Statuses() []api.SourceStatus {
	var out []api.SourceStatus
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.order) - 1; i >= 0; i-- {
		name := s.order[i]
		if name == audit.StoreLayer {
			out = append(out, api.SourceStatus{Name: name, Type: StoreType, Precedence: i, State: string(source.StateOK)})
			continue
		}
		st := s.states[name]
		if st == nil {
			continue
		}
		ss := api.SourceStatus{Name: name, Type: st.cfg.Type, Mount: st.cfg.MountPrefix(), Precedence: i,
			State: string(st.status.State), LastError: st.status.LastError, SourceRevision: st.status.Revision,
			Rev: st.rev, Keys: st.status.Keys, Warnings: st.warnings}
		if st.applyErr != "" {
			ss.State, ss.LastError, ss.LastErrorAt = string(source.StateDegraded), st.applyErr, timePtr(st.applyAt)
		} else if !st.status.LastErrorAt.IsZero() {
			ss.LastErrorAt = timePtr(st.status.LastErrorAt)
		}
		if !st.status.LastSync.IsZero() {
			ss.LastSync = timePtr(st.status.LastSync)
		}
		out = append(out, ss)
	}
	return out
}

// event records a change in a source's health in the audit trail.
func (s *Pump) event(ctx context.Context, name, state, msg string) {
	err := s.st.RecordSourceEvent(ctx, audit.SourceEvent{Source: name, State: state, Message: msg})
	if err != nil && !errors.Is(err, audit.ErrClosed) && ctx.Err() == nil {
		s.logger.Error("record source event", "source", name, "err", err)
	}
}

func timePtr(t time.Time) *time.Time { return &t }

// Close closes the sources and waits for them to stop; a role held
// (WithLeadership) is resigned.
func (s *Pump) Close() {
	s.stop()
	s.mu.Lock()
	for _, st := range s.states {
		st.src.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
