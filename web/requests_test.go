package web_test

// Tests of the change requests' and clients' pages over HTTP, with
// authentication on: the grants an action needs, the CSRF check of its
// form, and who may see the delivery table of a prefix.

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/requests"
)

// propose drafts a request of app/limits by author through the book the
// API uses, under a policy of one approval on app/, and returns its id.
func (c *authConfigd) propose(author, value string) int64 {
	c.t.Helper()
	ctx := context.Background()
	book := requests.New(c.st)
	if _, err := book.SetPolicy(ctx, requests.Policy{Prefix: "app/", Approvals: 1}, "admin", "two-person rule"); err != nil {
		c.t.Fatal(err)
	}
	rq, err := book.Propose(ctx, requests.Draft{Scope: "app/", Author: author, Reason: "raise limits",
		Ops: []audit.Op{audit.Put("app/limits", []byte(value), "application/json")}})
	if err != nil {
		c.t.Fatal(err)
	}
	return rq.ID
}

// request returns request id as the book has it.
func (c *authConfigd) request(id int64) requests.Request {
	c.t.Helper()
	rq, _, err := requests.New(c.st).Get(context.Background(), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return rq
}

// act posts an action of a request's page, with the page's CSRF token
// when csrf.
func (u *uiClient) act(id int64, action string, csrf bool) answer {
	u.c.t.Helper()
	form := url.Values{}
	if csrf {
		form.Set("csrf", u.csrf())
	}
	return u.send(http.MethodPost, "/ui/requests/"+itoa(id)+"/"+action, form)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRequestPagesFollowTheGrants(t *testing.T) {
	c := startAuthConfigd(t)
	id := c.propose("alice", `{"rps":100}`)
	reader := newUIClient(c)
	reader.loginAs("reader-app")

	// A reader of app/ sees the request, its diff and the navigation.
	if a := reader.get("/ui/requests"); a.status != http.StatusOK || !strings.Contains(a.body, `id="q`+itoa(id)+`"`) ||
		!strings.Contains(a.body, "0 of 1") || !strings.Contains(a.body, `id="nav-requests"`) {
		t.Errorf("requests page for a reader of app/: %d\n%s", a.status, a.body)
	}
	if a := reader.get("/ui/requests/" + itoa(id)); a.status != http.StatusOK || !strings.Contains(a.body, "app/limits") ||
		!strings.Contains(a.body, htmlEscape(`"rps": 100`)) {
		t.Errorf("request page for a reader of app/: %d\n%s", a.status, a.body)
	}

	// It may not approve, publish or close it: 403, the page says why,
	// and nothing changed.
	for _, action := range []string{"approve", "publish", "close"} {
		a := reader.act(id, action, true)
		if a.status != http.StatusForbidden || !strings.Contains(a.body, `id="req-error"`) ||
			!strings.Contains(a.body, "needs write on every key it changes") {
			t.Errorf("%s by a reader: %d, want 403 with the refusal\n%s", action, a.status, a.body)
		}
	}
	if rq := c.request(id); len(rq.Approvals) != 0 || rq.State != requests.StateOpen {
		t.Errorf("after a reader's actions: approvals %v, state %s; want none, open", rq.Approvals, rq.State)
	}

	// A request of db/ is not found for a reader of app/, nor listed.
	book := requests.New(c.st)
	db, err := book.Propose(context.Background(), requests.Draft{Scope: "db/", Author: "dbadmin",
		Ops: []audit.Op{audit.Put("db/pool", []byte("9"), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if a := reader.get("/ui/requests/" + itoa(db.ID)); a.status != http.StatusNotFound || strings.Contains(a.body, "db/pool") {
		t.Errorf("request of db/ for a reader of app/: %d, want 404\n%s", a.status, a.body)
	}
	if a := reader.get("/ui/requests"); strings.Contains(a.body, `id="q`+itoa(db.ID)+`"`) {
		t.Errorf("the requests page lists a request of db/ to a reader of app/")
	}
}

func TestRequestActionsNeedTheCSRFToken(t *testing.T) {
	c := startAuthConfigd(t)
	id := c.propose("alice", `{"rps":100}`)
	writer := newUIClient(c)
	writer.loginAs("writer-app")
	writer.get("/ui/requests/" + itoa(id)) // the page sets the CSRF cookie
	if a := writer.act(id, "approve", false); a.status != http.StatusForbidden || !strings.Contains(a.body, "CSRF") {
		t.Errorf("approve without the CSRF token: %d, want 403\n%s", a.status, a.body)
	}
	if rq := c.request(id); len(rq.Approvals) != 0 {
		t.Fatalf("an approval without the CSRF token was recorded: %v", rq.Approvals)
	}
	long := url.Values{"csrf": {writer.csrf()}, "text": {strings.Repeat("x", 4097)}}
	if a := writer.send(http.MethodPost, "/ui/requests/"+itoa(id)+"/close", long); a.status != http.StatusBadRequest || !strings.Contains(a.body, "longer than 4096 bytes") {
		t.Errorf("close with a 4097-byte reason: %d, want 400\n%s", a.status, a.body)
	}
	a := writer.act(id, "approve", true)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/requests/"+itoa(id)+"?done=approve" {
		t.Fatalf("approve with the CSRF token: %d %s\n%s", a.status, a.header.Get("Location"), a.body)
	}
	if rq := c.request(id); len(rq.Approvals) != 1 || rq.Approvals[0].Actor != "writer-app" {
		t.Errorf("approvals = %v, want writer-app's", rq.Approvals)
	}
}

func TestClientsPageNeedsReadOnThePrefix(t *testing.T) {
	c := startAuthConfigd(t)
	c.env.Clients.Report("reader-app", api.ClientReport{Instance: "orders-7f9c", Labels: map[string]string{"zone": "eu-1", "service": "orders"},
		Prefixes: []string{"app/"}, Rev: c.appRev,
		Rejections: []api.ClientRejection{{Key: "app/limits", Rev: c.appRev, Error: "rps must be >= 1"}}})
	reader := newUIClient(c)
	reader.loginAs("reader-app")
	a := reader.get("/ui/clients?prefix=app/")
	for _, want := range []string{"orders-7f9c", "service=orders, zone=eu-1", "rps must be &gt;= 1", `id="nav-clients"`} {
		if a.status != http.StatusOK || !strings.Contains(a.body, want) {
			t.Errorf("clients of app/ for a reader of app/: %d, want %q in\n%s", a.status, want, a.body)
		}
	}
	if a := reader.get("/ui/clients"); a.status != http.StatusOK || !strings.Contains(a.body, `id="clients-ask"`) || strings.Contains(a.body, "orders-7f9c") {
		t.Errorf("clients page without a prefix for a reader of app/: %d, want the form asking for one\n%s", a.status, a.body)
	}
	for _, p := range []string{"db/", ""} {
		if a := reader.get("/ui/clients?prefix=" + url.QueryEscape(p)); a.status != http.StatusForbidden || strings.Contains(a.body, "orders-7f9c") {
			t.Errorf("clients of %q for a reader of app/: %d, want 403\n%s", p, a.status, a.body)
		}
	}
}
