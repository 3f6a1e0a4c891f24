package policy_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/configd/configd/internal/syncbuf"
	"github.com/configd/configd/sdk/go/micro/gateway/policy"
)

// TestMetricsCountByRouteMethodAndCode: requests are counted by route (SetRoute's, the first
// path element, or "none" for a refused or unknown one), method and status code, and timed.
func TestMetricsCountByRouteMethodAndCode(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := policy.Config{Access: policy.Access{Rules: []policy.Rule{{Match: policy.Match{Path: "/denied/"}, Action: policy.Deny}}}}
	p := newPolicy(t, cfg, policy.WithRegisterer(reg))
	srv := serve(t, p, httpHandler(func(path string) (string, int) {
		switch {
		case path == "/routed":
			return "/users/{id}", 200
		case strings.HasPrefix(path, "/missing"):
			return "", 404
		}
		return "", 200
	}))
	get(t, srv, "GET", "/example/call", "")
	get(t, srv, "POST", "/example/call", "")
	get(t, srv, "GET", "/routed", "")
	get(t, srv, "GET", "/denied/x", "")
	get(t, srv, "GET", "/missing-a/x", "")
	get(t, srv, "BREW", "/missing-b/x", "")
	want := `
# HELP gateway_requests_total HTTP requests answered, by route, method and status code.
# TYPE gateway_requests_total counter
gateway_requests_total{code="200",method="GET",route="/example"} 1
gateway_requests_total{code="200",method="GET",route="/users/{id}"} 1
gateway_requests_total{code="200",method="POST",route="/example"} 1
gateway_requests_total{code="403",method="GET",route="none"} 1
gateway_requests_total{code="404",method="GET",route="none"} 1
gateway_requests_total{code="404",method="OTHER",route="none"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gateway_requests_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "gateway_request_duration_seconds"); n != 5 {
		t.Fatalf("%d latency series, want 5", n)
	}
}

// jsonLines decodes the JSON log lines in s.
func jsonLines(t *testing.T, s string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestAccessLogLogsEveryAnswer: one line per request, refused ones included, with the code,
// the client (the token's subject, else the IP address), the route and the trace id.
func TestAccessLogLogsEveryAnswer(t *testing.T) {
	var buf syncbuf.Buffer
	cfg := policy.Config{JWT: hs256()}
	cfg.JWT.Public = []policy.Match{{Path: "/public/"}}
	p, err := policy.New(cfg, policy.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, p, echo)
	get(t, srv, "GET", "/example/call", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob")), "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	get(t, srv, "GET", "/example/call", "")
	get(t, srv, "GET", "/public/x", "")
	lines := jsonLines(t, buf.String())
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3: %v", len(lines), lines)
	}
	for i, want := range []map[string]any{
		{"msg": "http request", "method": "GET", "path": "/example/call", "route": "/example", "code": 200.0, "bytes": 6.0, "client": "bob", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"code": 401.0, "route": "none", "client": "127.0.0.1"},
		{"code": 200.0, "route": "/public", "client": "127.0.0.1"},
	} {
		for k, v := range want {
			if lines[i][k] != v {
				t.Fatalf("line %d: %s = %v, want %v (%v)", i, k, lines[i][k], v, lines[i])
			}
		}
		if _, ok := lines[i]["duration"]; !ok {
			t.Fatalf("line %d has no duration: %v", i, lines[i])
		}
	}
}
