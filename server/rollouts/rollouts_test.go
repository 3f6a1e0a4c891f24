package rollouts_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
)

// world is a store with its requests and rollouts, on a clock the test
// moves.
type world struct {
	t    *testing.T
	st   *audit.Store
	reqs *requests.Book
	b    *rollouts.Book
	now  time.Time
	mu   sync.Mutex
}

func newWorld(t *testing.T, st *audit.Store) *world {
	w := &world{t: t, st: st, now: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)}
	w.reqs = requests.New(st)
	w.b = rollouts.New(st, w.reqs, rollouts.WithClock(w.clock))
	return w
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
}

func (w *world) put(kvs ...string) int64 {
	w.t.Helper()
	var ops []audit.Op
	for i := 0; i+1 < len(kvs); i += 2 {
		ops = append(ops, audit.Put(kvs[i], []byte(kvs[i+1]), ""))
	}
	return configdtest.Commit(w.t, w.st, audit.Txn{Actor: "test", Ops: ops})
}

// propose proposes a request of puts under app/ by alice.
func (w *world) propose(kvs ...string) int64 {
	w.t.Helper()
	var ops []audit.Op
	for i := 0; i+1 < len(kvs); i += 2 {
		ops = append(ops, audit.Put(kvs[i], []byte(kvs[i+1]), ""))
	}
	rq, err := w.reqs.Propose(context.Background(), requests.Draft{Scope: "app/", Author: "alice", Reason: "raise limits", Ops: ops})
	if err != nil {
		w.t.Fatal(err)
	}
	return rq.ID
}

