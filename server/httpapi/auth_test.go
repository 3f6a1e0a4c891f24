package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/httpapi"
)

// routeCase exercises one rule of routeAccess: deny is a token lacking the
// right ("" when any valid token will do), allow one that has it.
type routeCase struct {
	rule         string
	method, path string
	body         string
	deny, allow  string
	// page: an HTML page of the UI, which sends a browser without a
	// session to the login page and answers 403 with an HTML page.
	page bool
}

var routeCases = []routeCase{
	{rule: "GET /", method: "GET", path: "/"},
	{rule: "GET /healthz", method: "GET", path: "/healthz"},
	{rule: "GET /readyz", method: "GET", path: "/readyz"},
	{rule: "GET /metrics", method: "GET", path: "/metrics"},
	// The UI checks its routes itself: any valid token (or session) gets
	// in, and sees what its grants allow; a page without one redirects to
	// the login page, JSON answers 401.
	{rule: "* /ui/*", method: "GET", path: "/ui/", page: true, allow: "reader-db"},
	{rule: "* /ui/*", method: "GET", path: "/ui/key/app/x", page: true, deny: "reader-db", allow: "reader-app"},
	{rule: "* /ui/*", method: "GET", path: "/ui/timeline.json?after=0", allow: "reader-db"},
	{rule: "* /ui/*", method: "GET", path: "/ui/api/watch?prefix=app/&since=1&wait=0s", deny: "reader-db", allow: "reader-app"},
	{rule: "GET /v1/kv", method: "GET", path: "/v1/kv?prefix=app/", deny: "reader-db", allow: "reader-app"},
	{rule: "GET /v1/kv/*", method: "GET", path: "/v1/kv/app/x", deny: "reader-db", allow: "reader-app"},
	{rule: "PUT /v1/kv/*", method: "PUT", path: "/v1/kv/app/y", body: "v", deny: "reader-app", allow: "writer-app"},
	{rule: "DELETE /v1/kv/*", method: "DELETE", path: "/v1/kv/app/y", deny: "reader-all", allow: "writer-app"},
	{rule: "GET /v1/layers/*", method: "GET", path: "/v1/layers/app/x", deny: "reader-db", allow: "reader-app"},
	{rule: "POST /v1/txn", method: "POST", path: "/v1/txn", body: `{"ops":[{"op":"put","key":"app/t","value":"1"},{"op":"put","key":"db/t","value":"1"}]}`,
		deny: "writer-app", allow: "writer-all"},
	{rule: "POST /v1/rollback", method: "POST", path: "/v1/rollback", body: `{"prefix":"app/","to":1}`, deny: "reader-app", allow: "writer-app"},
	{rule: "GET /v1/history", method: "GET", path: "/v1/history?prefix=app/", deny: "reader-db", allow: "reader-app"},
	{rule: "GET /v1/diff", method: "GET", path: "/v1/diff?from=1&key=app/x", deny: "reader-db", allow: "reader-app"},
	{rule: "GET /v1/revisions/{rev}", method: "GET", path: "/v1/revisions/1", deny: "reader-app", allow: "reader-all"},
	{rule: "GET /v1/watch", method: "GET", path: "/v1/watch?prefix=app/&since=1&wait=0s", deny: "reader-db", allow: "reader-app"},
	// In this order: the schema is set, read, then deleted.
	{rule: "PUT /v1/schemas/*", method: "PUT", path: "/v1/schemas/app/", body: `{"type":"object"}`, deny: "reader-app", allow: "writer-app"},
	{rule: "GET /v1/schemas/*", method: "GET", path: "/v1/schemas/app/", deny: "reader-db", allow: "reader-app"},
	{rule: "GET /v1/schemas", method: "GET", path: "/v1/schemas", allow: "reader-db"},
	{rule: "GET /v1/schema-history/*", method: "GET", path: "/v1/schema-history/app/", deny: "reader-db", allow: "reader-app"},
	{rule: "DELETE /v1/schemas/*", method: "DELETE", path: "/v1/schemas/app/", deny: "reader-all", allow: "writer-app"},
	{rule: "GET /v1/status", method: "GET", path: "/v1/status", allow: "reader-db"},
	{rule: "GET /v1/sources", method: "GET", path: "/v1/sources", allow: "reader-db"},
	{rule: "GET /v1/replicas", method: "GET", path: "/v1/replicas", allow: "reader-db"},
	{rule: "GET /v1/clients", method: "GET", path: "/v1/clients?prefix=app/", deny: "reader-db", allow: "reader-app"},
	{rule: "POST /v1/clients/report", method: "POST", path: "/v1/clients/report", body: `{"instance":"orders-1","prefixes":["app/"],"rev":1}`,
		deny: "reader-db", allow: "reader-app"},
	{rule: "GET /v1/audit/verify", method: "GET", path: "/v1/audit/verify", deny: "writer-all", allow: "admin"},
	{rule: "GET /v1/backup", method: "GET", path: "/v1/backup", deny: "writer-all", allow: "admin"},
	{rule: "GET /v1/tokens", method: "GET", path: "/v1/tokens", deny: "writer-all", allow: "admin"},
	{rule: "POST /v1/tokens", method: "POST", path: "/v1/tokens", body: `{"name":"new","grants":[{"permission":"read","prefix":"app"}]}`,
		deny: "writer-all", allow: "admin"},
	{rule: "DELETE /v1/tokens/{name}", method: "DELETE", path: "/v1/tokens/new", deny: "writer-all", allow: "admin"},
	{rule: "PUT /v1/tokens/{name}/grants", method: "PUT", path: "/v1/tokens/reader-db/grants", body: `{"grants":[{"permission":"read","prefix":"db/"}]}`,
		deny: "writer-all", allow: "admin"},
	// Change requests, in order: request 1 is proposed, then approved.
	{rule: "POST /v1/requests", method: "POST", path: "/v1/requests", body: `{"scope":"app/","ops":[{"op":"put","key":"app/r","value":"1"}]}`,
		deny: "reader-db", allow: "reader-app"},
	{rule: "GET /v1/requests", method: "GET", path: "/v1/requests", allow: "reader-db"},
	{rule: "GET /v1/requests/{id}", method: "GET", path: "/v1/requests/1", deny: "reader-db", allow: "reader-app"},
	{rule: "POST /v1/requests/{id}/{action}", method: "POST", path: "/v1/requests/1/approve", deny: "reader-app", allow: "writer-app"},
	{rule: "GET /v1/policies", method: "GET", path: "/v1/policies", allow: "reader-db"},
	{rule: "PUT /v1/policies", method: "PUT", path: "/v1/policies", body: `{"prefix":"app/","approvals":1}`, deny: "writer-all", allow: "admin"},
	// Rollouts, in order: approved request 1 is rolled out, then paused.
	{rule: "POST /v1/rollouts", method: "POST", path: "/v1/rollouts", body: `{"request":1,"steps":["10%"],"allow_empty":true}`,
		deny: "reader-app", allow: "writer-app"},
	{rule: "GET /v1/rollouts", method: "GET", path: "/v1/rollouts", allow: "reader-db"},
	{rule: "GET /v1/rollouts/{id}", method: "GET", path: "/v1/rollouts/1", deny: "reader-db", allow: "reader-app"},
	{rule: "POST /v1/rollouts/{id}/{action}", method: "POST", path: "/v1/rollouts/1/pause", deny: "reader-app", allow: "writer-app"},
}

