package web_test

// Tests of the UI's logins over HTTP, with authentication on: who gets
// in, what each token sees, the CSRF check of the login and logout
// forms, and sessions that end.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/web"
)

// authConfigd is a configd with authentication on and a few tokens.
type authConfigd struct {
	*configd
	auth    *authz.Auth
	secrets map[string]string // token name → secret
	// appRev changed only app/ keys, dbRev only db/ keys.
	appRev, dbRev int64
}

var uiTokens = map[string][]api.Grant{
	"reader-app": {{Permission: api.PermissionRead, Prefix: "app/"}},
	"writer-app": {{Permission: api.PermissionWrite, Prefix: "app/"}},
	"reader-all": {{Permission: api.PermissionRead, Prefix: ""}},
}

// startAuthConfigd starts configd with authentication on (and opts): the
// bootstrap admin token and uiTokens, and a history with a revision of
// app/ keys, one of db/ keys and one of both.
func startAuthConfigd(t testing.TB, opts ...configdtest.EnvOption) *authConfigd {
	t.Helper()
	e := configdtest.NewEnv(t, append([]configdtest.EnvOption{configdtest.WithAuth(uiTokens)}, opts...)...)
	c := &authConfigd{auth: e.Auth, secrets: e.Secrets}
	c.configd = newConfigd(t, e)
	c.appRev = c.commit("alice", "app limits", "app/limits", "app/db/timeout")
	c.dbRev = c.commit("dbadmin", "db password rotation", "db/password", "db/pool")
	c.commit("carol", "both", "app/flag", "db/flag")
	return c
}

// commit writes keys in one revision through the store and returns it.
func (c *authConfigd) commit(actor, reason string, keys ...string) int64 {
	c.t.Helper()
	txn := audit.Txn{Actor: actor, Reason: reason, Origin: "api"}
	for _, k := range keys {
		txn.Ops = append(txn.Ops, audit.Put(k, []byte("v-"+k), ""))
	}
	r, err := c.st.Commit(context.Background(), txn)
	if err != nil {
		c.t.Fatal(err)
	}
	return r.Rev
}

// revoke revokes a token through the API, as an admin.
func (c *authConfigd) revoke(name string) {
	c.t.Helper()
	status, b, _ := c.do(http.MethodDelete, "/v1/tokens/"+name, nil, "Authorization", "Bearer "+c.secrets[authz.BootstrapTokenName])
	if status != http.StatusNoContent {
		c.t.Fatalf("revoke %s: %d %s", name, status, b)
	}
}

// uiClient is a browser-like client: a cookie jar, redirects not
// followed.
type uiClient struct {
	c    *authConfigd
	http *http.Client
}

