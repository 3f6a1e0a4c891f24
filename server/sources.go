package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/plugin"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/source"
)

// StoreType is the type of the `sources:` entry that places configd's own
// writable layer (what configctl set writes) among the sources. Without one
// the store layer is on top of every source.
const StoreType = "store"

// decodeSource decodes one entry of the `sources:` list: the store layer's
// place (name and type only), or a source of one of types.
func decodeSource(n *yaml.Node, types *source.Catalog) (source.Config, error) {
	var typ string
	if _, err := plugin.Peek(n, "type", &typ); err != nil || typ != StoreType {
		return source.DecodeConfig(n, types) // which reports err
	}
	var store struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
	}
	if err := plugin.DecodeYAML(n, &store); err != nil {
		if de, ok := errors.AsType[*plugin.DecodeError](err); ok {
			return source.Config{}, fmt.Errorf("line %d: the store layer (type store): %s", de.Line, de.Detail())
		}
		return source.Config{}, err
	}
	return source.Config{Name: store.Name, Type: StoreType}, nil
}

// layerOrder returns the layers of cfgs, lowest precedence first, with the
// store layer where an entry of type store puts it, or on top.
func layerOrder(cfgs []source.Config) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	placed := false
	for i, c := range cfgs {
		if c.Type == StoreType {
			if placed {
				return nil, fmt.Errorf("sources[%d]: the store layer is placed twice", i)
			}
			if c.Name != "" && c.Name != audit.StoreLayer {
				return nil, fmt.Errorf("sources[%d]: the store layer's name is %q, not %q", i, audit.StoreLayer, c.Name)
			}
			placed = true
			order = append(order, audit.StoreLayer)
			seen[audit.StoreLayer] = true
			continue
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("sources[%d]: %w", i, err)
		}
		if c.Name == audit.StoreLayer {
			return nil, fmt.Errorf("sources[%d]: the name %q is reserved for the store layer", i, audit.StoreLayer)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("sources[%d]: two sources are named %q", i, c.Name)
		}
		seen[c.Name] = true
		order = append(order, c.Name)
	}
	if !placed {
		order = append(order, audit.StoreLayer)
	}
	return order, nil
}

// sourceSet runs the configured sources and hands each snapshot to the
// store, which records it as a revision by "source:<name>".
type sourceSet struct {
	st     *audit.Store
	logger *slog.Logger
	order  []string

	mu     sync.Mutex
	states map[string]*sourceState
	wg     sync.WaitGroup
	srcs   []source.Source
}

type sourceState struct {
	degraded bool // the last Update was an error
	cfg      source.Config
	status   source.Status
	rev      int64
	applyErr string
	applyAt  time.Time
	warnings []string
}

// startSources builds every source of cfgs and starts it. A source whose
// backend is down starts degraded; only a configuration error fails.
func startSources(ctx context.Context, st *audit.Store, cfgs []source.Config, logger *slog.Logger) (*sourceSet, error) {
	s := &sourceSet{st: st, logger: logger, order: st.Layers(), states: map[string]*sourceState{}}
	for _, c := range cfgs {
		if c.Type == StoreType {
			continue
		}
		src, err := source.New(c, source.WithLogger(logger), source.WithMaxValueSize(st.MaxValueSize()))
		if err != nil {
			s.close()
			return nil, err
		}
		s.srcs = append(s.srcs, src)
		s.states[c.Name] = &sourceState{cfg: c, status: source.Status{State: source.StateStarting}}
	}
	for _, src := range s.srcs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := src.Run(ctx, func(u source.Update) { s.update(ctx, src.Name(), u) }); err != nil {
				logger.Error("source stopped", "source", src.Name(), "err", err)
			}
		}()
	}
	return s, nil
}

// update applies one Update of a source. A failed read keeps the last good
// snapshot: nothing is deleted while a source is away.
func (s *sourceSet) update(ctx context.Context, name string, u source.Update) {
	s.mu.Lock()
	state := s.states[name]
	state.status = u.Status
	mount := state.cfg.MountPrefix()
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
	r, err := s.st.ApplySource(ctx, name, snap)
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

// statuses returns every layer's status, highest precedence first.
func (s *sourceSet) statuses() []api.SourceStatus {
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
func (s *sourceSet) event(ctx context.Context, name, state, msg string) {
	err := s.st.RecordSourceEvent(ctx, audit.SourceEvent{Source: name, State: state, Message: msg})
	if err != nil && !errors.Is(err, audit.ErrClosed) && ctx.Err() == nil {
		s.logger.Error("record source event", "source", name, "err", err)
	}
}

func timePtr(t time.Time) *time.Time { return &t }

// readiness lists the sources for /readyz: configd is ready while a source
// is degraded (it serves the last good snapshot), and says so.
func (s *sourceSet) readiness() string {
	var b strings.Builder
	for _, ss := range s.statuses() {
		fmt.Fprintf(&b, "source %s (%s): %s", ss.Name, ss.Type, ss.State)
		if ss.LastError != "" && ss.State != string(source.StateOK) {
			fmt.Fprintf(&b, ": %s", apierror.OneLine(ss.LastError))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func (s *sourceSet) close() {
	for _, src := range s.srcs {
		src.Close()
	}
	s.wg.Wait()
}

// serveSources answers GET /v1/sources.
func (s *sourceSet) serveSources(w http.ResponseWriter, r *http.Request) {
	resp := api.SourcesResponse{Sources: s.statuses(), Events: []api.SourceEvent{}}
	evs, err := s.st.SourceEvents(r.Context(), "", 20)
	if err != nil {
		status, body, _ := errorBody(err)
		apierror.WriteJSON(w, status, api.ErrorResponse{Error: body})
		return
	}
	for _, e := range evs {
		resp.Events = append(resp.Events, api.SourceEvent{Time: e.Time, Source: e.Source, State: e.State, Message: e.Message})
	}
	apierror.WriteJSON(w, http.StatusOK, resp)
}