func steps(t *testing.T, ss ...string) []rollout.Step {
	t.Helper()
	var out []rollout.Step
	for _, s := range ss {
		st, err := rollout.ParseStep(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

func (w *world) plan(req int64, ss ...string) rollouts.Plan {
	return rollouts.Plan{Request: req, Steps: steps(w.t, ss...), Actor: "alice", AllowEmpty: true}
}

func (w *world) start(p rollouts.Plan) rollouts.Record {
	w.t.Helper()
	rec, err := w.b.Start(context.Background(), p)
	if err != nil {
		w.t.Fatalf("start: %v", err)
	}
	return rec
}

func (w *world) value(key string) string {
	w.t.Helper()
	kv, err := w.st.Get(context.Background(), key)
	if errors.Is(err, audit.ErrNotFound) {
		return "<none>"
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return string(kv.Value)
}

// TestStartKeepsTheStoreOldAndPublishesTheRequest: a rollout's start is
// one revision that writes its record (old values from the store, new
// ones from the request) and leaves the keys as they were; the request is
// published by that revision.
func TestStartKeepsTheStoreOldAndPublishesTheRequest(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/limits", "1", "app/other", "x")
	id := w.propose("app/limits", "2", "app/new", "n")
	before := w.st.Rev()
	rec := w.start(w.plan(id, "zone=eu-1", "10%", "100%"))
	// One revision starts it, the next marks the request published by it.
	if rec.Rev != before+1 || w.st.Rev() != before+2 {
		t.Fatalf("start at revision %d (store at %d), want %d", rec.Rev, w.st.Rev(), before+1)
	}
	if w.value("app/limits") != "1" || w.value("app/new") != "<none>" {
		t.Fatalf("the store changed: app/limits=%s app/new=%s", w.value("app/limits"), w.value("app/new"))
	}
	got, err := w.b.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != rollout.StateActive || got.Step != 0 || got.From.State != "" || got.Scope != "app/" || got.Request != id || got.Rev != rec.Rev {
		t.Fatalf("record: %+v", got.Rollout)
	}
	byKey := map[string]rollout.Change{}
	for _, c := range got.Changes {
		byKey[c.Key] = c
	}
	if c := byKey["app/limits"]; c.Old == nil || string(c.Old.Value) != "1" || c.New == nil || string(c.New.Value) != "2" {
		t.Errorf("app/limits: %+v", c)
	}
	if c := byKey["app/new"]; c.Old != nil || c.New == nil || string(c.New.Value) != "n" {
		t.Errorf("app/new: %+v", c)
	}
	rq, _, err := w.reqs.Get(ctx, id)
	if err != nil || rq.State != requests.StatePublished || rq.PublishedRev != rec.Rev || rq.Rollout != rec.ID {
		t.Fatalf("request after start: %+v, %v", rq, err)
	}
	if _, err := w.b.Start(ctx, w.plan(id, "10%")); !errors.Is(err, audit.ErrConflict) {
		t.Errorf("a second start of the published request: %v, want a conflict", err)
	}
}

// TestCompleteWritesTheNewValuesAndTheRecordInOneRevision: complete (by
// hand, or promote past the last step) writes the keys and the record in
// one revision, frees the keys, and a finished rollout takes no action.
func TestCompleteWritesTheNewValuesAndTheRecordInOneRevision(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/limits", "1")
	rec := w.start(w.plan(w.propose("app/limits", "2"), "10%", "100%"))
	p, err := w.b.Promote(ctx, rec.ID, "bob", "looks good")
	if err != nil || p.Step != 1 || p.From != (rollout.Phase{State: rollout.StateActive, Step: 0}) || w.value("app/limits") != "1" {
		t.Fatalf("promote: %+v, %v (app/limits=%s)", p.Rollout, err, w.value("app/limits"))
	}
	if len(p.StepRevs) != 1 || p.StepRevs[0] != rec.Rev {
		t.Errorf("step revisions after promote: %v, want [%d]", p.StepRevs, rec.Rev)
	}
	c, err := w.b.Promote(ctx, rec.ID, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.State != rollout.StateComplete || c.From.Step != 1 || w.value("app/limits") != "2" || w.st.Rev() != c.Rev {
		t.Fatalf("promote past the last step: %+v at %d, store at %d, app/limits=%s", c.Phase, c.Rev, w.st.Rev(), w.value("app/limits"))
	}
	revn, err := w.st.Revision(ctx, c.Rev)
	if err != nil || revn.Origin != rollouts.Origin || !strings.HasPrefix(revn.Reason, fmt.Sprintf("rollout %d: ", rec.ID)) || revn.NumChanges != 3 {
		t.Errorf("the completing revision: %+v, %v; want the key, the record and the index in it", revn, err)
	}
	if got := c.Log[len(c.Log)-1]; got.Actor != "bob" || got.Action != rollouts.ActionPromote {
		t.Errorf("log: %+v", c.Log)
	}
	for name, act := range map[string]func(context.Context, int64, string, string) (rollouts.Record, error){
		"promote": w.b.Promote, "pause": w.b.Pause, "resume": w.b.Resume, "abort": w.b.Abort, "complete": w.b.Complete,
	} {
		if _, err := act(ctx, rec.ID, "bob", ""); !errors.Is(err, audit.ErrConflict) {
			t.Errorf("%s of a complete rollout: %v, want a conflict", name, err)
		}
	}
	if _, err := w.b.Abort(ctx, 99, "bob", ""); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("abort of no rollout: %v", err)
	}
}

// TestAbortRewritesTheRecordAloneAndFreesTheKeys: abort is one revision
// of the record (and the index); the store keeps the old values, and the
// keys take direct writes and new rollouts again.
func TestAbortRewritesTheRecordAloneAndFreesTheKeys(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/limits", "1")
	rec := w.start(w.plan(w.propose("app/limits", "2"), "10%"))
	if _, err := w.b.Pause(ctx, rec.ID, "bob", "weekend"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.b.Pause(ctx, rec.ID, "bob", ""); !errors.Is(err, audit.ErrConflict) {
		t.Errorf("pause of a paused rollout: %v", err)
	}
	a, err := w.b.Abort(ctx, rec.ID, "bob", "errors in eu-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != rollout.StateAborted || a.From.State != rollout.StatePaused || w.value("app/limits") != "1" {
		t.Fatalf("abort: %+v, app/limits=%s", a.Rollout, w.value("app/limits"))
	}
	revn, err := w.st.Revision(ctx, a.Rev)
	if err != nil || revn.NumChanges != 2 || revn.Actor != "bob" {
		t.Errorf("abort's revision: %+v, %v; want the record and the index", revn, err)
	}
	if _, err := w.st.Get(ctx, keyspace.RolloutsActiveKey); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("the index after the last rollout ended: %v", err)
	}
	g := rollouts.NewGuard(w.st)
	if err := g.CheckTxn(ctx, audit.Txn{Ops: []audit.Op{audit.Put("app/limits", []byte("3"), "")}}); err != nil {
		t.Errorf("a write after the abort: %v", err)
	}
	w.start(w.plan(w.propose("app/limits", "4"), "50%"))
}

// TestTwoRolloutsOverACommonKeyAreRefused: a rollout over a key another
// running rollout changes is refused, naming it; of starts racing over
// one key, exactly one wins.
func TestTwoRolloutsOverACommonKeyAreRefused(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/a", "1", "app/b", "1")
	first := w.start(w.plan(w.propose("app/a", "2"), "10%"))
	_, err := w.b.Start(ctx, w.plan(w.propose("app/a", "3", "app/b", "3"), "10%"))
	if !errors.Is(err, rollouts.ErrRolloutConflict) || !strings.Contains(err.Error(), fmt.Sprintf("rollout %d", first.ID)) {
		t.Fatalf("a second rollout over app/a: %v", err)
	}
	w.start(w.plan(w.propose("app/b", "2"), "10%")) // another key: fine

	w.put("app/c", "1")
	const n = 5
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = w.propose("app/c", fmt.Sprint(i+2))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = w.b.Start(ctx, w.plan(ids[i], "10%")) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, rollouts.ErrRolloutConflict):
			t.Errorf("a racing start: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d racing starts over app/c won, want 1 (%v)", won, errs)
	}
}

// TestBadPlansAreRefused: a percentage outside 0–100, no step, a negative
// bake, limits that are no percentage and a query without its Prometheus
// are refused as bad requests, and nothing is written.
func TestBadPlansAreRefused(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/a", "1")
	id := w.propose("app/a", "2")
	rev := w.st.Rev()
	for name, p := range map[string]rollouts.Plan{
		"150%":         {Request: id, Steps: []rollout.Step{{Percent: 150}}},
		"-5%":          {Request: id, Steps: []rollout.Step{{Percent: -5}}},
		"no step":      {Request: id},
		"bake":         {Request: id, Steps: []rollout.Step{{Percent: 10}}, Bake: -time.Second},
		"max errors":   {Request: id, Steps: []rollout.Step{{Percent: 10}}, MaxErrors: 101},
		"abort errors": {Request: id, Steps: []rollout.Step{{Percent: 10}}, AbortOnErrors: -1},
		"query alone":  {Request: id, Steps: []rollout.Step{{Percent: 10}}, AbortQuery: "up == 0"},
	} {
		p.AllowEmpty = true
		if _, err := w.b.Start(ctx, p); !errors.Is(err, audit.ErrBadRequest) {
			t.Errorf("%s: %v, want a bad request", name, err)
		}
	}
	if _, err := w.b.Start(ctx, w.plan(42, "10%")); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("a rollout of no request: %v", err)
	}
	if w.st.Rev() != rev {
		t.Errorf("refused plans wrote revisions %d..%d", rev+1, w.st.Rev())
	}
}

// TestAnEmptyFirstStepIsRefusedUnlessAllowed: a first step that holds
// none of the connected clients that watch the keys is refused, saying
// how many were considered, unless AllowEmpty.
func TestAnEmptyFirstStepIsRefusedUnlessAllowed(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/a", "1")
	id := w.propose("app/a", "2")
	clients := []api.ClientStatus{
		{Instance: "pod-1", Labels: map[string]string{"zone": "us-1"}, Prefixes: []string{"app/"}},
		{Instance: "pod-2", Labels: map[string]string{"zone": "us-2"}, Prefixes: []string{"app/a"}},
		{Instance: "pod-3", Labels: map[string]string{"zone": "eu-1"}, Prefixes: []string{"db/"}}, // not watching
	}
	p := rollouts.Plan{Request: id, Steps: steps(t, "zone=eu-1"), Actor: "alice", Clients: clients}
	_, err := w.b.Start(ctx, p)
	if !errors.Is(err, rollouts.ErrEmptySelection) || !strings.Contains(err.Error(), "none of the 2 connected") || !strings.Contains(err.Error(), "--allow-empty") {
		t.Fatalf("an empty first step: %v", err)
	}
	p.Steps = steps(t, "zone=us-2")
	w.start(p)
	id2 := w.propose("app/b", "2")
	w.start(rollouts.Plan{Request: id2, Steps: steps(t, "zone=eu-1"), Actor: "alice", Clients: clients, AllowEmpty: true})
}

// TestStartRefusesWhatPublishRefuses: a stale request, and one short of
// its policy's approvals, cannot be rolled out, as they cannot be
// published.
func TestStartRefusesWhatPublishRefuses(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/a", "1")
	id := w.propose("app/a", "2")
	w.put("app/a", "5")
	if _, err := w.b.Start(ctx, w.plan(id, "10%")); !errors.Is(err, requests.ErrStale) {
		t.Errorf("a stale request: %v", err)
	}
	if _, err := w.reqs.SetPolicy(ctx, requests.Policy{Prefix: "app/", Approvals: 1}, "root", ""); err != nil {
		t.Fatal(err)
	}
	id = w.propose("app/b", "2")
	if _, err := w.b.Start(ctx, w.plan(id, "10%")); !errors.Is(err, requests.ErrNotApproved) {
		t.Errorf("an unapproved request: %v", err)
	}
	if _, err := w.reqs.Approve(ctx, id, "bob", ""); err != nil {
		t.Fatal(err)
	}
	w.start(w.plan(id, "10%"))
}

// TestAKeyOfASourceAboveTheStoreIsRefused: the store refuses to change a
// key a source above it defines, and so does a rollout of it.
func TestAKeyOfASourceAboveTheStoreIsRefused(t *testing.T) {
	st := configdtest.Core(t, core.WithStoreOptions(audit.WithLayers(audit.StoreLayer, "files"))).Store
	w := newWorld(t, st)
	ctx := context.Background()
	if _, err := st.ApplySource(ctx, "files", map[string]audit.LayerValue{"app/a": {Value: []byte("1"), ContentType: audit.TypeText}}); err != nil {
		t.Fatal(err)
	}
	id := w.propose("app/a", "2")
	var oe *audit.OwnedError
	if _, err := w.b.Start(ctx, w.plan(id, "10%")); !errors.As(err, &oe) || oe.Layer != "files" {
		t.Fatalf("a rollout of a key of files: %v", err)
	}
	if _, err := st.Get(ctx, keyspace.RolloutKey(1)); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("a refused start left a record: %v", err)
	}
}

