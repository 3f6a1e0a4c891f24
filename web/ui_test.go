package web_test

// Tests of the UI over HTTP, without a browser: status codes, the CSRF
// check, the rollback route's answers, escaping of odd keys in URLs.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/web"
)

// session is a browser-like client of the UI: it keeps the CSRF cookie and
// the token of the last page it loaded.
type session struct {
	c     *configd
	http  *http.Client
	token string
}

var tokenRE = regexp.MustCompile(`data-csrf="([^"]+)"`)

func newSession(t *testing.T, c *configd) *session {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	s := &session{c: c, http: &http.Client{Jar: jar}}
	status, body := s.get("/ui/")
	if status != http.StatusOK {
		t.Fatalf("GET /ui/: %d", status)
	}
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	s.token = m[1]
	return s
}

func (s *session) get(path string) (int, string) {
	s.c.t.Helper()
	resp, err := s.http.Get(s.c.URL + path)
	if err != nil {
		s.c.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAll(s.c.t, resp)
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rollbackAnswer is the JSON of POST /ui/rollback.
type rollbackAnswer struct {
	Rev      int64  `json:"rev"`
	Changed  bool   `json:"changed"`
	Conflict bool   `json:"conflict"`
	URL      string `json:"url"`
	Changes  []struct {
		Key   string `json:"key"`
		Op    string `json:"op"`
		Lines []struct {
			K, T string
		} `json:"lines"`
	} `json:"changes"`
	Error *struct{ Code, Message string } `json:"error"`
}

// post sends a rollback request with the given headers (name, value pairs)
// and the session's cookie.
func (s *session) post(body any, headers ...string) (int, rollbackAnswer) {
	s.c.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.c.URL+"/ui/rollback", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a rollbackAnswer
	raw := readAll(s.c.t, resp)
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		s.c.t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, a
}

func TestRollbackRefusesCrossSiteRequests(t *testing.T) {
	c := startConfigd(t)
	r1 := c.put("k", "one", "", "alice", "")
	c.put("k", "two", "", "alice", "")
	s := newSession(t, c)
	body := map[string]any{"scope": "key", "key": "k", "to": r1, "dry_run": true}

	noCookie := &session{c: c, http: &http.Client{}}
	for _, tc := range []struct {
		name    string
		s       *session
		headers []string
	}{
		{"no token and no cookie", noCookie, nil},
		{"a token but no cookie", noCookie, []string{"X-CSRF-Token", s.token}},
		{"the cookie but no token", s, nil},
		{"a wrong token", s, []string{"X-CSRF-Token", strings.Repeat("A", 43)}},
		{"a token of another length", s, []string{"X-CSRF-Token", s.token + "A"}},
		{"from another site (Sec-Fetch-Site)", s, []string{"X-CSRF-Token", s.token, "Sec-Fetch-Site", "cross-site"}},
		{"from a sibling origin (Sec-Fetch-Site)", s, []string{"X-CSRF-Token", s.token, "Sec-Fetch-Site", "same-site"}},
		{"from another origin (Origin)", s, []string{"X-CSRF-Token", s.token, "Origin", "http://evil.example"}},
	} {
		status, a := tc.s.post(body, tc.headers...)
		if status != http.StatusForbidden || a.Error == nil || a.Error.Code != "forbidden" {
			t.Errorf("%s: %d %+v, want 403 forbidden", tc.name, status, a.Error)
		}
	}
	// The same request with the token (and same-origin headers) works.
	status, a := s.post(body, "X-CSRF-Token", s.token, "Sec-Fetch-Site", "same-origin", "Origin", c.URL)
	if status != http.StatusOK || len(a.Changes) != 1 {
		t.Fatalf("with the token: %d %+v", status, a)
	}
	if kv, _ := c.get("k"); kv.Value != "two" {
		t.Fatal("a dry run changed the key")
	}
	// A form post cannot carry JSON: refused even with the token.
	req, _ := http.NewRequest(http.MethodPost, c.URL+"/ui/rollback", strings.NewReader("scope=all&to=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", s.token)
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form post: %d, want 415", resp.StatusCode)
	}
	if got := c.rev(); got != 2 {
		t.Fatalf("revision %d after refused requests", got)
	}
}

func TestCSRFCookieIsHttpOnlyAndStrict(t *testing.T) {
	c := startConfigd(t)
	status, _, h := c.do(http.MethodGet, "/ui/", nil)
	if status != http.StatusOK {
		t.Fatal(status)
	}
	ck := (&http.Response{Header: h}).Cookies()
	if len(ck) != 1 || ck[0].Name != "configd_csrf" || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/ui/" {
		t.Errorf("cookie = %+v", ck)
	}
	// A session keeps its token across pages.
	s := newSession(t, c)
	_, page := s.get("/ui/")
	if m := tokenRE.FindStringSubmatch(page); m == nil || m[1] != s.token {
		t.Error("the token changed within a session")
	}
}

func TestRollbackAnswers(t *testing.T) {
	c := startConfigd(t)
	r1 := c.put("app/a", "one", "", "alice", "")
	c.put("app/a", "two", "", "alice", "")
	c.put("app/b", "x", "", "alice", "")
	s := newSession(t, c)
	tok := []string{"X-CSRF-Token", s.token}
	page := c.rev()

	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
	}{
		{"no reason", map[string]any{"scope": "key", "key": "app/a", "to": r1, "expect_rev": page}, 400},
		{"blank reason", map[string]any{"scope": "key", "key": "app/a", "to": r1, "reason": "  ", "expect_rev": page}, 400},
		{"bad scope", map[string]any{"scope": "galaxy", "to": r1, "reason": "r"}, 400},
		{"bad key", map[string]any{"scope": "key", "key": "/a", "to": r1, "reason": "r"}, 400},
		{"empty prefix", map[string]any{"scope": "prefix", "prefix": "", "to": r1, "reason": "r"}, 400},
		{"revision 0", map[string]any{"scope": "all", "to": 0, "reason": "r"}, 404},                        // revision_gone, as the API answers
		{"future revision", map[string]any{"scope": "all", "to": 99, "reason": "r", "dry_run": true}, 400}, // bad_revision, as the API answers
		{"actor with a control character", map[string]any{"scope": "all", "to": r1, "reason": "r", "actor": "a\x07b"}, 400},
		{"unknown field", map[string]any{"scope": "all", "to": r1, "reason": "r", "force": true}, 400},
	} {
		status, a := s.post(tc.body, tok...)
		if status != tc.status || a.Error == nil || a.Error.Message == "" {
			t.Errorf("%s: %d %+v, want %d with a message", tc.name, status, a.Error, tc.status)
		}
	}
	if c.rev() != page {
		t.Fatal("a refused request committed")
	}

	// A prefix rollback: dry run, then the real one, with expect_rev.
	body := map[string]any{"scope": "prefix", "prefix": "app", "to": r1, "reason": "undo", "actor": "ops", "dry_run": true, "expect_rev": page}
	status, a := s.post(body, tok...)
	if status != 200 || a.Rev != page || len(a.Changes) != 2 || a.Changes[0].Op != "update" || a.Changes[1].Op != "delete" {
		t.Fatalf("dry run: %d %+v", status, a)
	}
	body["dry_run"] = false
	status, a = s.post(body, tok...)
	if status != 200 || !a.Changed || a.Rev != page+1 || a.URL != fmt.Sprintf("/ui/rev/%d", page+1) {
		t.Fatalf("rollback: %d %+v", status, a)
	}
	r := c.revision(a.Rev)
	if r.Actor != "ops" || r.Reason != fmt.Sprintf("rollback to %d: undo", r1) || r.RollbackTo != r1 || r.Origin != "api" {
		t.Errorf("revision: %+v", r)
	}
	if _, ok := c.get("app/b"); ok {
		t.Error("app/b, created after r1, still exists")
	}
	// Again: nothing left to do.
	body["expect_rev"] = a.Rev
	status, a = s.post(body, tok...)
	if status != 200 || a.Changed || len(a.Changes) != 0 {
		t.Errorf("second rollback: %d %+v", status, a)
	}
	// No actor: the default.
	c.put("app/a", "three", "", "alice", "")
	status, a = s.post(map[string]any{"scope": "all", "to": r1, "reason": "r", "expect_rev": c.rev()}, tok...)
	if status != 200 || c.revision(a.Rev).Actor != "web" {
		t.Errorf("no actor: %d, actor %q", status, c.revision(a.Rev).Actor)
	}
}

