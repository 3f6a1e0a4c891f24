package rollouts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/rollout"
)

// Clients lists the SDK clients connected now, of every replica (the
// daemon's delivery table).
type Clients interface {
	Clients(ctx context.Context) ([]api.ClientStatus, error)
}

// Alarm asks a Prometheus whether a rollout's abort query fires: true
// and why when it returns a result.
type Alarm interface {
	Firing(ctx context.Context, prometheusURL, query string) (bool, string, error)
}

// DriverActor is the actor of the actions Driver takes.
const DriverActor = "configd"

// DefaultTick is how often Driver looks at the running rollouts.
const DefaultTick = 5 * time.Second

// Driver moves the running rollouts on by themselves: it aborts one whose
// rejections pass its AbortOnErrors or whose abort query fires, and
// promotes an active one whose step baked (Bake since StepStarted) with
// rejections at most its MaxErrors (past the last step: completes it). It
// keeps no state but the records: every replica runs one (their actions
// are compare-and-sets, and a duplicate loses harmlessly), and one that
// restarts goes on where the record stands.
type Driver struct {
	b       *Book
	clients Clients
	alarm   Alarm
	tick    time.Duration
	logger  *slog.Logger
	metrics *driverMetrics
}

// DriverOption configures NewDriver.
type DriverOption func(*Driver)

// WithTick sets how often the driver looks (default DefaultTick).
func WithTick(d time.Duration) DriverOption { return func(dr *Driver) { dr.tick = d } }

// WithAlarm sets what asks the abort queries (default none: the step of a
// rollout with an abort query holds, and the driver logs why).
func WithAlarm(a Alarm) DriverOption { return func(dr *Driver) { dr.alarm = a } }

// WithLogger sets the driver's logger (default slog.Default()).
func WithLogger(l *slog.Logger) DriverOption { return func(dr *Driver) { dr.logger = l } }

// NewDriver returns the driver of b's rollouts, which reads the clients
// from clients.
func NewDriver(b *Book, clients Clients, opts ...DriverOption) *Driver {
	d := &Driver{b: b, clients: clients, tick: DefaultTick, logger: slog.Default(), metrics: newDriverMetrics()}
	for _, o := range opts {
		o(d)
	}
	if d.tick <= 0 {
		panic("rollouts: WithTick needs a positive interval")
	}
	return d
}

