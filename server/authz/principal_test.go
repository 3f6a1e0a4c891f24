package authz

import (
	"strings"
	"testing"

	"github.com/configd/configd/api"
)

func TestPrincipalAllows(t *testing.T) {
	p := &Principal{Name: "p", Grants: []api.Grant{{Permission: "write", Prefix: "app/"}, {Permission: "read", Prefix: "db/"}}}
	for _, c := range []struct {
		perm, target string
		want         bool
	}{
		{"read", "app/x", true}, {"write", "app/x", true}, {"admin", "app/x", false},
		{"read", "db/x", true}, {"write", "db/x", false},
		{"read", "apple", false}, {"read", "app", false}, {"read", "", false}, {"read", "app/", true},
	} {
		if got := p.Allows(c.perm, c.target); got != c.want {
			t.Errorf("%s on %q: %v, want %v", c.perm, c.target, got, c.want)
		}
	}
}

func TestReadableScopeOfAUIWatch(t *testing.T) {
	p := &Principal{Name: "t", Grants: []api.Grant{
		{Permission: "read", Prefix: "app/"}, {Permission: "write", Prefix: "app/db/"}, {Permission: "admin", Prefix: "svc/"}}}
	for _, tc := range []struct {
		keys, prefixes         []string
		wantKeys, wantPrefixes []string
		ok                     bool
	}{
		{prefixes: []string{""}, wantPrefixes: []string{"app/", "svc/"}, ok: true},
		{prefixes: []string{"app"}, wantPrefixes: []string{"app/"}, ok: true},
		{prefixes: []string{"db/"}, ok: true},
		{prefixes: []string{"sv"}, ok: true}, // prefixes are whole segments: sv/ is not svc/
		{keys: []string{"app/x", "db/x"}, wantKeys: []string{"app/x"}, ok: true},
		{prefixes: []string{"a//b"}, ok: false},
	} {
		keys, prefixes, ok := readableScope(p, tc.keys, tc.prefixes)
		if ok != tc.ok || strings.Join(keys, ",") != strings.Join(tc.wantKeys, ",") || strings.Join(prefixes, ",") != strings.Join(tc.wantPrefixes, ",") {
			t.Errorf("readableScope(%q, %q) = %q, %q, %v; want %q, %q, %v", tc.keys, tc.prefixes, keys, prefixes, ok, tc.wantKeys, tc.wantPrefixes, tc.ok)
		}
	}
}
