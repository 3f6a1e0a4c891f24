package policy

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// accessRules are compiled access rules.
type accessRules struct {
	rules       *matcher[*Rule]
	defaultDeny bool
}

// newAccess compiles a, or returns nil when it lets every request through.
func newAccess(a Access) (*accessRules, error) {
	var e errs
	ar := &accessRules{rules: newMatcher[*Rule]()}
	switch a.Default {
	case "", Allow:
	case Deny:
		ar.defaultDeny = true
	default:
		e.add(fmt.Errorf("access: default must be %q or %q, got %q", Allow, Deny, a.Default))
	}
	for i := range a.Rules {
		r := a.Rules[i]
		what := fmt.Sprintf("access rule %d (%s %s)", i, r.Method, r.Path)
		switch r.Action {
		case "", Allow:
		case Deny:
			if len(r.Claims) > 0 || len(r.Scopes) > 0 {
				e.add(fmt.Errorf("%s: a deny rule requires no claims or scopes", what))
			}
		default:
			e.add(fmt.Errorf("%s: action must be %q or %q, got %q", what, Allow, Deny, r.Action))
		}
		for _, s := range r.Scopes {
			if s == "" || strings.ContainsAny(s, " \t") {
				e.add(fmt.Errorf("%s: scope %q is empty or has a space", what, s))
			}
		}
		e.add(ar.rules.add(what, r.Match, &r))
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	if ar.rules.n == 0 && !ar.defaultDeny {
		return nil, nil
	}
	return ar, nil
}

// check decides on r, whose token had claims (nil: no token). It returns 0 when r may go on,
// else the HTTP status of the refusal and why.
func (a *accessRules) check(r *http.Request, claims jwt.MapClaims) (int, string) {
	rule, ok := a.rules.match(r)
	if !ok {
		if a.defaultDeny {
			return http.StatusForbidden, "no access rule allows " + r.Method + " " + r.URL.Path
		}
		return 0, ""
	}
	if rule.Action == Deny {
		return http.StatusForbidden, "access to " + r.Method + " " + r.URL.Path + " is denied"
	}
	if len(rule.Claims) == 0 && len(rule.Scopes) == 0 {
		return 0, ""
	}
	if claims == nil {
		return http.StatusUnauthorized, errNoToken.Error()
	}
	for _, name := range sortedKeys(rule.Claims) {
		if !hasClaim(claims[name], rule.Claims[name]) {
			return http.StatusForbidden, fmt.Sprintf("the token's %s claim is not %q", name, rule.Claims[name])
		}
	}
	if len(rule.Scopes) > 0 {
		have := scopesOf(claims)
		for _, s := range rule.Scopes {
			if !slices.Contains(have, s) {
				return http.StatusForbidden, fmt.Sprintf("the token lacks scope %q", s)
			}
		}
	}
	return 0, ""
}

// hasClaim reports whether a claim's value is want, or is a list that holds it.
func hasClaim(v any, want string) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v == want
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
		return false
	}
	return fmt.Sprint(v) == want // a number or a bool, as JSON writes it
}

// scopesOf returns a token's scopes: its scope claim (RFC 8693: space-separated) and its scp
// claim (a list, or space-separated).
func scopesOf(claims jwt.MapClaims) []string {
	var out []string
	for _, name := range []string{"scope", "scp"} {
		switch v := claims[name].(type) {
		case string:
			out = append(out, strings.Fields(v)...)
		case []any:
			for _, x := range v {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