func TestRollbackConflictAnswersTheNewDiff(t *testing.T) {
	c := startConfigd(t)
	r1 := c.put("k", "one", "", "alice", "")
	c.put("k", "two", "", "alice", "")
	s := newSession(t, c)
	page := c.rev()
	c.put("k", "three", "", "mallory", "")
	c.put("other", "x", "", "mallory", "") // outside the scope
	for _, dry := range []bool{true, false} {
		status, a := s.post(map[string]any{"scope": "key", "key": "k", "to": r1, "reason": "r", "dry_run": dry, "expect_rev": page},
			"X-CSRF-Token", s.token)
		if status != http.StatusConflict || !a.Conflict || a.Rev != c.rev() || len(a.Changes) != 1 {
			t.Fatalf("dry run %v: %d %+v, want 409 with the new diff at the current revision", dry, status, a)
		}
		lines := a.Changes[0].Lines
		if len(lines) != 2 || lines[0].T != "three" || lines[1].T != "one" {
			t.Errorf("new diff lines: %+v", lines)
		}
		if !strings.Contains(a.Error.Message, fmt.Sprintf("after revision %d", page)) {
			t.Errorf("message: %q", a.Error.Message)
		}
	}
	if kv, _ := c.get("k"); kv.Value != "three" {
		t.Fatalf("k = %q after a conflict", kv.Value)
	}
	// A change outside the scope is no conflict.
	status, _ := s.post(map[string]any{"scope": "key", "key": "k", "to": r1, "reason": "r", "dry_run": true, "expect_rev": page + 1},
		"X-CSRF-Token", s.token)
	if status != 200 {
		t.Errorf("scope unchanged since expect_rev: %d", status)
	}
}

