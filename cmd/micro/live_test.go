package main_test

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server"
)

// TestMicroAPIConfiguredLiveFromConfigd: micro api with --config-prefix gateway/ follows the
// keys configctl set writes: a route, then a JWT key, an access rule and a rate limit, each in
// force without a restart; a bad value is refused with a log line and the last good
// configuration keeps serving; --metrics prometheus serves /metrics.
func TestMicroAPIConfiguredLiveFromConfigd(t *testing.T) {
	srv := testserver.Consul(t)
	w := consulWatch(t, srv.Addr)
	example(t, srv.Addr, "example", "example-a", "2s")
	waitNodes(t, w, "example", 1)
	cfg := server.DefaultConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	d := configdtest.Run(t, cfg)
	api, m := start(t, listening, microBin, "--registry", "consul", "--registry-address", srv.Addr,
		"api", "--address", "127.0.0.1:0", "--metrics", "prometheus", "--config-prefix", "gateway/", "--config-addr", d.Addr)
	base := "http://" + m[1]

	// set writes key with configctl and waits until the gateway has applied (or refused) it.
	set := func(key, value, outcome string) {
		t.Helper()
		want := strings.Count(api.Log.String(), outcome) + 1
		cmd := exec.Command(configctlBin, "--addr", d.Addr, "set", "gateway/"+key, value, "--type", "json", "--reason", "gateway test")
		cmd.Env = configdtest.CleanEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("configctl set gateway/%s: %v\n%s", key, err, out)
		}
		for deadline := time.Now().Add(configdtest.WaitLimit); strings.Count(api.Log.String(), outcome) < want; {
			_, next := api.Log.Snapshot()
			select {
			case <-next:
			case <-time.After(time.Until(deadline)):
				t.Fatalf("micro api never logged %q for gateway/%s:\n%s", outcome, key, api.Log)
			}
		}
	}
	get := func(path string, header ...string) answer {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		a, err := do(req)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	if a := get("/hello?name=hobo"); a.code != http.StatusNotFound {
		t.Fatalf("before any route: %d %s, want 404", a.code, a.body)
	}
	set("routes", `[{"method": "GET", "path": "/hello", "service": "example", "endpoint": "Example.Call"}]`, "routes applied")
	if a := get("/hello?name=hobo"); a.code != 200 || a.body != `{"msg":"Hello hobo"}` {
		t.Fatalf("the route set in configd: %d %s", a.code, a.body)
	}
	set("routes", `[{"path": "/hello", "service": "", "endpoint": "Example.Call"}]`, "routes refused")
	if a := get("/hello?name=again"); a.code != 200 || a.body != `{"msg":"Hello again"}` {
		t.Fatalf("after a bad route was refused, the last good one: %d %s", a.code, a.body)
	}

	secret := strings.Repeat("s", 32)
	set("jwt", `{"keys": [{"alg": "HS256", "secret": "`+secret+`"}], "audience": "api"}`, "policy applied")
	if a := get("/hello?name=hobo"); a.code != http.StatusUnauthorized {
		t.Fatalf("without a token once JWT is on: %d %s, want 401", a.code, a.body)
	}
	sign := func(aud string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "aud": aud,
			"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	if a := get("/hello?name=hobo", "Authorization", sign("other")); a.code != http.StatusUnauthorized {
		t.Fatalf("a token for another audience: %d %s, want 401", a.code, a.body)
	}
	if a := get("/hello?name=alice", "Authorization", sign("api")); a.code != 200 || a.body != `{"msg":"Hello alice"}` {
		t.Fatalf("with a good token: %d %s", a.code, a.body)
	}
	set("access", `{"rules": [{"path": "/example/", "action": "deny"}]}`, "policy applied")
	if a := get("/example/call?name=x", "Authorization", sign("api")); a.code != http.StatusForbidden {
		t.Fatalf("a denied path: %d %s, want 403", a.code, a.body)
	}
	set("limits", `{"client": {"rate": 0.001, "burst": 1}}`, "policy applied")
	if a := get("/hello?name=one", "Authorization", sign("api")); a.code != 200 {
		t.Fatalf("the first request within the limit: %d %s", a.code, a.body)
	}
	if a := get("/hello?name=two", "Authorization", sign("api")); a.code != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d %s (Retry-After %q), want 429 with Retry-After", a.code, a.body, a.header.Get("Retry-After"))
	}
	set("limits", `{"client": {"rate": -1}}`, "policy refused")
	if a := get("/hello?name=three", "Authorization", sign("api")); a.code != http.StatusTooManyRequests {
		t.Fatalf("a bad limit must leave the last good one in force: %d %s", a.code, a.body)
	}

	metrics := get("/metrics")
	for _, want := range []string{`gateway_requests_total{`, `code="401"`, `code="429"`, `micro_client_requests_total{`, `micro_client_breaker_state{`} {
		if !strings.Contains(metrics.body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