// ruleOf is the routeAccess key of a route chi.Walk reports.
func ruleOf(method, route string) string {
	if strings.HasPrefix(route, "/ui/") {
		return "* /ui/*"
	}
	return method + " " + route
}

// TestEveryRouteHasAnAccessRule walks the router: a route added without a
// rule in routeAccess, or without a case in routeCases, fails here.
func TestEveryRouteHasAnAccessRule(t *testing.T) {
	e := configdtest.AuthEnv(t)
	cased := map[string]bool{}
	for _, c := range routeCases {
		cased[c.rule] = true
	}
	walked := map[string]bool{}
	err := chi.Walk(e.Handler().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		rule := ruleOf(method, route)
		walked[rule] = true
		if _, ok := httpapi.RouteRules()[rule]; !ok {
			t.Errorf("route %s %s has no access rule in routeAccess", method, route)
		}
		if !cased[rule] {
			t.Errorf("route %s %s has no case in routeCases", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(walked) < 20 {
		t.Fatalf("walked only %d routes: %v", len(walked), walked)
	}
	for rule := range httpapi.RouteRules() {
		if !walked[rule] {
			t.Errorf("routeAccess has %q, which is no route", rule)
		}
	}
}

// TestRouteAccess sends each route's request without a token, with a token
// lacking the right and with one that has it.
func TestRouteAccess(t *testing.T) {
	e := configdtest.AuthEnv(t)
	for _, c := range routeCases {
		t.Run(c.rule, func(t *testing.T) {
			public := httpapi.RouteRules()[c.rule]
			status, body := e.Do(c.method, c.path, c.body, "")
			if public {
				if status == http.StatusUnauthorized || status == http.StatusForbidden || status >= 500 {
					t.Fatalf("public route without a token: %d %s", status, body)
				}
				return
			}
			switch {
			case c.page:
				if status != http.StatusSeeOther {
					t.Errorf("without a token: %d %s, want 303 to the login page", status, body)
				}
			case status != http.StatusUnauthorized || !bytes.Contains(body, []byte(`"unauthenticated"`)):
				t.Errorf("without a token: %d %s, want 401 unauthenticated", status, body)
			}
			if c.deny != "" {
				status, body = e.Do(c.method, c.path, c.body, c.deny)
				if status != http.StatusForbidden || !c.page && !bytes.Contains(body, []byte(`"forbidden"`)) || !bytes.Contains(body, []byte(c.deny)) {
					t.Errorf("with %s: %d %s, want 403 forbidden naming the token", c.deny, status, body)
				}
			}
			status, body = e.Do(c.method, c.path, c.body, c.allow)
			if status >= 400 {
				t.Errorf("with %s: %d %s, want success", c.allow, status, body)
			}
		})
	}
}

func TestSchemaListShowsOnlyReadablePrefixes(t *testing.T) {
	e := configdtest.AuthEnv(t)
	for _, p := range []string{"app/", "db/"} {
		if status, body := e.Do("PUT", "/v1/schemas/"+p, `{"type":"object"}`, "writer-all"); status != http.StatusOK {
			t.Fatalf("set schema %s: %d %s", p, status, body)
		}
	}
	for token, want := range map[string][]string{"reader-app": {"app/"}, "reader-db": {"db/"}, "reader-all": {"app/", "db/"}} {
		_, body := e.Do("GET", "/v1/schemas", "", token)
		var sr api.SchemasResponse
		if err := json.Unmarshal(body, &sr); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range sr.Schemas {
			got = append(got, s.Prefix)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s lists %v, want %v", token, got, want)
		}
	}
}

func TestGlobalHistoryNeedsReadOnEverything(t *testing.T) {
	e := configdtest.AuthEnv(t)
	if status, body := e.Do("GET", "/v1/history", "", "reader-app"); status != http.StatusForbidden {
		t.Errorf("reader of app/: %d %s, want 403", status, body)
	}
	if status, body := e.Do("GET", "/v1/history", "", "reader-all"); status != http.StatusOK {
		t.Errorf("reader of everything: %d %s, want 200", status, body)
	}
}

func TestActorIsTheTokenAndOnlyAdminsMayClaimAnother(t *testing.T) {
	e := configdtest.AuthEnv(t)
	e.Do("PUT", "/v1/kv/app/a", "1", "writer-app", api.HeaderActor, "mallory")
	e.Do("PUT", "/v1/kv/app/b", "1", "admin", api.HeaderActor, "alice@laptop")
	for key, want := range map[string]string{"app/a": "writer-app", "app/b": "alice@laptop"} {
		_, body := e.Do("GET", "/v1/history?key="+key, "", "admin")
		var hr api.HistoryResponse
		if err := json.Unmarshal(body, &hr); err != nil || len(hr.Revisions) == 0 {
			t.Fatalf("history of %s: %s (%v)", key, body, err)
		}
		if got := hr.Revisions[0].Actor; got != want {
			t.Errorf("actor of %s: %q, want %q", key, got, want)
		}
	}
}

func TestRevokedTokenIsRefusedAndCounted(t *testing.T) {
	e := configdtest.AuthEnv(t)
	if status, body := e.Do("GET", "/v1/kv/app/x", "", "reader-app"); status != http.StatusOK {
		t.Fatalf("before revoking: %d %s", status, body)
	}
	if status, body := e.Do("DELETE", "/v1/tokens/reader-app", "", "admin"); status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", status, body)
	}
	status, body := e.Do("GET", "/v1/kv/app/x", "", "reader-app")
	if status != http.StatusUnauthorized || !bytes.Contains(body, []byte("revoked")) {
		t.Errorf("after revoking: %d %s, want 401 saying revoked", status, body)
	}
	e.Do("GET", "/v1/kv/db/x", "", "reader-app")
	_, metrics := e.Do("GET", "/metrics", "", "")
	for _, want := range []string{`configd_auth_denied_total{reason="revoked_token"} 2`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The list shows names and grants, never a secret or a hash.
	_, list := e.Do("GET", "/v1/tokens", "", "admin")
	if !bytes.Contains(list, []byte(`"reader-app"`)) || !bytes.Contains(list, []byte("revoked_at")) ||
		bytes.Contains(list, []byte(authz.TokenPrefix)) {
		t.Errorf("token list: %s", list)
	}
}

func TestTokenCreateChecksGrants(t *testing.T) {
	e := configdtest.AuthEnv(t)
	for _, body := range []string{
		`{"name":"x","grants":[]}`,
		`{"name":"x","grants":[{"permission":"root","prefix":""}]}`,
		`{"name":"bad name","grants":[{"permission":"read","prefix":""}]}`,
	} {
		if status, b := e.Do("POST", "/v1/tokens", body, "admin"); status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", body, status, b)
		}
	}
	if status, b := e.Do("POST", "/v1/tokens", `{"name":"reader-app","grants":[{"permission":"read","prefix":""}]}`, "admin"); status != http.StatusConflict {
		t.Errorf("duplicate name: %d %s, want 409", status, b)
	}
}
