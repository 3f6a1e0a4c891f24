package policy

import (
	"fmt"
	"net/http"
	"path"
	"strings"
)

// matcher finds, of a set of Match patterns, the most specific that matches a request, with
// net/http's ServeMux: the rules of gateway.Route's patterns, in one home.
type matcher[T any] struct {
	mux *http.ServeMux
	n   int
}

// matched is what a ServeMux of a matcher holds: never served, only found.
type matched[T any] struct{ v T }

func (matched[T]) ServeHTTP(http.ResponseWriter, *http.Request) {}

func newMatcher[T any]() *matcher[T] { return &matcher[T]{mux: http.NewServeMux()} }

// add adds m's pattern with v; what names it in the error (a bad or conflicting pattern).
func (mt *matcher[T]) add(what string, m Match, v T) (err error) {
	if !strings.HasPrefix(m.Path, "/") {
		return fmt.Errorf("%s: path %q must start with /", what, m.Path)
	}
	if strings.ContainsAny(m.Method, " \t/") {
		return fmt.Errorf("%s: method %q is not an HTTP method", what, m.Method)
	}
	pattern := m.Path
	if m.Method != "" {
		pattern = m.Method + " " + m.Path
	}
	defer func() {
		if r := recover(); r != nil { // a ServeMux panics on a bad or conflicting pattern
			err = fmt.Errorf("%s: %v", what, r)
		}
	}()
	mt.mux.Handle(pattern, matched[T]{v})
	mt.n++
	return nil
}

// match returns the value of the most specific pattern that matches r, matched on r's
// canonical path (the one a ServeMux would redirect to: "/a/../b" is "/b"), so that a path
// written otherwise does not slip past a rule.
func (mt *matcher[T]) match(r *http.Request) (T, bool) {
	var zero T
	if mt == nil || mt.n == 0 {
		return zero, false
	}
	if p := r.URL.Path; p != cleanPath(p) {
		c := *r
		u := *r.URL
		u.Path, u.RawPath = cleanPath(p), ""
		c.URL = &u
		r = &c
	}
	h, _ := mt.mux.Handler(r)
	if m, ok := h.(matched[T]); ok {
		return m.v, true
	}
	return zero, false
}

// cleanPath is p as a ServeMux cleans it: rooted, without . and .. elements or doubled
// slashes, its trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
