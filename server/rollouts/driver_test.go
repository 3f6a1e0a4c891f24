package rollouts_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/rollouts"
)

// fleet is the clients a driver reads, as the test sets them.
type fleet struct {
	mu sync.Mutex
	cs []api.ClientStatus
}

func (f *fleet) Clients(context.Context) ([]api.ClientStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.ClientStatus(nil), f.cs...), nil
}

// set makes n clients of zone eu-1 that watch app/, each at rev; the
// first rejected of them reject app/limits at rev.
func (f *fleet) set(n int, rev int64, rejected int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cs = f.cs[:0]
	for i := range n {
		c := api.ClientStatus{Instance: fmt.Sprintf("pod-%d", i), Labels: map[string]string{"zone": "eu-1"}, Prefixes: []string{"app/"}, Rev: rev}
		if i < rejected {
			c.Rejections = []api.ClientRejection{{Key: "app/limits", Rev: rev, Error: "rps must be >= 1"}}
		}
		f.cs = append(f.cs, c)
	}
}

func (w *world) state(id int64) rollout.Phase {
	w.t.Helper()
	rec, err := w.b.Get(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return rec.Phase
}

// TestDriverPromotesABakedStepAndHoldsOnRejections: a step advances once
// its bake passed and its rejections are at most MaxErrors; past the last
// step the rollout completes; a paused one, or one without a bake, waits.
func TestDriverPromotesABakedStepAndHoldsOnRejections(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/limits", "1")
	p := w.plan(w.propose("app/limits", "2"), "zone=eu-1", "100%")
	p.Bake, p.MaxErrors = 10*time.Minute, 10
	rec := w.start(p)
	f := &fleet{}
	f.set(10, rec.Rev, 2)
	d := rollouts.NewDriver(w.b, f, rollouts.WithLogger(configdtest.Discard()))
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.Collector())
	pass := func() {
		t.Helper()
		if err := d.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pass()
	if got := w.state(rec.ID); got.Step != 0 {
		t.Fatalf("before the bake: %+v", got)
	}
	if got := gauge(t, reg, "configd_rollout_clients_rejected"); got != 2 {
		t.Errorf("rejected gauge: %v", got)
	}
	w.advance(10 * time.Minute)
	pass()
	if got := w.state(rec.ID); got.Step != 0 {
		t.Fatalf("20%% rejected, max errors 10%%: the step advanced: %+v", got)
	}
	f.set(10, rec.Rev, 1)
	pass()
	got := w.state(rec.ID)
	if got.Step != 1 || got.State != rollout.StateActive {
		t.Fatalf("10%% rejected after the bake: %+v, want step 2", got)
	}
	if _, err := w.b.Pause(ctx, rec.ID, "bob", ""); err != nil {
		t.Fatal(err)
	}
	w.advance(time.Hour)
	pass()
	if got := w.state(rec.ID); got.State != rollout.StatePaused {
		t.Fatalf("a paused rollout moved: %+v", got)
	}
	if _, err := w.b.Resume(ctx, rec.ID, "bob", ""); err != nil {
		t.Fatal(err)
	}
	pass()
	if got := w.state(rec.ID); got.State != rollout.StateComplete || w.value("app/limits") != "2" {
		t.Fatalf("the last step baked: %+v, app/limits=%s", got, w.value("app/limits"))
	}
	r, _ := w.b.Get(ctx, rec.ID)
	if last := r.Log[len(r.Log)-1]; last.Actor != rollouts.DriverActor || !strings.Contains(last.Text, "baked 10m0s") {
		t.Errorf("the driver's note: %+v", last)
	}

	// Without a bake, only promote advances.
	p = w.plan(w.propose("app/limits", "3"), "zone=eu-1")
	rec = w.start(p)
	w.advance(24 * time.Hour)
	pass()
	if got := w.state(rec.ID); got.State != rollout.StateActive {
		t.Fatalf("a rollout without a bake moved: %+v", got)
	}
}

// gauge returns the value of the single series of gauge name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series of %s", name)
	return 0
}

// TestDriverAbortsOnRejectionsPastAbortOnErrors: more rejections in the
// step than AbortOnErrors abort the rollout, before its bake; the store
// keeps the old values.
func TestDriverAbortsOnRejectionsPastAbortOnErrors(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/limits", "1")
	p := w.plan(w.propose("app/limits", "2"), "zone=eu-1", "100%")
	p.Bake, p.AbortOnErrors = time.Hour, 1
	rec := w.start(p)
	f := &fleet{}
	f.set(100, rec.Rev, 1) // 1%: not more than 1%
	d := rollouts.NewDriver(w.b, f, rollouts.WithLogger(configdtest.Discard()))
	if err := d.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.state(rec.ID); got.State != rollout.StateActive {
		t.Fatalf("1%% rejected, abort on more than 1%%: %+v", got)
	}
	// A rejection of an older revision of the key is not of this rollout.
	f.set(100, rec.Rev-1, 5)
	if err := d.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.state(rec.ID); got.State != rollout.StateActive {
		t.Fatalf("rejections of older revisions aborted it: %+v", got)
	}
	f.set(100, rec.Rev, 2)
	if err := d.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := w.b.Get(ctx, rec.ID)
	if r.State != rollout.StateAborted || w.value("app/limits") != "1" || !strings.Contains(r.Log[len(r.Log)-1].Text, "2 of the 100 client(s)") {
		t.Fatalf("2%% rejected: %+v %+v, app/limits=%s", r.Phase, r.Log, w.value("app/limits"))
	}
}

