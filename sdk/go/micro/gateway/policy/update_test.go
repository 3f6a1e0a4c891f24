package policy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/configd/configd/sdk/go/micro/gateway/policy"
)

// TestUpdateRefusesABadConfigAndKeepsTheLastGood: a config with errors in several sections is
// refused whole, with all of them in the error; the config in force stays in force; a good one
// takes effect for the next request.
func TestUpdateRefusesABadConfigAndKeepsTheLastGood(t *testing.T) {
	p := newPolicy(t, policy.Config{JWT: hs256()})
	srv := serve(t, p, echo)
	get(t, srv, "GET", "/x", "").want(t, "before", 401, "required")

	bad := policy.Config{
		JWT:    policy.JWT{Keys: []policy.Key{{Alg: "RS256", PEM: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"}}},
		Access: policy.Access{Rules: []policy.Rule{{Match: policy.Match{Path: "/x"}, Action: policy.Deny}}},
		Limits: policy.Limits{Client: &policy.Limit{Rate: -1}},
	}
	err := p.Update(bad)
	if err == nil || !strings.Contains(err.Error(), "jwt key 0") || !strings.Contains(err.Error(), "limits: client") {
		t.Fatalf("Update(bad) = %v, want the key's and the limit's errors", err)
	}
	get(t, srv, "GET", "/x", "").want(t, "after a refused update", 401, "required")
	if p.Config().JWT.Keys[0].Alg != "HS256" {
		t.Fatalf("Config() after a refused update: %+v", p.Config())
	}

	if err := p.Update(policy.Config{Access: policy.Access{Rules: []policy.Rule{{Match: policy.Match{Path: "/x"}, Action: policy.Deny}}}}); err != nil {
		t.Fatal(err)
	}
	get(t, srv, "GET", "/x", "").want(t, "after a good update", 403, "denied")
	get(t, srv, "GET", "/y", "").want(t, "no token needed now", 200, "ok")
}

// TestUpdateDoesNotDisturbRequestsInFlight: a request that started under one config ends
// under it, while the next one is judged by the new config.
func TestUpdateDoesNotDisturbRequestsInFlight(t *testing.T) {
	p := newPolicy(t, policy.Config{})
	entered, release := make(chan struct{}), make(chan struct{})
	srv := serve(t, p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		echo(w, r)
	}))
	done := make(chan answer, 1)
	go func() { done <- get(t, srv, "GET", "/slow", "") }()
	<-entered
	if err := p.Update(policy.Config{JWT: hs256()}); err != nil {
		t.Fatal(err)
	}
	get(t, srv, "GET", "/slow2", "").want(t, "a new request", 401, "required")
	close(release)
	(<-done).want(t, "the request in flight", 200, "ok")
}

// TestConfigIsJSON: the Config a configd key holds decodes, durations as strings, and an
// unknown alg or a bad duration is an error.
func TestConfigIsJSON(t *testing.T) {
	var c policy.Config
	doc := `{"jwt": {"keys": [{"kid": "k1", "alg": "HS256", "secret": "` + secret + `"}], "audience": "gateway", "public": [{"path": "/health"}]},
		"access": {"default": "deny", "rules": [{"method": "GET", "path": "/greeter/", "scopes": ["greet"]}]},
		"limits": {"client": {"rate": 10, "burst": 20, "wait": "250ms"}, "routes": [{"path": "/greeter/", "rate": 100}]}}`
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Limits.Client.Wait.String() != "250ms" || c.Limits.Routes[0].Rate != 100 || c.Access.Rules[0].Path != "/greeter/" {
		t.Fatalf("decoded %+v", c)
	}
	p := newPolicy(t, c)
	srv := serve(t, p, echo)
	tok := sign(t, jwt.SigningMethodHS256, []byte(secret), "k1", jwt.MapClaims{"sub": "s", "aud": "gateway", "exp": 4102444800, "scope": "greet"})
	get(t, srv, "GET", "/greeter/hello", tok).want(t, "allowed", 200, "ok s")
	get(t, srv, "GET", "/other", tok).want(t, "default deny", 403, "no access rule")
	if err := json.Unmarshal([]byte(`{"limits": {"client": {"rate": 1, "wait": 5}}}`), &c); err == nil {
		t.Fatal("a duration as a number accepted")
	}
	b, _ := json.Marshal(c.Limits.Client)
	if !strings.Contains(string(b), `"wait":"250ms"`) {
		t.Fatalf("marshalled %s", b)
	}
}

// TestUpdateKeepsTheBucketsOfUnchangedLimits: an update that keeps a limit keeps its buckets
// and the tokens in them (an update is no way around a limit); one that changes it starts
// afresh.
func TestUpdateKeepsTheBucketsOfUnchangedLimits(t *testing.T) {
	limits := policy.Limits{Client: &policy.Limit{Rate: 0.001, Burst: 1},
		Routes: []policy.RouteLimit{{Match: policy.Match{Path: "/r/"}, Limit: policy.Limit{Rate: 0.001, Burst: 1}}}}
	p := newPolicy(t, policy.Config{Limits: limits})
	srv := serve(t, p, echo)
	get(t, srv, "GET", "/r/a", "").want(t, "first: the client's token and the route's", 200, "ok")
	get(t, srv, "GET", "/x", "").want(t, "past the client's burst", 429, "client")
	if err := p.Update(policy.Config{Limits: limits, Access: policy.Access{Rules: []policy.Rule{{Match: policy.Match{Path: "/admin/"}, Action: policy.Deny}}}}); err != nil {
		t.Fatal(err)
	}
	get(t, srv, "GET", "/x", "").want(t, "after an update that kept the limit", 429, "client")

	limits.Client = &policy.Limit{Rate: 0.001, Burst: 3}
	if err := p.Update(policy.Config{Limits: limits}); err != nil {
		t.Fatal(err)
	}
	get(t, srv, "GET", "/x", "").want(t, "a new client limit: a new bucket", 200, "ok")
	get(t, srv, "GET", "/r/b", "").want(t, "the route's bucket, kept empty through both updates", 429, "route")
}

func TestDecodeIsStrict(t *testing.T) {
	var c policy.Config
	if err := policy.Decode([]byte(`{"limits": {"client": {"rate": 5}}}`), &c); err != nil || c.Limits.Client == nil || c.Limits.Client.Rate != 5 {
		t.Fatalf("a good document: %v, %+v", err, c)
	}
	for name, doc := range map[string]string{
		"a member it does not have": `{"limitz": {}}`,
		"two documents":             `{} {}`,
		"not JSON":                  `rate: 5`,
		"empty":                     ``,
	} {
		if err := policy.Decode([]byte(doc), &policy.Config{}); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
	before := policy.Config{Access: policy.Access{Default: "deny"}}
	if err := policy.Decode(nil, &before); err != nil || before.Access.Default != "deny" {
		t.Fatalf("no document (a missing key) must leave the value: %v, %+v", err, before)
	}
}