// Run drives the rollouts every tick until ctx ends.
func (d *Driver) Run(ctx context.Context) {
	t := time.NewTicker(d.tick)
	defer t.Stop()
	for {
		if err := d.Pass(ctx); err != nil && ctx.Err() == nil {
			d.logger.Warn("rollouts: a pass of the driver failed; trying again at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass looks at every running rollout once, and takes the action each
// asks for.
func (d *Driver) Pass(ctx context.Context) error {
	recs, err := d.b.List(ctx)
	if err != nil {
		return err
	}
	var clients []api.ClientStatus
	running := false
	for _, rec := range recs {
		running = running || rollout.Running(rec.State)
	}
	if running {
		if clients, err = d.clients.Clients(ctx); err != nil {
			return fmt.Errorf("list the clients: %w", err)
		}
	}
	d.metrics.reset()
	var errs []error
	for _, rec := range recs {
		d.metrics.state(rec.State)
		if !rollout.Running(rec.State) {
			continue
		}
		st := Status(rec, clients)
		d.metrics.running(rec, st)
		if err := d.drive(ctx, rec, st); err != nil {
			errs = append(errs, fmt.Errorf("rollout %d: %w", rec.ID, err))
		}
	}
	return errors.Join(errs...)
}

// drive takes the action rec asks for, if any.
func (d *Driver) drive(ctx context.Context, rec Record, st api.RolloutStatus) error {
	r := rec.Rollout
	act := func(what func(context.Context, int64, string, string) (Record, error), action, text string) error {
		_, err := what(ctx, r.ID, DriverActor, text)
		if errors.Is(err, audit.ErrConflict) {
			// Another replica's driver, or a person, acted first.
			d.logger.Debug("rollouts: another action came first", "rollout", r.ID, "action", action, "err", err)
			return nil
		}
		if err == nil {
			d.logger.Info("rollouts: "+action, "rollout", r.ID, "step", r.Step+1, "steps", len(r.Steps), "why", text)
		}
		return err
	}
	if r.AbortOnErrors > 0 && st.RejectedPercent > r.AbortOnErrors {
		return act(d.b.Abort, ActionAbort, fmt.Sprintf("%d of the %d client(s) in the step reject the new values (%s%% > --abort-on-errors %s%%)",
			st.Rejected, st.InStep, pct(st.RejectedPercent), pct(r.AbortOnErrors)))
	}
	if r.AbortQuery != "" {
		if d.alarm == nil {
			d.logger.Warn("rollouts: this configd cannot ask the abort query of a rollout (no alarm wired); the step holds", "rollout", r.ID)
			return nil
		} else {
			firing, why, err := d.alarm.Firing(ctx, r.Prometheus, r.AbortQuery)
			switch {
			case err != nil:
				d.logger.Warn("rollouts: the abort query could not be asked; the step holds", "rollout", r.ID, "err", err)
				return nil
			case firing:
				return act(d.b.Abort, ActionAbort, fmt.Sprintf("the abort query %q fired: %s", r.AbortQuery, why))
			}
		}
	}
	if r.State != rollout.StateActive || r.Bake <= 0 || d.b.now().Sub(r.StepStarted) < r.Bake {
		return nil
	}
	if st.RejectedPercent > r.MaxErrors {
		d.logger.Debug("rollouts: the step baked but holds: too many rejections", "rollout", r.ID, "rejected_percent", st.RejectedPercent)
		return nil
	}
	return act(d.b.Promote, ActionPromote, fmt.Sprintf("step %d/%d (%s) baked %s: %d of %d client(s) applied, %d rejected",
		r.Step+1, len(r.Steps), r.Steps[r.Step], r.Bake, st.Applied, st.InStep, st.Rejected))
}

func pct(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Collector returns the driver's metrics: the rollouts by state, and each
// running rollout's step and clients, as of its last pass.
func (d *Driver) Collector() prometheus.Collector { return d.metrics }

// driverMetrics are the rollouts' gauges, set at each pass.
type driverMetrics struct {
	states                    *prometheus.GaugeVec
	step                      *prometheus.GaugeVec
	inStep, applied, rejected *prometheus.GaugeVec
}

func newDriverMetrics() *driverMetrics {
	m := &driverMetrics{
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "configd_rollouts",
			Help: "Rollouts by state (as of the driver's last pass)."}, []string{"state"}),
		step: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "configd_rollout_step",
			Help: "The current step of each running rollout, counted from 1."}, []string{"rollout"}),
		inStep: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "configd_rollout_clients_in_step",
			Help: "Clients in the current step of each running rollout (of those that watch its keys, every replica's)."}, []string{"rollout"}),
		applied: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "configd_rollout_clients_applied",
			Help: "Clients in the step of each running rollout that applied the revision that brought them in."}, []string{"rollout"}),
		rejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "configd_rollout_clients_rejected",
			Help: "Clients in the step of each running rollout that reject one of its new values."}, []string{"rollout"}),
	}
	return m
}

func (m *driverMetrics) vecs() []*prometheus.GaugeVec {
	return []*prometheus.GaugeVec{m.states, m.step, m.inStep, m.applied, m.rejected}
}

func (m *driverMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range m.vecs() {
		v.Describe(ch)
	}
}

func (m *driverMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, v := range m.vecs() {
		v.Collect(ch)
	}
}

func (m *driverMetrics) reset() {
	for _, v := range m.vecs() {
		v.Reset()
	}
	for _, s := range []string{rollout.StateActive, rollout.StatePaused, rollout.StateComplete, rollout.StateAborted} {
		m.states.WithLabelValues(s).Set(0)
	}
}

func (m *driverMetrics) state(s string) { m.states.WithLabelValues(s).Inc() }

func (m *driverMetrics) running(rec Record, st api.RolloutStatus) {
	id := strconv.FormatInt(rec.ID, 10)
	m.step.WithLabelValues(id).Set(float64(rec.Step + 1))
	m.inStep.WithLabelValues(id).Set(float64(st.InStep))
	m.applied.WithLabelValues(id).Set(float64(st.Applied))
	m.rejected.WithLabelValues(id).Set(float64(st.Rejected))
}
