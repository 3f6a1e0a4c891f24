package pump

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/backoff"
)

// Leadership decides which replica of a cluster syncs each source, so
// that a change in a source is recorded once, by one replica, whatever
// the number of replicas (server/sourcelead implements it over etcd).
type Leadership interface {
	// Campaign blocks until this replica holds the role of syncing the
	// named source, then returns a channel that is closed when it no
	// longer does: its session with the cluster ended, or ctx ended (the
	// role is given up first, and the channel must close then: the pump
	// waits for it before it campaigns again). It returns ctx.Err() when
	// ctx ends before, and another error when it cannot campaign now: the
	// pump tries again after a pause. The fence stands for the role in the
	// store: each snapshot of the term is applied with it (audit.Fenced),
	// so that none is recorded once the role is gone, even before lost is
	// closed; the zero Fence is none.
	Campaign(ctx context.Context, source string) (lost <-chan struct{}, fence audit.Fence, err error)
}

// StateStandby is the state of a source that another replica syncs
// (WithLeadership): this replica does not run it, and holds its layer as
// the replicated log has it.
const StateStandby source.State = "standby"

// Pauses between failed campaigns: they double from the first up to the
// last while the campaigns keep failing (jittered, so that replicas that
// failed together do not retry together).
const (
	firstRetry = 100 * time.Millisecond
	lastRetry  = 2 * time.Second
)

// catchUpTimeout bounds how long a replica that took a source's role
// waits for its store to catch up with the cluster.
const catchUpTimeout = 10 * time.Second

// WithLeadership makes the pump run each source only while this replica
// holds its role in l: the replicas of a cluster share one store, and
// each source must be synced by exactly one of them. When a replica takes
// a role, it waits until its store has every revision of the cluster
// (Store.Sync), then starts the source, whose first snapshot the store
// diffs against the layer as the cluster recorded it: a change made while
// no replica synced the source becomes one revision, and the keys that
// did not change are left alone. Without it (a single configd on SQLite)
// every source runs here.
func WithLeadership(l Leadership) Option { return func(s *Pump) { s.lead = l } }

// Leading returns the names of the sources this replica syncs now, in
// precedence order, highest first: every source, without WithLeadership.
func (s *Pump) Leading() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, name := range slices.Backward(s.order) {
		if st := s.states[name]; st != nil && (s.lead == nil || st.leading) {
			out = append(out, name)
		}
	}
	return out
}

// campaign runs src's terms: campaign for its role, catch up, run the
// source until the role is lost, and again, until ctx ends. A source runs
// once (its Run contract), so each term after the first builds it anew.
func (s *Pump) campaign(ctx context.Context, src source.Source) {
	name := src.Name()
	s.mu.Lock()
	cfg := s.states[name].cfg
	s.mu.Unlock()
	bo := backoff.Backoff{Min: firstRetry, Max: lastRetry}
	retry := func(err error) bool {
		s.standby(name, err)
		pause := bo.Next()
		s.logger.Warn("source: not synced here; trying again", "source", name, "in", pause, "err", err)
		return backoff.Sleep(ctx, pause) == nil
	}
	for ctx.Err() == nil {
		if src == nil {
			var err error
			if src, err = s.build(cfg); err != nil {
				if !retry(fmt.Errorf("build the source: %w", err)) {
					break
				}
				continue
			}
			s.mu.Lock()
			s.states[name].src = src
			s.mu.Unlock()
		}
		// The term's context: ending it gives up the role.
		tctx, end := context.WithCancel(ctx)
		lost, fence, err := s.lead.Campaign(tctx, name)
		if err != nil {
			end()
			if ctx.Err() != nil || !retry(fmt.Errorf("campaign for the source's role: %w", err)) {
				break
			}
			continue
		}
		s.logger.Info("source: this replica syncs it now", "source", name)
		ran, err := s.term(tctx, end, src, lost, fence)
		if ran {
			src = nil
			bo.Reset()
		}
		if ran && ctx.Err() == nil {
			// The role ended under it (not a shutdown): the audit trail
			// says so, on every replica.
			why := "its session with the cluster ended"
			if err != nil {
				why = err.Error()
			}
			s.event(ctx, name, "lost", "this replica no longer syncs the source: "+why)
		}
		if err != nil {
			if !retry(err) {
				break
			}
			continue
		}
		s.standby(name, nil)
		s.logger.Info("source: this replica no longer syncs it", "source", name)
	}
	if src != nil {
		src.Close()
	}
}

// term runs src for one term of the role (Campaign's ctx, ended by end),
// from when the store has caught up with the cluster until lost is closed
// or ctx ends, or the store refuses a snapshot because fence fell
// (audit.ErrFenced: etcd ended the role before lost said so); then it
// gives the role up. ran tells whether src ran (a source runs once).
func (s *Pump) term(ctx context.Context, end context.CancelFunc, src source.Source, lost <-chan struct{}, fence audit.Fence) (ran bool, err error) {
	defer func() {
		end()
		<-lost // the role is given up
	}()
	go func() {
		select {
		case <-lost:
			end()
		case <-ctx.Done():
		}
	}()
	// The snapshot is diffed against the layer as the cluster has it, not
	// as this replica last saw it: catch up first. (The store would find
	// out anyway, its commit comparing the log's head, at the cost of a
	// retry.) A replica that cannot catch up in time (its store stopped
	// applying the log, or is far behind) gives the role up and goes to
	// the back of the line.
	sctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	_, err = s.st.Sync(sctx)
	cancel()
	if err != nil {
		return false, fmt.Errorf("catch up with the cluster before syncing: %w", err)
	}
	s.mu.Lock()
	st := s.states[src.Name()]
	st.leading, st.fence, st.endTerm, st.fenced = true, fence, end, nil
	st.status = source.Status{State: source.StateStarting}
	s.mu.Unlock()
	s.run(ctx, src)
	src.Close()
	s.mu.Lock()
	fenced := st.fenced
	st.fence, st.endTerm, st.fenced = audit.Fence{}, nil, nil
	s.mu.Unlock()
	return true, fenced
}

// lostRole ends name's term: the store refused its snapshot with err
// because the role's fence fell, so another replica may sync the source
// already. The pump stands by and campaigns again.
func (s *Pump) lostRole(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states[name]
	if st.endTerm == nil {
		return
	}
	s.logger.Warn("source: the role was lost before this replica heard of it; its snapshot is not recorded, standing by", "source", name, "err", err)
	st.fenced = fmt.Errorf("the source's role was lost: %w", err)
	st.endTerm()
}

// standby marks name as synced elsewhere; err, if any, is why this
// replica does not sync it.
func (s *Pump) standby(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states[name]
	st.leading, st.degraded, st.applyErr, st.rev, st.warnings = false, false, "", 0, nil
	st.status = source.Status{State: StateStandby}
	if err != nil {
		st.status.LastError, st.status.LastErrorAt = err.Error(), time.Now().UTC()
	}
}
