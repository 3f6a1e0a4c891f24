package watcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/rollout"
)

var (
	euClient = rollout.Identity{Instance: "pod-1/orders", Labels: map[string]string{"zone": "eu-1"}}
	usClient = rollout.Identity{Instance: "pod-2/orders", Labels: map[string]string{"zone": "us-1"}}
	anon     = rollout.Identity{}
)

// record writes rollout 1's record, moving it from one phase to another,
// as the rollouts' Book does; extra ops go in the same revision.
func record(t *testing.T, st *audit.Store, from, to rollout.Phase, extra ...audit.Op) int64 {
	t.Helper()
	r := rollout.Rollout{ID: 1, Scope: "app/",
		Changes: []rollout.Change{
			{Key: "app/x", Old: &rollout.Value{Value: []byte("1"), CreateRev: 1, ModRev: 1, Version: 1}, New: &rollout.Value{Value: []byte("2")}},
			{Key: "app/new", New: &rollout.Value{Value: []byte("born")}},
		},
		Steps: []rollout.Step{{Selector: map[string]string{"zone": "eu-1"}}, {Percent: 100}},
		Phase: to, From: from}
	ops := append([]audit.Op{audit.Put(keyspace.RolloutKey(1), r.Encode(), "application/json")}, extra...)
	rev, err := st.Commit(context.Background(), audit.Txn{Actor: "rollouts", Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return rev.Rev
}

// values applies batches to a copy of the scope, as the SDK does.
type values map[string]string

func (v values) apply(b Batch) values {
	if b.Kind == KindSnapshot {
		clear(v)
	}
	for _, e := range b.Events {
		if e.Type == audit.OpDelete {
			delete(v, e.Key)
		} else {
			v[e.Key] = string(e.Value)
		}
	}
	return v
}

func (v values) String() string { return fmt.Sprint(map[string]string(v)) }

// quiet says w has nothing queued once the hub has published rev.
func quiet(t *testing.T, w *Watcher) {
	t.Helper()
	if b, ok, _ := w.TryNext(); ok {
		t.Fatalf("unexpected batch at %d: %+v", b.Rev, b.Events)
	}
}

func watchAs(t *testing.T, h *Hub, id rollout.Identity, since int64) *Watcher {
	t.Helper()
	w, err := h.Watch(context.Background(), Filter{Prefixes: []string{"app/"}}, since, WithIdentity(id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func TestARolloutShowsItsValuesToTheClientsInItsStepAlone(t *testing.T) {
	st, h := setup(t)
	put(t, st, "app/x", "1")
	eu, us, nobody := watchAs(t, h, euClient, 0), watchAs(t, h, usClient, 0), watchAs(t, h, anon, 0)
	other, err := h.Watch(context.Background(), Filter{Prefixes: []string{"other/"}}, 0, WithIdentity(euClient))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	views := map[*Watcher]values{eu: {}, us: {}, nobody: {}}
	for w, v := range views {
		v.apply(next(t, w))
	}
	next(t, other) // its empty snapshot

	start := record(t, st, rollout.Phase{}, rollout.Phase{State: rollout.StateActive})
	b := next(t, eu)
	if b.Rev != start || views[eu].apply(b).String() != "map[app/new:born app/x:2]" {
		t.Fatalf("the client in step 1 got %d %v", b.Rev, views[eu])
	}
	unrelated := put(t, st, "app/y", "a")
	for w, v := range views {
		b := next(t, w)
		if b.Rev != unrelated {
			t.Fatalf("got revision %d, want the unrelated write %d: the client outside the step was sent the rollout's", b.Rev, unrelated)
		}
		v.apply(b)
	}
	if views[us].String() != "map[app/x:1 app/y:a]" || views[nobody].String() != "map[app/x:1 app/y:a]" {
		t.Fatalf("clients outside the step see %v and %v", views[us], views[nobody])
	}
	quiet(t, other)

	// A watch that starts now (a snapshot) or resumes before the start
	// sees what the live watch of the same client saw.
	for _, tc := range []struct {
		id    rollout.Identity
		since int64
		want  string
	}{
		{euClient, 0, "map[app/new:born app/x:2 app/y:a]"},
		{usClient, 0, "map[app/x:1 app/y:a]"},
		{euClient, start - 1, "map[app/new:born app/x:2 app/y:a]"},
		{usClient, start - 1, "map[app/x:1 app/y:a]"},
	} {
		w := watchAs(t, h, tc.id, tc.since)
		v := values{"app/x": "1"}
		for rev := int64(0); rev < unrelated; {
			b := next(t, w)
			v.apply(b)
			rev = b.Rev
		}
		if v.String() != tc.want {
			t.Errorf("%v since %d sees %v, want %v", tc.id.Labels, tc.since, v, tc.want)
		}
	}

	promote := record(t, st, rollout.Phase{State: rollout.StateActive}, rollout.Phase{State: rollout.StateActive, Step: 1})
	for _, w := range []*Watcher{us, nobody} {
		b := next(t, w)
		if b.Rev != promote || views[w].apply(b).String() != "map[app/new:born app/x:2 app/y:a]" {
			t.Fatalf("after promote to 100%% a client got %d: %v", b.Rev, views[w])
		}
	}
	done := record(t, st, rollout.Phase{State: rollout.StateActive, Step: 1}, rollout.Phase{State: rollout.StateComplete, Step: 1},
		audit.Put("app/x", []byte("2"), ""), audit.Put("app/new", []byte("born"), ""))
	for w, v := range views {
		b := next(t, w)
		if b.Rev != done || v.apply(b).String() != "map[app/new:born app/x:2 app/y:a]" {
			t.Fatalf("after complete a client got %d: %v", b.Rev, v)
		}
	}
	quiet(t, other)
}

func TestAnAbortPutsTheStepBackOnTheOldValues(t *testing.T) {
	for _, window := range []int{10_000, 0} { // replayed from memory, and from the store
		t.Run(fmt.Sprintf("window %d", window), func(t *testing.T) {
			st, h := setup(t, WithWindow(window))
			put(t, st, "app/x", "1")
			eu, us := watchAs(t, h, euClient, 0), watchAs(t, h, usClient, 0)
			ve, vu := values{}.apply(next(t, eu)), values{}.apply(next(t, us))
			record(t, st, rollout.Phase{}, rollout.Phase{State: rollout.StateActive})
			ve.apply(next(t, eu))
			abort := record(t, st, rollout.Phase{State: rollout.StateActive}, rollout.Phase{State: rollout.StateAborted})
			b := next(t, eu)
			if b.Rev != abort || ve.apply(b).String() != "map[app/x:1]" {
				t.Fatalf("the client in the step after the abort: %d %v", b.Rev, ve)
			}
			quiet(t, us)
			if vu.String() != "map[app/x:1]" {
				t.Fatalf("the client outside: %v", vu)
			}
			// Resumed from before the start, the client in the step goes
			// through the same views in the same revisions.
			w := watchAs(t, h, euClient, abort-2)
			v := values{"app/x": "1"}
			var seen []string
			for rev := int64(0); rev < abort; {
				b := next(t, w)
				seen = append(seen, fmt.Sprintf("%d:%v", b.Rev, v.apply(b)))
				rev = b.Rev
			}
			if want := fmt.Sprintf("[%d:map[app/new:born app/x:2] %d:map[app/x:1]]", abort-1, abort); fmt.Sprint(seen) != want {
				t.Fatalf("resumed: %v, want %v", seen, want)
			}
		})
	}
}

func TestAHubStartedDuringARolloutShowsItsStep(t *testing.T) {
	st, h := setup(t)
	put(t, st, "app/x", "1")
	record(t, st, rollout.Phase{}, rollout.Phase{State: rollout.StateActive})
	kv, err := st.Get(context.Background(), keyspace.RolloutKey(1))
	if err != nil {
		t.Fatal(err)
	}
	r, err := rollout.Decode(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	fresh := New(st, st.Rev(), WithRollouts([]*rollout.Rollout{r}))
	defer fresh.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for id, want := range map[*rollout.Identity]string{&euClient: "map[app/new:born app/x:2]", &usClient: "map[app/x:1]"} {
		w, err := fresh.Watch(ctx, Filter{Prefixes: []string{"app/"}}, 0, WithIdentity(*id))
		if err != nil {
			t.Fatal(err)
		}
		b, err := w.Next(ctx)
		w.Close()
		if got := (values{}).apply(b).String(); err != nil || got != want {
			t.Fatalf("%v: %v %v, want %v", id.Labels, got, err, want)
		}
	}
}
