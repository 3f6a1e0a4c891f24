package policy_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/configd/configd/sdk/go/micro/gateway/policy"
)

// TestRateLimitByClientFailsFastWithRetryAfter: past its burst a client gets 429 with
// Retry-After; another client (another subject) is not held back by it; a client without a
// token is limited by its IP address.
func TestRateLimitByClientFailsFastWithRetryAfter(t *testing.T) {
	cfg := policy.Config{JWT: hs256(), Limits: policy.Limits{Client: &policy.Limit{Rate: 0.5, Burst: 2}}}
	cfg.JWT.Public = []policy.Match{{Path: "/public/"}}
	srv := serve(t, newPolicy(t, cfg), echo)
	bob := sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob"))
	alice := sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("alice"))
	get(t, srv, "GET", "/x", bob).want(t, "bob 1", 200, "ok")
	get(t, srv, "GET", "/x", bob).want(t, "bob 2", 200, "ok")
	a := get(t, srv, "GET", "/x", bob)
	a.want(t, "bob 3", 429, "too many requests from this client")
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2 (a token every 2s)", a.header.Get("Retry-After"))
	}
	get(t, srv, "GET", "/x", alice).want(t, "alice", 200, "ok alice")
	for i := range 2 {
		get(t, srv, "GET", "/public/x", "").want(t, fmt.Sprint("anonymous ", i), 200, "ok")
	}
	get(t, srv, "GET", "/public/x", "").want(t, "anonymous, past the burst of its IP", 429, "rate limited")
}

// TestRateLimitByRouteWaitsUpToItsBound: a route's limit is shared by every client; with Wait a
// request past the burst waits for its turn instead of failing, unless its turn comes after
// the bound.
func TestRateLimitByRouteWaitsUpToItsBound(t *testing.T) {
	cfg := policy.Config{Limits: policy.Limits{Routes: []policy.RouteLimit{
		{Match: policy.Match{Path: "/slow/"}, Limit: policy.Limit{Rate: 20, Burst: 1, Wait: policy.Duration(time.Second)}},
		{Match: policy.Match{Path: "/scarce/"}, Limit: policy.Limit{Rate: 0.1, Burst: 1, Wait: policy.Duration(100 * time.Millisecond)}},
		{Match: policy.Match{Method: "POST", Path: "/fast/"}, Limit: policy.Limit{Rate: 0.1, Burst: 1}},
	}}}
	srv := serve(t, newPolicy(t, cfg), echo)
	start := time.Now()
	for i := range 3 {
		get(t, srv, "GET", "/slow/x", "").want(t, fmt.Sprint("waiting ", i), 200, "ok")
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("3 requests at 20/s with a burst of 1 took %v: they did not wait", d)
	}
	get(t, srv, "GET", "/scarce/a", "").want(t, "scarce 1", 200, "ok")
	a := get(t, srv, "GET", "/scarce/b", "")
	a.want(t, "scarce 2: its turn is 10s away, past the 100ms bound", 429, "too many requests to this route")
	if ra := a.header.Get("Retry-After"); ra != "10" {
		t.Fatalf("Retry-After %q, want 10", ra)
	}
	get(t, srv, "POST", "/fast/x", "").want(t, "fast 1", 200, "ok")
	get(t, srv, "POST", "/fast/y", "").want(t, "fast 2, another client, the same route", 429, "route")
	get(t, srv, "GET", "/fast/y", "").want(t, "another method: no limit", 200, "ok")
}

// TestClientBucketsAreBounded: a flood of client ids keeps at most MaxClients buckets; the
// clients seen most recently keep theirs.
func TestClientBucketsAreBounded(t *testing.T) {
	p := newPolicy(t, policy.Config{JWT: hs256(), Limits: policy.Limits{Client: &policy.Limit{Rate: 0.001, Burst: 1}, MaxClients: 10}})
	srv := serve(t, p, echo)
	bob := sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob"))
	get(t, srv, "GET", "/x", bob).want(t, "bob", 200, "ok")
	for i := range 50 {
		get(t, srv, "GET", "/x", sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims(fmt.Sprint("c", i)))).want(t, "a new client", 200, "ok")
		if i%5 == 0 { // bob stays among the recent ones
			get(t, srv, "GET", "/x", bob).want(t, "bob again", 429, "rate limited")
		}
	}
	if n := p.ClientBuckets(); n != 10 {
		t.Fatalf("%d buckets after 51 clients, want MaxClients (10)", n)
	}
}

// TestLimitsErrors: nonsense limits are refused, each named.
func TestLimitsErrors(t *testing.T) {
	err := policy.Config{Limits: policy.Limits{Client: &policy.Limit{Rate: 0}, MaxClients: -1, Routes: []policy.RouteLimit{
		{Match: policy.Match{Path: "/a/"}, Limit: policy.Limit{Rate: 1, Burst: -1}},
		{Match: policy.Match{Path: "/b/"}, Limit: policy.Limit{Rate: 1, Wait: policy.Duration(-time.Second)}},
		{Match: policy.Match{Path: "/c/"}, Limit: policy.Limit{Rate: 1}},
		{Match: policy.Match{Path: "/c/"}, Limit: policy.Limit{Rate: 2}},
	}}}.Validate()
	if err == nil {
		t.Fatal("bad limits accepted")
	}
	for _, want := range []string{"client: rate must be a number > 0, got 0", "max_clients must be >= 0", "route 0 ( /a/): burst must be >= 0",
		"route 1 ( /b/): wait must be >= 0", "route 3 ( /c/)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
