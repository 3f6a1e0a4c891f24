package policy_test

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/configd/configd/sdk/go/micro/gateway/policy"
)

// TestAccessRules: a deny rule is a 403; a rule that requires scopes or claims lets through
// only the tokens that have them (a 401 without a token); the most specific rule wins; a path
// written another way ("/public/../admin/") is judged as the one it leads to.
func TestAccessRules(t *testing.T) {
	cfg := policy.Config{JWT: hs256(), Access: policy.Access{Rules: []policy.Rule{
		{Match: policy.Match{Path: "/admin/"}, Action: policy.Deny},
		{Match: policy.Match{Path: "/admin/status"}},
		{Match: policy.Match{Method: "POST", Path: "/orders/{id}"}, Scopes: []string{"orders:write"}},
		{Match: policy.Match{Path: "/billing/"}, Claims: map[string]string{"role": "finance"}},
	}}}
	cfg.JWT.Public = []policy.Match{{Path: "/public/"}, {Path: "/billing/open"}}
	srv := serve(t, newPolicy(t, cfg), echo)
	tok := func(more ...any) string {
		return sign(t, jwt.SigningMethodHS256, []byte(secret), "", claims("bob", more...))
	}
	plain := tok()
	get(t, srv, "GET", "/admin/users", plain).want(t, "denied prefix", 403, "denied")
	get(t, srv, "GET", "/admin/status", plain).want(t, "a more specific allow", 200, "ok bob")
	get(t, srv, "GET", "/public/../admin/users", plain).want(t, "dot-dot into a denied path", 403, "denied")
	get(t, srv, "GET", "//admin//users", plain).want(t, "doubled slashes into a denied path", 403, "denied")
	get(t, srv, "POST", "/orders/7", plain).want(t, "no scope", 403, `lacks scope "orders:write"`)
	get(t, srv, "POST", "/orders/7", tok("scope", "orders:read orders:write")).want(t, "scope claim", 200, "ok")
	get(t, srv, "POST", "/orders/7", tok("scp", []string{"orders:write"})).want(t, "scp list", 200, "ok")
	get(t, srv, "GET", "/orders/7", plain).want(t, "another method", 200, "ok")
	get(t, srv, "GET", "/billing/x", tok("role", "dev")).want(t, "wrong claim", 403, `role claim is not "finance"`)
	get(t, srv, "GET", "/billing/x", tok("role", []string{"dev", "finance"})).want(t, "claim in a list", 200, "ok")
	a := get(t, srv, "GET", "/billing/open", "")
	a.want(t, "a rule's claims on a public path without a token", 401, "bearer token is required")
	if a.header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without a challenge")
	}

	// Default deny: only what a rule allows.
	cfg.Access.Default = policy.Deny
	srv = serve(t, newPolicy(t, cfg), echo)
	get(t, srv, "GET", "/orders/7", plain).want(t, "default deny", 403, "no access rule allows GET /orders/7")
	get(t, srv, "GET", "/admin/status", plain).want(t, "allowed under default deny", 200, "ok")
}

// TestAccessRulesErrors: bad actions, paths and conflicting patterns are refused, each named.
func TestAccessRulesErrors(t *testing.T) {
	err := policy.Config{Access: policy.Access{Default: "maybe", Rules: []policy.Rule{
		{Match: policy.Match{Path: "admin"}},
		{Match: policy.Match{Path: "/a/{x}"}, Action: "block"},
		{Match: policy.Match{Path: "/a/{x}/b"}},
		{Match: policy.Match{Path: "/{y}/a/b"}},
		{Match: policy.Match{Path: "/c"}, Action: policy.Deny, Scopes: []string{"s"}},
		{Match: policy.Match{Path: "/d/{"}},
	}}}.Validate()
	if err == nil {
		t.Fatal("bad rules accepted")
	}
	for _, want := range []string{`default must be "allow" or "deny", got "maybe"`, `rule 0 ( admin): path "admin" must start with /`,
		`rule 1 ( /a/{x}): action must be`, `rule 3 ( /{y}/a/b)`, "conflicts", `rule 4 ( /c): a deny rule requires no claims`, `rule 5 ( /d/{)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
