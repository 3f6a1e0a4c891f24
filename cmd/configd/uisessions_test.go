package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
)

// browser is a web UI user moved between replicas by a load balancer: one
// set of cookies sent to whichever replica it asks (a cookie jar would do
// the same, as cookies do not tell ports apart), redirects not followed.
type browser struct {
	t       *testing.T
	client  *http.Client
	cookies map[string]string
}

func newBrowser(t *testing.T) *browser {
	return &browser{t: t, cookies: map[string]string{}, client: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request to d with the browser's cookies, keeps the cookies
// it sets, and returns the status, the Location and the body.
func (b *browser) do(d *daemon, method, path, contentType, body string, headers ...string) (int, string, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, d.url(path), strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	for name, value := range b.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s on %s: %v", method, path, d.Addr, err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(out)
}

var (
	loginCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	pageCSRF  = regexp.MustCompile(`data-csrf="([^"]+)"`)
)

// login logs in on d with a token through the login form.
func (b *browser) login(d *daemon, token string) {
	b.t.Helper()
	st, _, page := b.do(d, http.MethodGet, "/ui/login", "", "")
	m := loginCSRF.FindStringSubmatch(page)
	if st != http.StatusOK || m == nil {
		b.t.Fatalf("login page on %s: %d\n%s", d.Addr, st, page)
	}
	form := url.Values{"token": {token}, "csrf": {m[1]}}.Encode()
	if st, to, page := b.do(d, http.MethodPost, "/ui/login", "application/x-www-form-urlencoded", form); st != http.StatusSeeOther || to != "/ui/" {
		b.t.Fatalf("login on %s: %d to %q\n%s", d.Addr, st, to, page)
	}
}

// loggedIn reports whether the timeline loads on d (else the browser is
// sent to the login page).
func (b *browser) loggedIn(d *daemon) bool {
	b.t.Helper()
	st, to, _ := b.do(d, http.MethodGet, "/ui/", "", "")
	if st != http.StatusOK && (st != http.StatusSeeOther || !strings.HasPrefix(to, "/ui/login")) {
		b.t.Fatalf("timeline on %s: %d to %q", d.Addr, st, to)
	}
	return st == http.StatusOK
}

// testUISessionsAcrossReplicas: a user logs in on r1 and goes on on r2 (a
// page, a rollback with the CSRF token); logged out on r2, the session is
// over on r1; a new session ends on both replicas when its token is
// revoked.
func testUISessionsAcrossReplicas(t *testing.T, c *configdtest.Cluster) {
	r1, r2, created := startWithToken(t, c, "ui-user", `[{"permission":"write","prefix":"app/"}]`)
	bearer := []string{"Authorization", "Bearer " + clusterAdmin}
	var last api.WriteResponse
	for _, v := range []string{"1", "2"} {
		st, body, _ := r1.request(http.MethodPut, "/v1/kv/app/a", []byte(v), bearer...)
		if st != http.StatusOK || json.Unmarshal(body, &last) != nil {
			t.Fatalf("put: %d %s", st, body)
		}
	}
	if st, body, _ := r2.request(http.MethodGet, fmt.Sprintf("/v1/kv/app/a?min_rev=%d", last.Rev), nil, bearer...); st != http.StatusOK {
		t.Fatalf("r2 at the last revision: %d %s", st, body)
	}

	// r2 knows the new token before the session reaches it: a replica
	// that does not know a session's token ends the session.
	waitFor(t, "the token created on r1 works on r2", func() bool {
		st, _, _ := r2.request(http.MethodGet, "/v1/kv/app/a", nil, "Authorization", "Bearer "+created.Token)
		return st == http.StatusOK
	})
	b := newBrowser(t)
	b.login(r1, created.Token)
	sid := b.cookies["configd_session"]
	if !b.loggedIn(r1) {
		t.Fatal("the session does not work on r1, where it was opened")
	}
	waitFor(t, "the session opened on r1 works on r2", func() bool { return b.loggedIn(r2) })
	_, _, page := b.do(r2, http.MethodGet, "/ui/key/app/a", "", "")
	m := pageCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on r2's page:\n%s", page)
	}
	rb := fmt.Sprintf(`{"scope":"key","key":"app/a","to":%d,"reason":"moved replica","expect_rev":%d}`, last.Rev-1, last.Rev)
	st, _, out := b.do(r2, http.MethodPost, "/ui/rollback", "application/json", rb, "X-CSRF-Token", m[1])
	var rolled struct {
		Rev int64 `json:"rev"`
	}
	if st != http.StatusOK || json.Unmarshal([]byte(out), &rolled) != nil || rolled.Rev != last.Rev+1 {
		t.Fatalf("rollback on r2 with the session of r1: %d %s", st, out)
	}

	// Logged out on r2, the session is over on r1 too: its cookie,
	// replayed, opens nothing anywhere.
	st, to, _ := b.do(r2, http.MethodPost, "/ui/logout", "application/x-www-form-urlencoded", url.Values{"csrf": {m[1]}}.Encode())
	if st != http.StatusSeeOther || to != "/ui/login" || b.cookies["configd_session"] != "" {
		t.Fatalf("logout on r2: %d to %q, cookie %q", st, to, b.cookies["configd_session"])
	}
	b.cookies["configd_session"] = sid
	if b.loggedIn(r2) {
		t.Error("the session works on r2 after logging out there")
	}
	waitFor(t, "the logout on r2 ends the session on r1", func() bool { return !b.loggedIn(r1) })

	// Revoked on r1, the token's session ends on both replicas.
	b.login(r1, created.Token)
	waitFor(t, "the new session works on r2", func() bool { return b.loggedIn(r2) })
	if st, body, _ := r1.request(http.MethodDelete, "/v1/tokens/ui-user", nil, bearer...); st != http.StatusNoContent {
		t.Fatalf("revoke on r1: %d %s", st, body)
	}
	if b.loggedIn(r1) {
		t.Error("the session of a revoked token works on r1")
	}
	waitFor(t, "the revocation ends the session on r2", func() bool { return !b.loggedIn(r2) })
}
