package web_test

// Change requests and the delivery table in a real browser: the review
// walk from the request's page to the published revision, a refused
// approval, and the clients of a prefix.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/configd/configd/api"
)

// TestBrowserApproveAndPublishARequest: alice proposes a change of
// app/limits (through the book the API uses); writer-app logs in, finds it
// from the navigation, reads its diff, approves it and publishes it; the
// value lands in one revision by writer-app. The clients page then shows
// who applied it.
func TestBrowserApproveAndPublishARequest(t *testing.T) {
	c := startAuthConfigd(t)
	id := c.propose("alice", `{"rps": 100, "burst": 20}`)
	tb := newTab(t)
	tb.open(c.URL + "/ui/")
	tb.logIn(c.secrets["writer-app"])
	tb.onTimeline()

	tb.click("#nav-requests")
	row := fmt.Sprintf("#q%d", id)
	tb.waitJS("the request's row", fmt.Sprintf(`document.querySelector(%q) !== null && document.body.dataset.ready === "true"`, row))
	for _, want := range []string{"open", "app/", "alice", "raise limits", "0 of 1"} {
		if got := tb.text(row); !strings.Contains(got, want) {
			t.Errorf("requests row = %q, want %q in it", got, want)
		}
	}
	tb.click(row + " a")
	tb.waitJS("the request page", fmt.Sprintf(`document.querySelector("h1") !== null && document.querySelector("h1").textContent === "Request %d" && document.body.dataset.ready === "true"`, id))
	tb.waitJS("the diff", `document.querySelector(".dl.add") !== null && document.querySelector(".dl.del") !== null`)

	tb.click("#req-approve")
	tb.waitJS("the approval", `document.getElementById("req-done") !== null && document.body.dataset.ready === "true"`)
	if got := tb.text("#req-state"); got != "approved" {
		t.Errorf("state after the approval = %q, want approved", got)
	}
	if got := tb.text("#req-approvals"); !strings.Contains(got, "1 of 1") || !strings.Contains(got, "writer-app") {
		t.Errorf("approvals = %q, want 1 of 1 by writer-app", got)
	}
	tb.screenshot("request.png")

	tb.click("#req-publish")
	tb.waitJS("the publish", `document.getElementById("req-published") !== null && document.body.dataset.ready === "true"`)
	rq := c.request(id)
	if rq.State != "published" || rq.PublishedRev == 0 {
		t.Fatalf("request after publish: state %s, rev %d", rq.State, rq.PublishedRev)
	}
	rev, err := c.st.Revision(context.Background(), rq.PublishedRev)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := c.st.Get(context.Background(), "app/limits")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Actor != "writer-app" || rev.Reason != fmt.Sprintf("request %d: raise limits", id) || kv.ModRev != rq.PublishedRev ||
		string(kv.Value) != `{"rps": 100, "burst": 20}` {
		t.Errorf("published rev %d by %q (%q), app/limits = %s at rev %d; want the draft, by writer-app", rev.Rev, rev.Actor, rev.Reason, kv.Value, kv.ModRev)
	}
	if eval[bool](tb, `document.getElementById("req-actions") !== null`) {
		t.Error("a published request still shows its action buttons")
	}

	// The clients of app/: one applied the published revision, one is
	// behind and rejected it.
	c.env.Clients.Report("reader-app", api.ClientReport{Instance: "orders-eu-1-a", Labels: map[string]string{"service": "orders", "zone": "eu-1"},
		Prefixes: []string{"app/"}, Rev: rq.PublishedRev})
	c.env.Clients.Report("reader-app", api.ClientReport{Instance: "orders-us-1-b", Labels: map[string]string{"service": "orders", "zone": "us-1"},
		Prefixes: []string{"app/"}, Rev: c.appRev,
		Rejections: []api.ClientRejection{{Key: "app/limits", Rev: rq.PublishedRev, Error: "burst must be <= rps/10"}}})
	tb.click("#nav-clients")
	tb.waitJS("the clients page", `document.getElementById("clients-prefix") !== null && document.body.dataset.ready === "true"`)
	tb.typeInto("#clients-prefix", "app/")
	tb.click(".filters button")
	tb.waitJS("the clients of app/", `document.querySelectorAll(".client-row").length === 2`)
	if got := tb.text("table.clients"); !strings.Contains(got, "orders-us-1-b") || !strings.Contains(got, "burst must be <= rps/10") ||
		!strings.Contains(got, fmt.Sprintf("r%d", rq.PublishedRev)) {
		t.Errorf("clients table:\n%s", got)
	}
	tb.screenshot("clients.png")
}

// TestBrowserOwnApprovalIsRefused: the author's own approval is refused by
// the book, and the page shows its message; nothing is recorded.
func TestBrowserOwnApprovalIsRefused(t *testing.T) {
	c := startAuthConfigd(t)
	id := c.propose("writer-app", `{"rps": 100}`)
	tb := newTab(t)
	tb.open(fmt.Sprintf("%s/ui/requests/%d", c.URL, id))
	tb.logIn(c.secrets["writer-app"])
	tb.waitJS("the request page", `document.getElementById("req-approve") !== null && document.body.dataset.ready === "true"`)
	tb.click("#req-approve")
	tb.waitJS("the refusal", `document.getElementById("req-error") !== null && document.body.dataset.ready === "true"`)
	if got, want := tb.text("#req-error"), fmt.Sprintf("writer-app wrote request %d; another person must approve it", id); got != want {
		t.Errorf("refusal = %q, want %q", got, want)
	}
	if got := tb.text("#req-state"); got != "open" {
		t.Errorf("state = %q, want open", got)
	}
	if rq := c.request(id); len(rq.Approvals) != 0 {
		t.Errorf("approvals = %v, want none", rq.Approvals)
	}
}