func TestPagesAndStatuses(t *testing.T) {
	c := startConfigd(t)
	c.put("app/x", "1", "", "alice", "")
	c.put("app/gone", "1", "", "alice", "")
	if status, b, _ := c.do(http.MethodDelete, "/v1/kv/app/gone", nil); status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", status, b)
	}
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/ui/", 200, "Timeline"},
		{"/ui/?prefix=app", 200, "app/x"},
		{"/ui/?before=2&actor=alice", 200, `href="/ui/?actor=alice">↑ Newest`},
		{"/ui/?before=1", 200, "No older revisions."},
		{"/ui/?prefix=%2F%2F", 400, "prefix"},
		{"/ui/?from=soon", 400, "is not a time"},
		{"/ui/rev/1", 200, "Revision 1"},
		{"/ui/rev/4", 400, "Revision 4 does not exist yet"}, // a future revision is bad_revision on every door
		{"/ui/rev/-1", 404, "is not a revision"},
		{"/ui/key/app/x", 200, "app/x"},
		{"/ui/key/app/x?a=0&b=1", 200, "Changes from r0 to r1"},
		{"/ui/key/app/x?a=x", 200, "pick two revisions"},
		{"/ui/key/app/y", 404, "no key"},
		{"/ui/key/app/gone", 200, "does not exist now: it was deleted in <a href=\"/ui/rev/3\">r3</a>"},
		{"/ui/key/app//y", 400, "empty segment"},
		{"/ui/nope", 404, "There is no page"},
		{"/ui/timeline.json?after=0", 200, `"rows"`},
		{"/ui/timeline.json?after=x", 400, "after"},
		{"/ui/static/app.js", 200, "uiActor"},
		{"/ui/static/nope.js", 404, ""},
	} {
		status, body, _ := c.do(http.MethodGet, tc.path, nil)
		if status != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: %d, want %d with %q in:\n%.300s", tc.path, status, tc.status, tc.want, body)
		}
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(c.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, _, h := c.do(http.MethodGet, "/ui/", nil)
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP = %q", csp)
	}
	if h.Get("Server-Timing") == "" {
		t.Error("no Server-Timing header")
	}
}

func TestStaticFilesAreCachedByVersion(t *testing.T) {
	c := startConfigd(t)
	_, page, _ := c.do(http.MethodGet, "/ui/", nil)
	m := regexp.MustCompile(`/ui/static/app\.js\?v=([0-9a-f]+)`).FindSubmatch(page)
	if m == nil {
		t.Fatal("no versioned script URL")
	}
	_, _, h := c.do(http.MethodGet, "/ui/static/app.js?v="+string(m[1]), nil)
	if h.Get("Cache-Control") != "public, max-age=31536000, immutable" || h.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("headers: %v", h)
	}
	status, _, _ := c.do(http.MethodGet, "/ui/static/app.js", nil, "If-None-Match", h.Get("ETag"))
	if status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", status)
	}
}

