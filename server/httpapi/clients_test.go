package httpapi_test

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/delivery"
)

func report(t *testing.T, e *configdtest.Env, token string, r api.ClientReport) (int, []byte) {
	t.Helper()
	return e.Do(http.MethodPost, "/v1/clients/report", string(configdtest.JSON(t, r)), token)
}

func listClients(t *testing.T, e *configdtest.Env, token, prefix string) api.ClientsResponse {
	t.Helper()
	code, body := e.Do(http.MethodGet, "/v1/clients?prefix="+prefix, "", token)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/clients?prefix=%s: %d %s", prefix, code, body)
	}
	var r api.ClientsResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestClientReportsAreListedWithHowFarBehindAndExpire: a report shows in
// GET /v1/clients with its labels, token, revision, rejections and how
// many revisions of the prefix it has not applied; a client that stops
// reporting is gone after the expiry, and one that says it is gone at once.
func TestClientReportsAreListedWithHowFarBehindAndExpire(t *testing.T) {
	// The table's clock, moved by the test.
	var elapsed atomic.Int64
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	e := configdtest.AuthEnv(t, configdtest.WithClientOptions(delivery.WithExpiry(time.Minute), delivery.WithClock(now)))
	applied := e.Put("app/limits", "1")
	e.Put("app/limits", "2")
	e.Put("db/x", "2") // not under app/: not counted
	rev := e.Put("app/other", "3")

	r := api.ClientReport{Instance: "orders-1", Labels: map[string]string{"zone": "eu-1"}, Prefixes: []string{"app/"}, Rev: applied,
		Rejections: []api.ClientRejection{{Key: "app/limits", Rev: applied + 1, Error: "rps must be >= 1"}}}
	code, body := report(t, e, "reader-app", r)
	if code != http.StatusOK || !strings.Contains(string(body), `"every_ms":20000,"window_ms":2000`) {
		t.Fatalf("report: %d %s", code, body)
	}
	code, _ = report(t, e, "reader-all", api.ClientReport{Instance: "db-1", Prefixes: []string{"db/"}, Rev: rev})
	if code != http.StatusOK {
		t.Fatal(code)
	}

	got := listClients(t, e, "reader-app", "app/")
	if got.Rev != rev || len(got.Clients) != 1 {
		t.Fatalf("got %+v, want orders-1 alone at rev %d", got, rev)
	}
	c := got.Clients[0]
	if c.Instance != "orders-1" || c.Labels["zone"] != "eu-1" || c.Token != "reader-app" || c.Replica != "test" ||
		c.Rev != applied || c.Behind != 2 || len(c.Rejections) != 1 || c.Rejections[0].Key != "app/limits" || c.Rejections[0].Rev != applied+1 {
		t.Fatalf("got %+v", c)
	}
	if all := listClients(t, e, "reader-all", ""); len(all.Clients) != 2 {
		t.Fatalf("every client: got %+v", all.Clients)
	}

	elapsed.Add(int64(59 * time.Second))
	report(t, e, "reader-all", api.ClientReport{Instance: "db-1", Prefixes: []string{"db/"}, Rev: rev})
	elapsed.Add(int64(2 * time.Second)) // orders-1 last reported 61 s ago
	if all := listClients(t, e, "reader-all", ""); len(all.Clients) != 1 || all.Clients[0].Instance != "db-1" {
		t.Fatalf("after orders-1's expiry: got %+v", all.Clients)
	}
	report(t, e, "reader-all", api.ClientReport{Instance: "db-1", Prefixes: []string{"db/"}, Rev: rev, Gone: true})
	if all := listClients(t, e, "reader-all", ""); len(all.Clients) != 0 {
		t.Fatalf("after db-1 left: got %+v", all.Clients)
	}
}