func newUIClient(c *authConfigd) *uiClient {
	jar, _ := cookiejar.New(nil)
	return &uiClient{c: c, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	body   string
	header http.Header
}

func (u *uiClient) send(method, path string, form url.Values, headers ...string) answer {
	u.c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u.c.URL+path, body)
	if err != nil {
		u.c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := u.http.Do(req)
	if err != nil {
		u.c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	return answer{resp.StatusCode, readAll(u.c.t, resp), resp.Header}
}

func (u *uiClient) get(path string, headers ...string) answer {
	u.c.t.Helper()
	return u.send(http.MethodGet, path, nil, headers...)
}

var csrfFieldRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf loads the login page and returns the CSRF token of its form.
func (u *uiClient) csrf() string {
	u.c.t.Helper()
	a := u.get("/ui/login")
	if a.status == http.StatusSeeOther { // logged in already: any page has it
		a = u.get("/ui/")
	}
	m := csrfFieldRE.FindStringSubmatch(a.body)
	if a.status != http.StatusOK || m == nil {
		u.c.t.Fatalf("login page: %d, CSRF field found: %v\n%s", a.status, m != nil, a.body)
	}
	return m[1]
}

// login logs in with a token's secret and returns the answer.
func (u *uiClient) login(secret string) answer {
	u.c.t.Helper()
	return u.send(http.MethodPost, "/ui/login", url.Values{"token": {secret}, "csrf": {u.csrf()}})
}

// loginAs logs in as a token and fails the test if that does not work.
func (u *uiClient) loginAs(name string) {
	u.c.t.Helper()
	if a := u.login(u.c.secrets[name]); a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/" {
		u.c.t.Fatalf("login as %s: %d %s %s", name, a.status, a.header.Get("Location"), a.body)
	}
}

func (u *uiClient) cookie(name string) *http.Cookie {
	base, _ := url.Parse(u.c.URL + "/ui/")
	for _, c := range u.http.Jar.Cookies(base) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestUIWithoutLoginGoesToLoginOr401(t *testing.T) {
	c := startAuthConfigd(t)
	u := newUIClient(c)
	for _, path := range []string{"/ui/", "/ui/rev/1", "/ui/key/app/limits", "/ui/key?key=app/limits", "/ui/no/such/page"} {
		a := u.get(path)
		if a.status != http.StatusSeeOther || !strings.HasPrefix(a.header.Get("Location"), "/ui/login?next=") {
			t.Errorf("GET %s: %d Location %q, want 303 to the login page", path, a.status, a.header.Get("Location"))
		}
		if strings.Contains(a.body, "app/limits") && !strings.Contains(path, "app/limits") {
			t.Errorf("GET %s shows a key: %s", path, a.body)
		}
	}
	for _, path := range []string{"/ui/timeline.json?after=0", "/ui/api/watch?prefix=&since=1&wait=0s"} {
		a := u.get(path)
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if a.status != http.StatusUnauthorized || json.Unmarshal([]byte(a.body), &e) != nil || e.Error.Code != api.CodeUnauthenticated {
			t.Errorf("GET %s: %d %s, want 401 unauthenticated JSON", path, a.status, a.body)
		}
	}
	a := u.send(http.MethodPost, "/ui/rollback", nil, "Content-Type", "application/json")
	if a.status != http.StatusUnauthorized {
		t.Errorf("POST /ui/rollback: %d %s, want 401", a.status, a.body)
	}
	// Open to all: the login page and the static files. The login page
	// tells nothing of the store.
	a = u.get("/ui/login")
	if a.status != http.StatusOK || !strings.Contains(a.body, `id="token"`) || strings.Contains(a.body, "store-rev") || strings.Contains(a.body, `id="rb"`) {
		t.Errorf("GET /ui/login: %d\n%s", a.status, a.body)
	}
	if a := u.get("/ui/static/app.js"); a.status != http.StatusOK {
		t.Errorf("GET /ui/static/app.js: %d", a.status)
	}
	// A bearer token configd does not know: 401, not the login page.
	if a := u.get("/ui/", "Authorization", "Bearer cfd_nope"); a.status != http.StatusUnauthorized {
		t.Errorf("GET /ui/ with an unknown bearer token: %d, want 401", a.status)
	}
}

func TestUIAcceptsABearerToken(t *testing.T) {
	c := startAuthConfigd(t)
	u := newUIClient(c)
	a := u.get("/ui/", "Authorization", "Bearer "+c.secrets["reader-app"])
	if a.status != http.StatusOK || !strings.Contains(a.body, "app/limits") || strings.Contains(a.body, "db/password") {
		t.Errorf("GET /ui/ as reader-app by bearer token: %d\n%s", a.status, a.body)
	}
	if strings.Contains(a.body, `id="logout"`) {
		t.Error("a page for a bearer token offers to log out")
	}
}

func TestLoginAndLogout(t *testing.T) {
	c := startAuthConfigd(t)
	u := newUIClient(c)

	// A wrong token: the login page again, 401, a message, no session.
	a := u.login("cfd_not-a-token")
	if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "does not accept this token") || !strings.Contains(a.body, `id="token"`) {
		t.Errorf("wrong token: %d\n%s", a.status, a.body)
	}
	if u.cookie("configd_session") != nil {
		t.Error("a wrong token got a session cookie")
	}

	// The right one: a session, then the timeline.
	a = u.login(c.secrets["reader-app"])
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/" {
		t.Fatalf("login: %d %q %s", a.status, a.header.Get("Location"), a.body)
	}
	var sc *http.Cookie
	for _, ck := range (&http.Response{Header: a.header}).Cookies() {
		if ck.Name == "configd_session" {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/ui" || sc.Secure || len(sc.Value) != 43 {
		t.Fatalf("session cookie = %+v; want HttpOnly, SameSite=Strict, Path=/ui, 256 bits in base64url, not Secure over plain HTTP", sc)
	}
	if strings.Contains(sc.Value, c.secrets["reader-app"]) {
		t.Fatal("the session cookie carries the token")
	}
	a = u.get("/ui/")
	if a.status != http.StatusOK || !strings.Contains(a.body, "reader-app") || !strings.Contains(a.body, `id="logout"`) {
		t.Fatalf("timeline after login: %d\n%s", a.status, a.body)
	}

	// Logout ends the session on the server, not only in this browser.
	stolen := sc.Value
	m := csrfFieldRE.FindStringSubmatch(a.body)
	a = u.send(http.MethodPost, "/ui/logout", url.Values{"csrf": {m[1]}})
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/ui/login" {
		t.Fatalf("logout: %d %q", a.status, a.header.Get("Location"))
	}
	if u.cookie("configd_session") != nil {
		t.Error("the session cookie outlives the logout")
	}
	if a := u.get("/ui/"); a.status != http.StatusSeeOther {
		t.Errorf("after logout: %d, want 303 to the login page", a.status)
	}
	replay := newUIClient(c)
	if a := replay.get("/ui/", "Cookie", "configd_session="+stolen); a.status != http.StatusSeeOther ||
		!strings.Contains(a.header.Get("Location"), "ended=1") {
		t.Errorf("the old session id after logout: %d %q, want 303 to the login page saying the session ended", a.status, a.header.Get("Location"))
	}
}