func TestOddKeysSurviveTheirURLs(t *testing.T) {
	c := startConfigd(t)
	keys := []string{"odd/what?x=1", "odd/hash#tag", "odd/100%", "odd/a b", "odd/ünïcødé", "odd/<tag>"}
	for _, k := range keys {
		c.put(k, "v", "", "alice", "")
	}
	_, page, _ := c.do(http.MethodGet, "/ui/?prefix=odd", nil)
	links := regexp.MustCompile(`href="(/ui/key/odd/[^"]+)"`).FindAllSubmatch(page, -1)
	if len(links) != len(keys) {
		t.Fatalf("%d key links in the timeline, want %d", len(links), len(keys))
	}
	for _, l := range links {
		path := strings.ReplaceAll(string(l[1]), "&amp;", "&")
		status, body, _ := c.do(http.MethodGet, path, nil)
		if status != 200 {
			t.Errorf("GET %s: %d", path, status)
			continue
		}
		found := false
		for _, k := range keys {
			if strings.Contains(string(body), "<code>"+htmlEscape(k)+"</code>") {
				found = true
			}
		}
		if !found {
			t.Errorf("GET %s: the page names none of the keys", path)
		}
	}
	// The search box goes to the key's page.
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	resp, err := cl.Get(c.URL + "/ui/key?key=" + url.QueryEscape("odd/what?x=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.EscapedPath() != "/ui/key/odd/what%3Fx=1" {
		t.Errorf("search: %d at %s", resp.StatusCode, resp.Request.URL.EscapedPath())
	}
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}

func TestSecretsHookHidesValues(t *testing.T) {
	st := startConfigd(t).st
	ctx := context.Background()
	for _, v := range []string{"hunter2", "hunter3"} {
		if _, err := st.Commit(ctx, audit.Txn{Actor: "a", Ops: []audit.Op{audit.Put("secret/db", []byte(v), "")}}); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(web.New(st, web.WithBasePath("/"), web.WithSecrets(func(k string) bool { return strings.HasPrefix(k, "secret/") })))
	defer ts.Close()
	for _, path := range []string{"/rev/2", "/key/secret/db", "/key/secret/db?a=1&b=2"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(body, "hunter") || !strings.Contains(body, "••••") {
			t.Errorf("%s: %d, shows the secret: %v", path, resp.StatusCode, strings.Contains(body, "hunter"))
		}
	}
}

func TestKeysFromSourcesShowTheirLayers(t *testing.T) {
	c := startConfigd(t, audit.WithLayers(audit.StoreLayer, "consul"))
	ctx := context.Background()
	c.put("app/x", "from the store", "", "alice", "")
	for _, v := range []string{"1", "2"} {
		if _, err := c.st.ApplySource(ctx, "consul", map[string]audit.LayerValue{"app/x": {Value: []byte(v)}}); err != nil {
			t.Fatal(err)
		}
	}
	status, body, _ := c.do(http.MethodGet, "/ui/key/app/x", nil)
	want := `<span class="layer effective">consul <span class="hint">(the value comes from here)</span></span> · <span class="layer">store <span class="hint">(hidden)</span></span>`
	if status != 200 || !strings.Contains(string(body), want) {
		t.Errorf("key page: %d, want the layer stack %s", status, want)
	}
	status, _, _ = c.do(http.MethodGet, "/ui/?origin=consul", nil)
	if status != 200 {
		t.Errorf("timeline filtered by source: %d", status)
	}
	// Consul owns the key: a rollback through the store is refused, and
	// the dialog says why (not a stale-diff conflict).
	s := newSession(t, c)
	st, a := s.post(map[string]any{"scope": "key", "key": "app/x", "to": 2, "reason": "r", "expect_rev": c.rev()}, "X-CSRF-Token", s.token)
	if st != http.StatusConflict || a.Conflict || a.Error == nil || a.Error.Code != "owned" || !strings.Contains(a.Error.Message, "consul") {
		t.Errorf("rollback of an owned key: %d %+v %+v", st, a, a.Error)
	}
}