// TestAStartMakesNoChangeToItsKeys: the start's conditions on the keys
// (a put of the value a key holds, a delete of a key that does not exist)
// change none of them, a secret's included.
func TestAStartMakesNoChangeToItsKeys(t *testing.T) {
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	st := configdtest.Core(t, core.WithStoreOptions(audit.WithMasterKey(mk), audit.WithLayers("defaults", audit.StoreLayer))).Store
	w := newWorld(t, st)
	ctx := context.Background()
	if _, err := st.ApplySource(ctx, "defaults", map[string]audit.LayerValue{"app/d": {Value: []byte("d"), ContentType: audit.TypeText}}); err != nil {
		t.Fatal(err)
	}
	p := audit.Put("app/pw", []byte("hunter2"), "").AsSecret()
	configdtest.Commit(t, st, audit.Txn{Actor: "test", Ops: []audit.Op{p, audit.Put("app/a", []byte("1"), "")}})
	before := map[string]audit.KeyValue{}
	for _, k := range []string{"app/pw", "app/a", "app/d"} {
		before[k], _ = st.Get(ctx, k)
	}
	rq, err := w.reqs.Propose(ctx, requests.Draft{Scope: "app/", Author: "alice", Ops: []audit.Op{
		audit.Put("app/pw", []byte("hunter3"), ""), audit.Put("app/a", []byte("2"), ""), audit.Put("app/d", []byte("e"), ""),
		audit.Put("app/new", []byte("n"), ""), audit.Delete("app/gone")}})
	if err != nil {
		t.Fatal(err)
	}
	rec := w.start(w.plan(rq.ID, "10%"))
	revn, err := st.Revision(ctx, rec.Rev)
	if err != nil || revn.NumChanges != 2 {
		t.Fatalf("start's revision: %+v, %v; want the record and the index alone", revn, err)
	}
	for k, kv := range before {
		if now, _ := st.Get(ctx, k); now.ModRev != kv.ModRev || string(now.Value) != string(kv.Value) {
			t.Errorf("%s moved: %+v → %+v", k, kv, now)
		}
	}
	if st.IsSecret("app/pw") != true || !st.IsSecret(keyspace.RolloutKey(rec.ID)) {
		t.Errorf("the record of a rollout that holds a secret's values is not secret")
	}
	ch, err := w.b.Changes(rec.Rollout)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ch {
		if c.Key == "app/pw" && (c.Old.Value != nil || c.New.Value != nil || c.New.Hash == "") {
			t.Errorf("a secret's change is not withheld: %+v %+v", c.Old, c.New)
		}
	}
	if _, err := w.b.Complete(ctx, rec.ID, "bob", ""); err != nil {
		t.Fatal(err)
	}
	if kv, _ := st.Get(ctx, "app/pw"); string(kv.Value) != "hunter3" || !kv.Secret {
		t.Errorf("app/pw after complete: %+v", kv)
	}
}