// TestClientReportNeedsReadOnItsPrefixes: a report naming a prefix its
// token may not read is refused with 403 and recorded nowhere; bad
// reports are refused with 400; listing needs read on the prefix.
func TestClientReportNeedsReadOnItsPrefixes(t *testing.T) {
	e := configdtest.AuthEnv(t)
	for _, tc := range []struct {
		token string
		r     api.ClientReport
		want  int
	}{
		{"reader-db", api.ClientReport{Instance: "x", Prefixes: []string{"app/"}}, http.StatusForbidden},
		{"reader-app", api.ClientReport{Instance: "x", Prefixes: []string{"app/", "db/"}}, http.StatusForbidden},
		{"reader-app", api.ClientReport{Instance: "x", Prefixes: []string{""}}, http.StatusForbidden},
		{"", api.ClientReport{Instance: "x", Prefixes: []string{"app/"}}, http.StatusUnauthorized},
		{"reader-app", api.ClientReport{Prefixes: []string{"app/"}}, http.StatusBadRequest},
		{"reader-app", api.ClientReport{Instance: "x"}, http.StatusBadRequest},
		{"reader-app", api.ClientReport{Instance: "x", Prefixes: []string{"app//"}}, http.StatusBadRequest},
		{"reader-app", api.ClientReport{Instance: "x", Prefixes: []string{"app/"}, Rev: -1}, http.StatusBadRequest},
		{"reader-app", api.ClientReport{Instance: "x", Prefixes: []string{"app/"}, Labels: map[string]string{"": "v"}}, http.StatusBadRequest},
		{"reader-app", api.ClientReport{Instance: strings.Repeat("x", 254), Prefixes: []string{"app/"}}, http.StatusBadRequest},
	} {
		if code, body := report(t, e, tc.token, tc.r); code != tc.want {
			t.Errorf("%s %+v: %d %s, want %d", tc.token, tc.r, code, body, tc.want)
		}
	}
	if code, body := e.Do(http.MethodPost, "/v1/clients/report", `{"instance":"x","prefixes":["app/"],"bogus":1}`, "reader-app"); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", code, body)
	}
	if got := listClients(t, e, "reader-all", ""); len(got.Clients) != 0 {
		t.Fatalf("refused reports were recorded: %+v", got.Clients)
	}
	if code, _ := e.Do(http.MethodGet, "/v1/clients?prefix=app/", "", "reader-db"); code != http.StatusForbidden {
		t.Fatalf("listing app/ with reader-db: %d, want 403", code)
	}
}

// TestDeliveryMetricsPassPromtool: the delivery metrics count clients per
// prefix and revision (no label per instance) and pass promtool check
// metrics.
func TestDeliveryMetricsPassPromtool(t *testing.T) {
	e := configdtest.NewEnv(t)
	r1 := e.Put("app/a", "1")
	e.Put("db/x", "1") // a revision of another prefix: app/ is still at r1
	for _, name := range []string{"a", "b"} {
		report(t, e, "", api.ClientReport{Instance: name, Labels: map[string]string{"pod": name}, Prefixes: []string{"app/"}, Rev: r1 + 1,
			Rejections: []api.ClientRejection{{Key: "app/a", Rev: r1, Error: "no"}}})
	}
	code, body := e.Do(http.MethodGet, "/metrics", "", "")
	if code != http.StatusOK {
		t.Fatal(code)
	}
	text := string(body)
	for _, want := range []string{
		"configd_delivery_clients 2",
		`configd_delivery_applied_clients{prefix="app/",rev="1"} 2`,
		`configd_delivery_rejected_clients{prefix="app/",rev="1"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("no %s in /metrics", want)
		}
	}
	if strings.Contains(text, `pod="`) || strings.Contains(text, `instance="a"`) {
		t.Error("a client's labels or instance reached the metrics")
	}
	var delivery strings.Builder
	for line := range strings.Lines(text) {
		if strings.Contains(line, "configd_delivery_") {
			delivery.WriteString(line)
		}
	}
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (make test-deps installs Debian's prometheus): %v", err)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(delivery.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
