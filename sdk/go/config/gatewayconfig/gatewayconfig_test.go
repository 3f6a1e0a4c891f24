package gatewayconfig_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/syncbuf"
	"github.com/configd/configd/sdk/go/config"
	"github.com/configd/configd/sdk/go/config/gatewayconfig"
	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/gateway/policy"
	"github.com/configd/configd/server"
)

// configd is a real configd (the store, the hub, the HTTP and gRPC APIs on one loopback
// port) for the test, and writes to it through its HTTP API.
type configd struct {
	t    *testing.T
	addr string
}

func startConfigd(t *testing.T) *configd {
	t.Helper()
	s := configdtest.Serve(t, configdtest.Core(t), server.APIConfig{})
	return &configd{t: t, addr: s.Addr}
}

// do sends method to /v1/kv/key with body of type ct and returns the revision it made.
func (d *configd) do(method, key, ct, body string) int64 {
	d.t.Helper()
	req, err := http.NewRequest(method, "http://"+d.addr+"/v1/kv/"+key, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("X-Configd-Actor", "test")
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	var w struct{ Rev int64 }
	if rsp.StatusCode != 200 || json.Unmarshal(b, &w) != nil || w.Rev == 0 {
		d.t.Fatalf("%s %s: %d %s", method, key, rsp.StatusCode, b)
	}
	return w.Rev
}

func (d *configd) put(key, jsonBody string) int64 {
	return d.do("PUT", key, "application/json", jsonBody)
}

// routeTable stands in for the gateway: it keeps the routes SetRoutes takes, and refuses a
// route without a path or service, as the gateway does.
type routeTable struct {
	mu     sync.Mutex
	routes []gateway.Route
	sets   int
}

func (r *routeTable) SetRoutes(routes []gateway.Route) error {
	for i, rt := range routes {
		if rt.Path == "" || rt.Service == "" {
			return fmt.Errorf("route %d: a route needs a path and a service", i)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes, r.sets = slices.Clone(routes), r.sets+1
	return nil
}

func (r *routeTable) get() ([]gateway.Route, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.routes, r.sets
}

// waitRev waits until live has looked at rev.
func waitRev(t *testing.T, live *gatewayconfig.Live, rev int64) gatewayconfig.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := live.WaitRev(ctx, rev)
	if err != nil {
		t.Fatalf("WaitRev(%d): %v (status %+v)", rev, err, s)
	}
	return s
}

const secret = "0123456789abcdef0123456789abcdef"

// status is the status code of GET path on srv, with a bearer token when tok is set.
func status(t *testing.T, srv *httptest.Server, path, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rsp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rsp.Body.Close()
	return rsp.StatusCode
}

// TestLiveConfigFollowsConfigd: a gateway's routes and policy written to configd take effect
// without a restart; a bad value (not JSON, a member the section lacks, a limit that makes no
// sense, a route the gateway refuses) is refused with a log line and the last good routes and
// policy keep serving; fixing it applies it.
func TestLiveConfigFollowsConfigd(t *testing.T) {
	d := startConfigd(t)
	d.put("gateway/routes", `[{"method": "GET", "path": "/users/{id}", "service": "users", "endpoint": "Users.Get"}]`)
	rev := d.put("gateway/access", `{"rules": [{"path": "/admin/", "action": "deny"}]}`)
	d.put("other/key", `{"not": "the gateway's"}`)

	c, err := config.New(context.Background(), config.WithAddress(d.addr), config.WithLogger(configdtest.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p, err := policy.New(policy.Config{}, policy.WithLogger(configdtest.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	t.Cleanup(srv.Close)
	routes := &routeTable{}
	var logs syncbuf.Buffer
	live, err := gatewayconfig.Start(c, "gateway/", gatewayconfig.WithRoutes(routes), gatewayconfig.WithPolicy(p),
		gatewayconfig.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })

	// At start: what configd holds.
	if s := live.Status(); s.Applied < rev || s.Refused != nil {
		t.Fatalf("status at start %+v, want rev %d applied", s, rev)
	}
	if rs, _ := routes.get(); len(rs) != 1 || rs[0].Endpoint != "Users.Get" || rs[0].Path != "/users/{id}" {
		t.Fatalf("routes at start: %+v", rs)
	}
	if got := status(t, srv, "/admin/x", ""); got != 403 {
		t.Fatalf("/admin/x at start: %d, want 403", got)
	}

	// A change takes effect, without a restart.
	rev = d.put("gateway/jwt", `{"keys": [{"kid": "k1", "alg": "HS256", "secret": "`+secret+`"}]}`)
	if s := waitRev(t, live, rev); s.Applied != rev || s.Refused != nil {
		t.Fatalf("status after the jwt key: %+v", s)
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(secret))
	if a, b := status(t, srv, "/users/1", ""), status(t, srv, "/users/1", tok); a != 401 || b != 200 {
		t.Fatalf("with a jwt key: %d without a token, %d with one; want 401, 200", a, b)
	}
	_, sets := routes.get()

	// Bad values: refused, logged, the last good ones stay in force.
	good := rev
	for _, bad := range []struct{ key, ct, body, says string }{
		{"gateway/limits", "application/json", `{"client": {"rate": -1}}`, "rate must be a number > 0"},
		{"gateway/access", "application/json", `{"rulez": []}`, `unknown field "rulez"`},
		{"gateway/jwt", "text/plain", `{"keys": [`, "not a valid JSON value"},
		{"gateway/routes", "application/json", `[{"path": "/orders/"}]`, "a route needs a path and a service"},
	} {
		rev := d.do("PUT", bad.key, bad.ct, bad.body)
		s := waitRev(t, live, rev)
		if s.Applied != good || s.Refused == nil || !strings.Contains(s.Refused.Error(), bad.says) || !strings.Contains(s.Refused.Error(), bad.key) {
			t.Fatalf("after a bad %s: status %+v, want rev %d still applied and an error that names the key and says %q", bad.key, s, good, bad.says)
		}
		if !strings.Contains(logs.String(), fmt.Sprintf("rev=%d", rev)) || !strings.Contains(logs.String(), "refused") {
			t.Fatalf("no log line refuses rev %d:\n%s", rev, logs.String())
		}
		if a, b, c := status(t, srv, "/users/1", ""), status(t, srv, "/users/1", tok), status(t, srv, "/admin/x", tok); a != 401 || b != 200 || c != 403 {
			t.Fatalf("after a bad %s: %d, %d, %d; want the last good policy: 401, 200, 403", bad.key, a, b, c)
		}
		if rs, n := routes.get(); n != sets || rs[0].Service != "users" {
			t.Fatalf("after a bad %s: routes %+v (set %d times, was %d)", bad.key, rs, n, sets)
		}
	}

	// Fixed: applied, every section of the revision in force.
	d.put("gateway/limits", `{"client": {"rate": 1000}}`)
	d.put("gateway/access", `{"default": "deny", "rules": [{"path": "/users/"}]}`)
	d.do("DELETE", "gateway/jwt", "", "")
	rev = d.put("gateway/routes", `[{"path": "/orders/", "service": "orders", "handler": "http"}]`)
	if s := waitRev(t, live, rev); s.Applied != rev || s.Refused != nil {
		t.Fatalf("status after the fixes: %+v", s)
	}
	if rs, _ := routes.get(); len(rs) != 1 || rs[0].Service != "orders" {
		t.Fatalf("routes after the fix: %+v", rs)
	}
	if a, b := status(t, srv, "/users/1", ""), status(t, srv, "/admin/x", ""); a != 200 || b != 403 {
		t.Fatalf("after the fixes (jwt deleted: no authentication; default deny): %d, %d; want 200, 403", a, b)
	}
	if got := p.Config().Limits.Client.Rate; got != 1000 {
		t.Fatalf("limits in force: %v", p.Config().Limits)
	}

	// A change outside the gateway's keys applies nothing again.
	_, sets = routes.get()
	rev = d.put("gateway/notes", `"a key the gateway does not read"`)
	if s := waitRev(t, live, rev); s.Applied != rev {
		t.Fatalf("status after an unrelated key: %+v", s)
	}
	if _, n := routes.get(); n != sets {
		t.Fatalf("an unrelated key set the routes again (%d times, was %d)", n, sets)
	}
}

// TestLiveConfigRefusesABadValueAtStart: a bad value in configd at start is refused as a later
// one is: the routes and policy the gateway was built with stay.
func TestLiveConfigRefusesABadValueAtStart(t *testing.T) {
	d := startConfigd(t)
	rev := d.put("gateway/limits", `{"client": {"rate": 0}}`)
	c, err := config.New(context.Background(), config.WithAddress(d.addr), config.WithPrefix("gateway"), config.WithLogger(configdtest.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	built := policy.Config{Access: policy.Access{Default: policy.Deny}}
	p, err := policy.New(built, policy.WithLogger(configdtest.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	live, err := gatewayconfig.Start(c, "", gatewayconfig.WithPolicy(p), gatewayconfig.WithLogger(configdtest.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	if s := live.Status(); s.Seen != rev || s.Applied != 0 || s.Refused == nil || !strings.Contains(s.Refused.Error(), "limits") {
		t.Fatalf("status %+v, want rev %d refused", s, rev)
	}
	if p.Config().Access.Default != policy.Deny {
		t.Fatalf("the policy the gateway was built with was replaced: %+v", p.Config())
	}
	rev = d.put("gateway/limits", `{"client": {"rate": 5}}`)
	if s := waitRev(t, live, rev); s.Applied != rev || p.Config().Access.Default != "" {
		t.Fatalf("after the fix: %+v, policy %+v", s, p.Config())
	}
}