// TestGuardRefusesDirectWritesOfARunningRolloutsKeys: while a rollout
// runs, a write, transaction or rollback that reaches one of its keys is
// refused naming the rollout; others pass.
func TestGuardRefusesDirectWritesOfARunningRolloutsKeys(t *testing.T) {
	w := newWorld(t, configdtest.Core(t).Store)
	ctx := context.Background()
	w.put("app/a", "1", "app/b", "1")
	rec := w.start(w.plan(w.propose("app/a", "2"), "10%"))
	g := rollouts.NewGuard(w.st)
	err := g.CheckTxn(ctx, audit.Txn{Ops: []audit.Op{audit.Put("app/b", nil, ""), audit.Delete("app/a")}})
	want := fmt.Sprintf("app/a is in rollout %d: configctl rollout abort %d or complete it first", rec.ID, rec.ID)
	if !errors.Is(err, rollouts.ErrRolloutActive) || err.Error() != want {
		t.Fatalf("a txn over app/a: %v", err)
	}
	if err := g.CheckTxn(ctx, audit.Txn{Ops: []audit.Op{audit.Put("app/b", nil, "")}}); err != nil {
		t.Errorf("a write of app/b: %v", err)
	}
	if err := g.CheckTxn(ctx, audit.Txn{Ops: []audit.Op{audit.Put("app/a", []byte("1"), "")}}); err != nil {
		t.Errorf("a write of app/a that changes nothing: %v", err)
	}
	for _, sc := range []audit.Scope{{Prefix: "app/"}, {Prefix: ""}, {Key: "app/a"}} {
		if err := g.CheckRollback(ctx, audit.RollbackRequest{Scope: sc, To: 1}); !errors.Is(err, rollouts.ErrRolloutActive) {
			t.Errorf("a rollback of %+v: %v", sc, err)
		}
	}
	if err := g.CheckRollback(ctx, audit.RollbackRequest{Scope: audit.Scope{Key: "app/b"}, To: 1}); err != nil {
		t.Errorf("a rollback of app/b: %v", err)
	}
	// A write that came in anyway (a source's, say) makes complete refuse.
	w.put("app/a", "9")
	if _, err := w.b.Complete(ctx, rec.ID, "bob", ""); !errors.Is(err, requests.ErrStale) || w.value("app/a") != "9" {
		t.Errorf("complete over a moved key: %v (app/a=%s)", err, w.value("app/a"))
	}
}