type alarm struct{ firing bool }

func (a *alarm) Firing(_ context.Context, url, query string) (bool, string, error) {
	return a.firing, "error_rate{zone=\"eu-1\"} = 0.2", nil
}

// TestDriverAbortsWhenTheAlarmFires: a rollout with an abort query aborts
// when its alarm fires; a driver that cannot ask it holds the step.
func TestDriverAbortsWhenTheAlarmFires(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/limits", "1")
	p := w.plan(w.propose("app/limits", "2"), "10%", "100%")
	p.AbortQuery, p.Prometheus, p.Bake = "error_rate > 0.1", "http://prometheus:9090", time.Minute
	rec := w.start(p)
	w.advance(time.Hour)
	if err := rollouts.NewDriver(w.b, &fleet{}, rollouts.WithLogger(configdtest.Discard())).Pass(ctx); err != nil || w.state(rec.ID).Step != 0 {
		t.Fatalf("no alarm to ask, the bake over: %v, %+v", err, w.state(rec.ID))
	}
	a := &alarm{}
	d := rollouts.NewDriver(w.b, &fleet{}, rollouts.WithLogger(configdtest.Discard()), rollouts.WithAlarm(a))
	if err := d.Pass(ctx); err != nil || w.state(rec.ID) != (rollout.Phase{State: rollout.StateActive, Step: 1}) {
		t.Fatalf("a quiet alarm, the bake over: %v, %+v", err, w.state(rec.ID))
	}
	a.firing = true
	if err := d.Pass(ctx); err != nil || w.state(rec.ID).State != rollout.StateAborted {
		t.Fatalf("a firing alarm: %v, %+v", err, w.state(rec.ID))
	}
}

// TestDriverResumesFromTheRecordAfterARestart: the driver keeps nothing
// but the record: a store closed mid-rollout and opened again, with a new
// book and driver, goes on where the rollout stood (its step's bake runs
// from StepStarted).
func TestDriverResumesFromTheRecordAfterARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "configd.db")
	ctx := context.Background()
	open := func() *audit.Store {
		st, err := audit.Open(ctx, path, audit.WithLogger(configdtest.Discard()))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	w := newWorld(t, st)
	w.put("app/limits", "1")
	p := w.plan(w.propose("app/limits", "2"), "zone=eu-1", "50%", "100%")
	p.Bake = 10 * time.Minute
	rec := w.start(p)
	if _, err := w.b.Promote(ctx, rec.ID, "alice", ""); err != nil {
		t.Fatal(err)
	}
	w.advance(6 * time.Minute)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = open()
	t.Cleanup(func() { st.Close() })
	w2 := newWorld(t, st)
	w2.now = w.now
	d := rollouts.NewDriver(w2.b, &fleet{}, rollouts.WithLogger(configdtest.Discard()))
	if err := d.Pass(ctx); err != nil || w2.state(rec.ID).Step != 1 {
		t.Fatalf("6 of 10 minutes baked after the restart: %v, %+v", err, w2.state(rec.ID))
	}
	w2.advance(4 * time.Minute)
	if err := d.Pass(ctx); err != nil || w2.state(rec.ID) != (rollout.Phase{State: rollout.StateActive, Step: 2}) {
		t.Fatalf("10 minutes baked: %v, %+v", err, w2.state(rec.ID))
	}
}

// TestDriverRunsOnItsTick: Run drives the rollouts every tick until its
// context ends: a rollout whose bake is over completes by itself.
func TestDriverRunsOnItsTick(t *testing.T) {
	completed := make(chan int64, 1)
	st := configdtest.Core(t, core.WithStoreOptions(audit.WithCommitHook(func(r audit.Revision) {
		if r.Origin == rollouts.Origin && strings.Contains(r.Reason, "complete") {
			completed <- r.Rev
		}
	}))).Store
	w := newWorld(t, st)
	w.put("app/limits", "1")
	p := w.plan(w.propose("app/limits", "2"), "100%")
	p.Bake = time.Minute
	rec := w.start(p)
	w.advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		rollouts.NewDriver(w.b, &fleet{}, rollouts.WithLogger(configdtest.Discard()), rollouts.WithTick(10*time.Millisecond)).Run(ctx)
		close(done)
	}()
	select {
	case <-completed:
	case <-time.After(30 * time.Second):
		t.Fatal("the driver did not complete the rollout")
	}
	cancel()
	<-done
	if got := w.state(rec.ID); got.State != rollout.StateComplete {
		t.Fatalf("%+v", got)
	}
}
