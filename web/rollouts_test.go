package web_test

// Tests of the rollouts' pages over HTTP, with authentication on: what a
// reader and a writer of the scope see, the grants and CSRF check of an
// action, the live status's route, a secret's values, and the link from
// the request a rollout publishes.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
)

// startRolloutConfigd is startAuthConfigd with a master key, so that
// secret keys may be written.
func startRolloutConfigd(t *testing.T) *authConfigd {
	t.Helper()
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return startAuthConfigd(t, configdtest.WithCore(core.WithStoreOptions(audit.WithMasterKey(mk))))
}

// The clients of app/ the tests report: orders-eu-1-a is in the first
// step (zone=eu-1), orders-us-1-b is not.
var (
	inStep  = api.ClientReport{Instance: "orders-eu-1-a", Labels: map[string]string{"service": "orders", "zone": "eu-1"}, Prefixes: []string{"app/"}}
	outStep = api.ClientReport{Instance: "orders-us-1-b", Labels: map[string]string{"service": "orders", "zone": "us-1"}, Prefixes: []string{"app/"}}
)

// rollOut proposes ops under scope by alice, has bob approve them where
// a policy asks, and rolls them out to zone=eu-1, then everyone, with a
// bake of 10 minutes (no test waits that long), through
// the book the UI acts through; it returns the rollout.
func (c *authConfigd) rollOut(scope string, ops ...audit.Op) rollouts.Record {
	c.t.Helper()
	ctx := context.Background()
	reqs := requests.New(c.st)
	if _, err := reqs.SetPolicy(ctx, requests.Policy{Prefix: "app/", Approvals: 1}, "admin", "two-person rule"); err != nil {
		c.t.Fatal(err)
	}
	rq, err := reqs.Propose(ctx, requests.Draft{Scope: scope, Author: "alice", Reason: "raise limits", Ops: ops})
	if err != nil {
		c.t.Fatal(err)
	}
	if scope == "app/" {
		if _, err := reqs.Approve(ctx, rq.ID, "bob", ""); err != nil {
			c.t.Fatal(err)
		}
	}
	var steps []rollout.Step
	for _, s := range []string{"zone=eu-1", "100%"} {
		st, err := rollout.ParseStep(s)
		if err != nil {
			c.t.Fatal(err)
		}
		steps = append(steps, st)
	}
	rec, err := rollouts.New(c.st, reqs).Start(ctx, rollouts.Plan{Request: rq.ID, Steps: steps, Bake: 10 * time.Minute,
		Actor: "alice", Reason: "raise limits", AllowEmpty: true})
	if err != nil {
		c.t.Fatal(err)
	}
	return rec
}

