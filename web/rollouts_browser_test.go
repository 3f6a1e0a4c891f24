package web_test

// Rollouts in a real browser: from the navigation to a rollout's page,
// whose convergence follows the clients' reports live, and its Abort
// button; a reader sees no buttons and is refused a post.

import (
	"fmt"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/rollout"
)

// TestBrowserRolloutConvergesLiveAndAborts: alice's change of app/limits
// is rolled out to zone=eu-1 first. writer-app finds it from the
// navigation; its page shows the client of eu-1 behind, then, without a
// reload, applied once it reports so (and its neighbour's rejection);
// Abort puts the record in state aborted and the buttons go.
func TestBrowserRolloutConvergesLiveAndAborts(t *testing.T) {
	c := startRolloutConfigd(t)
	rec := c.rollOut("app/", audit.Put("app/limits", []byte(`{"rps": 100, "burst": 20}`), "application/json"))
	c.report(rec, rec.Base) // in the step, not applied yet
	tb := newTab(t)
	tb.open(c.URL + "/ui/")
	tb.logIn(c.secrets["writer-app"])
	tb.onTimeline()

	tb.click("#nav-rollouts")
	row := fmt.Sprintf("#ro%d", rec.ID)
	tb.waitJS("the rollout's row", fmt.Sprintf(`document.querySelector(%q) !== null && document.body.dataset.ready === "true"`, row))
	for _, want := range []string{"active", "app/", "1/2", "zone=eu-1", "0 of 1 applied", "alice"} {
		if got := tb.text(row); !strings.Contains(got, want) {
			t.Errorf("rollouts row = %q, want %q in it", got, want)
		}
	}
	tb.click(row + " a")
	tb.waitJS("the rollout page", fmt.Sprintf(`document.querySelector("h1") !== null && document.querySelector("h1").textContent === "Rollout %d" && document.body.dataset.ready === "true"`, rec.ID))
	if got := tb.text("#ro-counts"); got != "0 of 1 clients applied, 0 rejected, 1 behind" {
		t.Errorf("counts before the report = %q", got)
	}
	if got := tb.text("#ro-clients"); !strings.Contains(got, "orders-eu-1-a") || !strings.Contains(got, "behind") || strings.Contains(got, "orders-us-1-b") {
		t.Errorf("clients in the step = %q, want orders-eu-1-a behind and not orders-us-1-b", got)
	}

	// The client applies the rollout's revision, a second one of eu-1
	// rejects it: the page follows without a reload.
	c.report(rec, rec.Rev)
	c.env.Clients.Report("reader-app", api.ClientReport{Instance: "orders-eu-1-c", Labels: map[string]string{"service": "orders", "zone": "eu-1"},
		Prefixes: []string{"app/"}, Rev: rec.Rev, Rejections: []api.ClientRejection{{Key: "app/limits", Rev: rec.Rev, Error: "burst must be <= rps/10"}}})
	tb.waitJS("the live convergence", `document.getElementById("ro-counts").textContent === "2 of 2 clients applied, 1 rejected, 0 behind"`)
	if got := tb.text("#ro-clients"); !strings.Contains(got, "orders-eu-1-c") || !strings.Contains(got, "burst must be <= rps/10") {
		t.Errorf("clients in the step after the reports = %q, want orders-eu-1-c's rejection", got)
	}
	if got := tb.text(`tr.ro-step[data-n="1"]`); !strings.Contains(got, "current") || !strings.Contains(got, "zone=eu-1") {
		t.Errorf("first step's row = %q", got)
	}
	tb.waitJS("the live status", `document.getElementById("ro-live").className === "live on"`)
	tb.screenshot("rollout.png")

	tb.typeInto("#ro-abort-why", "burst rejected in eu-1")
	tb.click("#ro-abort")
	tb.waitJS("the abort", `document.getElementById("ro-done") !== null && document.body.dataset.ready === "true"`)
	if got := tb.text("#ro-state"); got != "aborted" {
		t.Errorf("state after the abort = %q, want aborted", got)
	}
	if eval[bool](tb, `document.getElementById("ro-actions") !== null`) {
		t.Error("an aborted rollout still shows its buttons")
	}
	got := c.rollout(rec.ID)
	if last := got.Log[len(got.Log)-1]; got.State != rollout.StateAborted || last.Actor != "writer-app" || last.Text != "burst rejected in eu-1" {
		t.Errorf("record after the abort: %s, last note %+v", got.State, last)
	}
}

// TestBrowserRolloutReaderHasNoButtons: a reader of app/ sees the rollout
// and no buttons; a post with the page's own CSRF token is refused 403
// and the rollout goes on.
func TestBrowserRolloutReaderHasNoButtons(t *testing.T) {
	c := startRolloutConfigd(t)
	rec := c.rollOut("app/", audit.Put("app/limits", []byte(`{"rps": 100}`), "application/json"))
	tb := newTab(t)
	tb.open(fmt.Sprintf("%s/ui/rollouts/%d", c.URL, rec.ID))
	tb.logIn(c.secrets["reader-app"])
	tb.waitJS("the rollout page", `document.getElementById("ro-status") !== null && document.body.dataset.ready === "true"`)
	if eval[bool](tb, `document.querySelector("#ro-actions, #ro-promote, #ro-pause, #ro-abort") !== null`) {
		t.Error("a reader sees the rollout's buttons")
	}
	status := eval[int](tb, fmt.Sprintf(`fetch("/ui/rollouts/%d/abort", {method: "POST", credentials: "same-origin",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf=" + encodeURIComponent(document.body.dataset.csrf)}).then(r => r.status)`, rec.ID))
	if status != 403 {
		t.Errorf("a reader's abort from the page: %d, want 403", status)
	}
	if got := c.rollout(rec.ID); got.State != rollout.StateActive {
		t.Errorf("after a reader's abort the rollout is %s", got.State)
	}
}