func TestLoginGoesBackToThePageAsked(t *testing.T) {
	c := startAuthConfigd(t)
	u := newUIClient(c)
	a := u.get("/ui/key/app/limits")
	loc, _ := url.Parse(a.header.Get("Location"))
	next := loc.Query().Get("next")
	if next != "/ui/key/app/limits" {
		t.Fatalf("next = %q", next)
	}
	for _, tc := range []struct{ next, want string }{
		{next, next},
		{"https://evil.example/", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/ui/\\evil", "/ui/"},
		{"/v1/tokens", "/ui/"},
	} {
		a := u.send(http.MethodPost, "/ui/login", url.Values{"token": {c.secrets["reader-app"]}, "csrf": {u.csrf()}, "next": {tc.next}})
		if a.status != http.StatusSeeOther || a.header.Get("Location") != tc.want {
			t.Errorf("login with next=%q: %d to %q, want %q", tc.next, a.status, a.header.Get("Location"), tc.want)
		}
	}
}

func TestLoginAndLogoutNeedTheCSRFToken(t *testing.T) {
	c := startAuthConfigd(t)
	u := newUIClient(c)
	tok := u.csrf()
	secret := c.secrets["reader-app"]
	for name, tc := range map[string]struct {
		form    url.Values
		headers []string
	}{
		"no token":    {form: url.Values{"token": {secret}}},
		"wrong token": {form: url.Values{"token": {secret}, "csrf": {strings.Repeat("A", 43)}}},
		"cross-site":  {form: url.Values{"token": {secret}, "csrf": {tok}}, headers: []string{"Sec-Fetch-Site", "cross-site"}},
		"other origin": {form: url.Values{"token": {secret}, "csrf": {tok}},
			headers: []string{"Origin", "https://evil.example"}},
	} {
		a := u.send(http.MethodPost, "/ui/login", tc.form, tc.headers...)
		if a.status != http.StatusForbidden {
			t.Errorf("login, %s: %d, want 403", name, a.status)
		}
		if u.cookie("configd_session") != nil {
			t.Fatalf("login, %s: got a session", name)
		}
	}
	// Without the CSRF cookie, the field alone is not enough.
	bare := newUIClient(c)
	if a := bare.send(http.MethodPost, "/ui/login", url.Values{"token": {secret}, "csrf": {tok}}); a.status != http.StatusForbidden {
		t.Errorf("login without the CSRF cookie: %d, want 403", a.status)
	}

	u.loginAs("reader-app")
	if a := u.send(http.MethodPost, "/ui/logout", url.Values{}); a.status != http.StatusForbidden {
		t.Errorf("logout without the CSRF token: %d, want 403", a.status)
	}
	if a := u.send(http.MethodPost, "/ui/logout", url.Values{"csrf": {u.csrf()}}, "Sec-Fetch-Site", "cross-site"); a.status != http.StatusForbidden {
		t.Errorf("cross-site logout: %d, want 403", a.status)
	}
	if a := u.get("/ui/"); a.status != http.StatusOK {
		t.Errorf("the session did not survive refused logouts: %d", a.status)
	}
}

func TestSessionSeesOnlyWhatItsGrantsAllow(t *testing.T) {
	c := startAuthConfigd(t)
	u := newUIClient(c)
	u.loginAs("reader-app")

	a := u.get("/ui/")
	for _, want := range []string{"app/limits", "app/flag", "alice", "carol"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	for _, hidden := range []string{"db/password", "db/flag", "dbadmin", "db password rotation"} {
		if strings.Contains(a.body, hidden) {
			t.Errorf("timeline shows %q to a reader of app/", hidden)
		}
	}
	a = u.get("/ui/?prefix=db/")
	if a.status != http.StatusOK || strings.Contains(a.body, "db/password") || !strings.Contains(a.body, "No revision matches") {
		t.Errorf("timeline of db/: %d\n%s", a.status, a.body)
	}

	// The live rows: the same filter.
	a = u.get("/ui/timeline.json?after=0")
	var tj struct {
		Rows []struct {
			Rev        int64
			NumChanges int `json:"num_changes"`
			Keys       []struct{ Key string }
		}
	}
	if err := json.Unmarshal([]byte(a.body), &tj); err != nil || a.status != http.StatusOK {
		t.Fatalf("timeline.json: %d %s (%v)", a.status, a.body, err)
	}
	if len(tj.Rows) != 2 {
		t.Errorf("timeline.json rows = %+v, want the 2 revisions that changed app/ keys", tj.Rows)
	}
	for _, r := range tj.Rows {
		if r.Rev == c.dbRev || r.NumChanges != len(r.Keys) {
			t.Errorf("row %+v: a db/ revision, or a count of keys it may not read", r)
		}
		for _, k := range r.Keys {
			if !strings.HasPrefix(k.Key, "app/") {
				t.Errorf("row %d shows key %s", r.Rev, k.Key)
			}
		}
	}

	// Revision pages: db/ only is 404; mixed shows only app/.
	if a := u.get("/ui/rev/" + strconv.FormatInt(c.dbRev, 10)); a.status != http.StatusNotFound || strings.Contains(a.body, "db/p") {
		t.Errorf("revision of db/ keys only: %d\n%s", a.status, a.body)
	}
	a = u.get("/ui/rev/" + strconv.FormatInt(c.dbRev+1, 10))
	if a.status != http.StatusOK || !strings.Contains(a.body, "app/flag") || strings.Contains(a.body, "db/flag") {
		t.Errorf("mixed revision: %d\n%s", a.status, a.body)
	}
	// Key pages need read on the key.
	if a := u.get("/ui/key/db/password"); a.status != http.StatusForbidden || strings.Contains(a.body, "v-db/password") {
		t.Errorf("key page of db/password: %d", a.status)
	}
	if a := u.get("/ui/key/app/limits"); a.status != http.StatusOK || !strings.Contains(a.body, "v-app/limits") {
		t.Errorf("key page of app/limits: %d", a.status)
	}
	// The live timeline's watch: narrowed to app/.
	a = u.get("/ui/api/watch?prefix=&since=0&wait=0s")
	if a.status != http.StatusOK || !strings.Contains(a.body, "app/limits") || strings.Contains(a.body, `"db/`) {
		t.Errorf("watch of everything as a reader of app/: %d %s", a.status, a.body)
	}
	if a := u.get("/ui/api/watch?prefix=db/&since=0&wait=0s"); a.status != http.StatusForbidden {
		t.Errorf("watch of db/ as a reader of app/: %d %s, want 403", a.status, a.body)
	}
}

// rollback posts a rollback from the UI with the session's CSRF token.
func (u *uiClient) rollback(body string) answer {
	u.c.t.Helper()
	a := u.get("/ui/")
	m := tokenRE.FindStringSubmatch(a.body)
	if m == nil {
		u.c.t.Fatalf("no CSRF token in the timeline: %d", a.status)
	}
	req, _ := http.NewRequest(http.MethodPost, u.c.URL+"/ui/rollback", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", m[1])
	resp, err := u.http.Do(req)
	if err != nil {
		u.c.t.Fatal(err)
	}
	defer resp.Body.Close()
	return answer{resp.StatusCode, readAll(u.c.t, resp), resp.Header}
}

func TestRollbackFromASessionNeedsWriteAndRecordsTheToken(t *testing.T) {
	c := startAuthConfigd(t)
	reader := newUIClient(c)
	reader.loginAs("reader-app")
	if a := reader.rollback(`{"scope":"prefix","prefix":"app/","to":1,"dry_run":true}`); a.status != http.StatusForbidden {
		t.Errorf("dry run by a reader: %d %s, want 403", a.status, a.body)
	}
	writer := newUIClient(c)
	writer.loginAs("writer-app")
	for _, body := range []string{
		`{"scope":"prefix","prefix":"db/","to":1,"reason":"x"}`,
		`{"scope":"all","to":1,"reason":"x"}`,
	} {
		if a := writer.rollback(body); a.status != http.StatusForbidden || !strings.Contains(a.body, "writer-app") {
			t.Errorf("%s by a writer of app/: %d %s, want 403", body, a.status, a.body)
		}
	}
	if _, err := c.st.Commit(context.Background(), audit.Txn{Actor: "bob", Reason: "bad limits",
		Ops: []audit.Op{audit.Put("app/limits", []byte("rps: 1"), "")}}); err != nil {
		t.Fatal(err)
	}
	a := writer.rollback(`{"scope":"key","key":"app/limits","to":` + strconv.FormatInt(c.appRev, 10) + `,"reason":"INC-1","actor":"mallory"}`)
	var res struct {
		Rev     int64
		Changed bool
	}
	if err := json.Unmarshal([]byte(a.body), &res); err != nil || a.status != http.StatusOK || !res.Changed {
		t.Fatalf("rollback of app/limits: %d %s", a.status, a.body)
	}
	r, err := c.st.Revision(context.Background(), res.Rev)
	if err != nil {
		t.Fatal(err)
	}
	if r.Actor != "writer-app" {
		t.Errorf("rollback actor = %q, want the session's token, writer-app", r.Actor)
	}
}

func TestRevokedTokenEndsItsSessions(t *testing.T) {
	c := startAuthConfigd(t)
	u := newUIClient(c)
	u.loginAs("reader-app")
	if a := u.get("/ui/"); a.status != http.StatusOK {
		t.Fatalf("before revoking: %d", a.status)
	}
	c.revoke("reader-app")
	a := u.get("/ui/")
	if a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Location"), "ended=1") {
		t.Errorf("after revoking: %d %q, want 303 to the login page", a.status, a.header.Get("Location"))
	}
	if a := u.get("/ui/timeline.json?after=0"); a.status != http.StatusUnauthorized {
		t.Errorf("timeline.json after revoking: %d, want 401", a.status)
	}
	if a := u.login(c.secrets["reader-app"]); a.status != http.StatusUnauthorized {
		t.Errorf("login with the revoked token: %d, want 401", a.status)
	}
}

// TestRevokedTokenEndsItsSessionsLiveWatch: the live timeline's watch of a
// session (server-sent events through /ui/api/watch, with the cookie) ends
// with unauthenticated when the session's token is revoked, and a change
// written after the revocation never reaches it.
func TestRevokedTokenEndsItsSessionsLiveWatch(t *testing.T) {
	c := startAuthConfigd(t)
	u := newUIClient(c)
	u.loginAs("reader-app")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/ui/api/watch?prefix=&since="+strconv.FormatInt(c.st.Rev(), 10), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := u.http.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("live watch: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := bufio.NewScanner(resp.Body)
	// next returns the next event that is not progress, and its data.
	next := func() (string, string) {
		var event string
		for events.Scan() {
			line := events.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event != api.WatchProgress:
				return event, strings.TrimPrefix(line, "data: ")
			}
		}
		return "end", fmt.Sprint(events.Err())
	}
	c.commit("alice", "live", "app/live")
	if ev, data := next(); ev != "changes" || !strings.Contains(data, "app/live") {
		t.Fatalf("first event: %s %s, want the change of app/live", ev, data)
	}
	c.revoke("reader-app")
	c.commit("alice", "after the revocation", "app/after")
	ev, data := next()
	if ev != "error" || !strings.Contains(data, `"code":"`+api.CodeUnauthenticated+`"`) || strings.Contains(data, "app/after") {
		t.Fatalf("after revoking: %s %s, want an error event with code unauthenticated", ev, data)
	}
	if ev, data := next(); ev != "end" {
		t.Errorf("the watch goes on after its error: %s %s", ev, data)
	}
}

// downSessions is a session table whose store does not answer.
type downSessions struct{}

func (downSessions) Create(context.Context, web.Principal) (string, error) {
	return "", errors.New("etcd: context deadline exceeded")
}
func (downSessions) Get(string) (web.Principal, bool) { return nil, false }
func (downSessions) End(context.Context, string) error {
	return errors.New("etcd: context deadline exceeded")
}

// TestLoginWhenTheSessionTableIsDown: a login that cannot open a session
// (a replica's shared table without etcd) answers 503 with a message that
// says so, sets no session cookie, and bearer tokens go on working.
func TestLoginWhenTheSessionTableIsDown(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithAuth(uiTokens), configdtest.WithHandlerOptions(httpapi.WithUISessions(downSessions{})))
	c := &authConfigd{auth: e.Auth, secrets: e.Secrets, configd: newConfigd(t, e)}
	u := newUIClient(c)
	a := u.login(c.secrets["reader-all"])
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "cannot open a session") {
		t.Errorf("login: %d, want 503 saying no session can be opened\n%s", a.status, a.body)
	}
	if u.cookie("configd_session") != nil {
		t.Error("a session cookie was set")
	}
	if a := u.get("/ui/", "Authorization", "Bearer "+c.secrets["reader-all"]); a.status != http.StatusOK {
		t.Errorf("a bearer token on a page: %d", a.status)
	}
}