// rollout returns rollout id as the book has it.
func (c *authConfigd) rollout(id int64) rollouts.Record {
	c.t.Helper()
	rec, err := rollouts.New(c.st, requests.New(c.st)).Get(context.Background(), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return rec
}

// report has the test's clients report app/: in the step, at rev; out
// of it, at the rollout's base.
func (c *authConfigd) report(rec rollouts.Record, rev int64) {
	in, out := inStep, outStep
	in.Rev, out.Rev = rev, rec.Base
	c.env.Clients.Report("reader-app", in)
	c.env.Clients.Report("reader-app", out)
}

func TestRolloutPagesFollowTheGrants(t *testing.T) {
	c := startRolloutConfigd(t)
	rec := c.rollOut("app/", audit.Put("app/limits", []byte(`{"rps": 100}`), "application/json"))
	c.report(rec, rec.Rev)
	id := itoa(rec.ID)
	reader := newUIClient(c)
	reader.loginAs("reader-app")

	// A reader of app/ sees the rollout in the list, with its step and
	// its counts, and the navigation.
	a := reader.get("/ui/rollouts")
	for _, want := range []string{`id="ro` + id + `"`, `id="nav-rollouts"`, "1/2 <code>zone=eu-1</code>", "1 of 1 applied, 0 rejected", "st-active"} {
		if a.status != http.StatusOK || !strings.Contains(a.body, want) {
			t.Errorf("rollouts page for a reader of app/: %d, want %q in\n%s", a.status, want, a.body)
		}
	}
	// Its page: the steps, the client in the step (not the other), the
	// change old → new, the log; no buttons.
	a = reader.get("/ui/rollouts/" + id)
	for _, want := range []string{"Rollout " + id, "<code>zone=eu-1</code>", "<code>100%</code>", "orders-eu-1-a", "service=orders, zone=eu-1",
		"1 of 1 clients applied, 0 rejected, 0 behind", "app/limits", htmlEscape(`"rps": 100`), "v-app/limits", `href="/ui/requests/`} {
		if a.status != http.StatusOK || !strings.Contains(a.body, want) {
			t.Errorf("rollout page for a reader of app/: %d, want %q in\n%s", a.status, want, a.body)
		}
	}
	if strings.Contains(a.body, "orders-us-1-b") || strings.Contains(a.body, `id="ro-actions"`) || strings.Contains(a.body, `id="ro-abort"`) {
		t.Errorf("the rollout page shows a client outside the step, or buttons to a reader:\n%s", a.body)
	}

	// It may not act: 403, the page says why, nothing changed.
	for _, action := range []string{"promote", "pause", "abort"} {
		a := reader.send(http.MethodPost, "/ui/rollouts/"+id+"/"+action, url.Values{"csrf": {reader.csrf()}})
		if a.status != http.StatusForbidden || !strings.Contains(a.body, `id="ro-error"`) || !strings.Contains(a.body, "needs write on its scope") {
			t.Errorf("%s by a reader: %d, want 403 with the refusal\n%s", action, a.status, a.body)
		}
	}
	if got := c.rollout(rec.ID); got.State != rollout.StateActive || got.Step != 0 {
		t.Errorf("after a reader's actions: %s at step %d, want active at 0", got.State, got.Step)
	}

	// The live part: JSON for the session, 401 without one.
	a = reader.get("/ui/rollouts/"+id+"/status.json", "Accept", "application/json")
	var st struct {
		State   string `json:"state"`
		InStep  int    `json:"in_step"`
		Applied int    `json:"applied"`
		Clients []struct {
			Instance, State string
		} `json:"clients"`
	}
	if err := json.Unmarshal([]byte(a.body), &st); a.status != http.StatusOK || err != nil || st.State != "active" || st.InStep != 1 ||
		st.Applied != 1 || len(st.Clients) != 1 || st.Clients[0].Instance != "orders-eu-1-a" || st.Clients[0].State != "applied" {
		t.Errorf("status.json: %d %v\n%s", a.status, err, a.body)
	}
	if a := newUIClient(c).get("/ui/rollouts/" + id + "/status.json"); a.status != http.StatusUnauthorized || strings.Contains(a.body, "orders-eu-1-a") {
		t.Errorf("status.json without a session: %d, want 401\n%s", a.status, a.body)
	}

	// The request it published links to it.
	if a := reader.get("/ui/requests/" + itoa(rec.Request)); !strings.Contains(a.body, `href="/ui/rollouts/`+id+`"`) {
		t.Errorf("the published request's page does not link its rollout:\n%s", a.body)
	}

	// A rollout of db/ is neither shown nor listed to a reader of app/.
	db := c.rollOut("db/", audit.Put("db/pool", []byte("9"), ""))
	for _, p := range []string{"/ui/rollouts/" + itoa(db.ID), "/ui/rollouts/" + itoa(db.ID) + "/status.json"} {
		if a := reader.get(p); a.status != http.StatusNotFound || strings.Contains(a.body, "db/pool") {
			t.Errorf("%s for a reader of app/: %d, want 404\n%s", p, a.status, a.body)
		}
	}
	if a := reader.get("/ui/rollouts"); strings.Contains(a.body, `id="ro`+itoa(db.ID)+`"`) {
		t.Errorf("the rollouts page lists a rollout of db/ to a reader of app/")
	}
}

func TestRolloutActionsNeedTheCSRFTokenAndWrite(t *testing.T) {
	c := startRolloutConfigd(t)
	rec := c.rollOut("app/", audit.Put("app/limits", []byte(`{"rps": 100}`), "application/json"))
	id := itoa(rec.ID)
	writer := newUIClient(c)
	writer.loginAs("writer-app")
	if a := writer.get("/ui/rollouts/" + id); !strings.Contains(a.body, `id="ro-promote"`) || !strings.Contains(a.body, `id="ro-pause"`) ||
		!strings.Contains(a.body, `id="ro-abort"`) || strings.Contains(a.body, `id="ro-resume"`) {
		t.Errorf("the buttons of an active rollout for a writer of app/:\n%s", a.body)
	}
	if a := writer.send(http.MethodPost, "/ui/rollouts/"+id+"/abort", url.Values{}); a.status != http.StatusForbidden || !strings.Contains(a.body, "CSRF") {
		t.Errorf("abort without the CSRF token: %d, want 403\n%s", a.status, a.body)
	}
	long := url.Values{"csrf": {writer.csrf()}, "text": {strings.Repeat("x", 4097)}}
	if a := writer.send(http.MethodPost, "/ui/rollouts/"+id+"/abort", long); a.status != http.StatusBadRequest || !strings.Contains(a.body, "longer than 4096 bytes") {
		t.Errorf("abort with a 4097-byte reason: %d, want 400\n%s", a.status, a.body)
	}
	if a := writer.send(http.MethodPost, "/ui/rollouts/"+id+"/complete", url.Values{"csrf": {writer.csrf()}}); a.status != http.StatusNotFound {
		t.Errorf("an action the page has no button for: %d, want 404\n%s", a.status, a.body)
	}
	if got := c.rollout(rec.ID); got.State != rollout.StateActive {
		t.Fatalf("after refused actions the rollout is %s", got.State)
	}

	// Pause, then the page offers Resume.
	a := writer.send(http.MethodPost, "/ui/rollouts/"+id+"/pause", url.Values{"csrf": {writer.csrf()}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/rollouts/"+id+"?done=pause" {
		t.Fatalf("pause: %d %s\n%s", a.status, a.header.Get("Location"), a.body)
	}
	if a := writer.get("/ui/rollouts/" + id + "?done=pause"); !strings.Contains(a.body, `id="ro-resume"`) || strings.Contains(a.body, `id="ro-pause"`) ||
		!strings.Contains(a.body, `id="ro-done"`) || !strings.Contains(a.body, "paused") {
		t.Errorf("the page of a paused rollout:\n%s", a.body)
	}

	// Abort with a reason: the record goes aborted, its log says who and why.
	a = writer.send(http.MethodPost, "/ui/rollouts/"+id+"/abort", url.Values{"csrf": {writer.csrf()}, "text": {"p99 up"}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("abort: %d\n%s", a.status, a.body)
	}
	got := c.rollout(rec.ID)
	last := got.Log[len(got.Log)-1]
	if got.State != rollout.StateAborted || last.Actor != "writer-app" || last.Text != "p99 up" {
		t.Errorf("after the abort: %s, last note %+v; want aborted by writer-app, \"p99 up\"", got.State, last)
	}
	// A finished rollout shows no buttons, and its book refuses another action.
	if a := writer.get("/ui/rollouts/" + id); strings.Contains(a.body, `id="ro-actions"`) {
		t.Errorf("an aborted rollout still shows its buttons")
	}
	a = writer.send(http.MethodPost, "/ui/rollouts/"+id+"/promote", url.Values{"csrf": {writer.csrf()}})
	if a.status != http.StatusConflict || !strings.Contains(a.body, `id="ro-error"`) {
		t.Errorf("promote of an aborted rollout: %d, want 409 with the book's refusal\n%s", a.status, a.body)
	}
}

func TestRolloutPageHidesSecrets(t *testing.T) {
	c := startRolloutConfigd(t)
	if _, err := c.st.Commit(context.Background(), audit.Txn{Actor: "alice", Ops: []audit.Op{audit.Put("app/db/password", []byte("hunter2"), "").AsSecret()}}); err != nil {
		t.Fatal(err)
	}
	rec := c.rollOut("app/", audit.Put("app/db/password", []byte("hunter3"), "").AsSecret())
	reader := newUIClient(c)
	reader.loginAs("reader-all")
	a := reader.get("/ui/rollouts/" + itoa(rec.ID))
	if a.status != http.StatusOK || !strings.Contains(a.body, "app/db/password") || !strings.Contains(a.body, "••••") ||
		strings.Contains(a.body, "hunter") {
		t.Errorf("rollout of a secret: %d, want its key and •••• but not its values\n%s", a.status, a.body)
	}
}

// TestRolloutPagePromotesTheVersionItShows: the page's forms carry the
// rollout's rev; two writers who press promote on the same page promote
// once, and the second sees the refusal on a fresh page.
func TestRolloutPagePromotesTheVersionItShows(t *testing.T) {
	c := startRolloutConfigd(t)
	rec := c.rollOut("app/", audit.Put("app/limits", []byte(`{"rps": 100}`), "application/json"))
	id := itoa(rec.ID)
	writer := newUIClient(c)
	writer.loginAs("writer-app")
	shown := itoa(rec.Rev)
	if a := writer.get("/ui/rollouts/" + id); !strings.Contains(a.body, `name="rev" value="`+shown+`"`) {
		t.Fatalf("the page's forms do not carry rev %s:\n%s", shown, a.body)
	}
	a := writer.send(http.MethodPost, "/ui/rollouts/"+id+"/promote", url.Values{"csrf": {writer.csrf()}, "rev": {shown}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("first promote: %d\n%s", a.status, a.body)
	}
	promoted := c.rollout(rec.ID)
	a = writer.send(http.MethodPost, "/ui/rollouts/"+id+"/promote", url.Values{"csrf": {writer.csrf()}, "rev": {shown}})
	if a.status != http.StatusConflict || !strings.Contains(a.body, "moved on") || !strings.Contains(a.body, `name="rev" value="`+itoa(promoted.Rev)+`"`) {
		t.Errorf("second promote of rev %s: %d, want 409 saying it moved on, on a page at rev %d\n%s", shown, a.status, promoted.Rev, a.body)
	}
	if got := c.rollout(rec.ID); got.Step != promoted.Step || got.Rev != promoted.Rev {
		t.Errorf("promoted twice: step %d rev %d, want step %d rev %d", got.Step, got.Rev, promoted.Step, promoted.Rev)
	}
	a = writer.send(http.MethodPost, "/ui/rollouts/"+id+"/pause", url.Values{"csrf": {writer.csrf()}, "rev": {"soon"}})
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "is not a revision") {
		t.Errorf("a bad rev: %d, want 400\n%s", a.status, a.body)
	}
}
