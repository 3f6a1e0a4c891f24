package web_test

// Logins in a real browser: the login form, what a reader of app/ sees,
// the session cookie's flags as Chromium stores them, logout and a
// revoked token.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// logIn fills in the login form the tab shows with secret and submits it.
func (tb *tab) logIn(secret string) {
	tb.t.Helper()
	tb.waitJS("the login form", `document.getElementById("token") !== null && document.body.dataset.ready === "true"`)
	tb.typeInto("#token", secret)
	tb.click("#login-submit")
}

// onLoginPage waits for the login page.
func (tb *tab) onLoginPage() {
	tb.t.Helper()
	tb.waitJS("the login page", `document.querySelector("h1") !== null && document.querySelector("h1").textContent === "Log in" && document.body.dataset.ready === "true"`)
}

// onTimeline waits for the timeline.
func (tb *tab) onTimeline() {
	tb.t.Helper()
	tb.waitJS("the timeline", `document.querySelector("h1") !== null && document.querySelector("h1").textContent === "Timeline" && document.body.dataset.ready === "true"`)
}

// TestBrowserLoginAsReader: a wrong token is refused with a message; a
// reader of app/ sees only app/ keys, live, and a revision of db/ keys is
// not found; the session cookie is out of the page's reach and strict.
func TestBrowserLoginAsReader(t *testing.T) {
	c := startAuthConfigd(t)
	tb := newTab(t)
	tb.open(c.URL + "/ui/")
	tb.onLoginPage()

	tb.logIn("cfd_not-a-token")
	tb.waitJS("the refusal", `document.getElementById("login-message") !== null && document.getElementById("login-message").textContent.includes("does not accept this token")`)
	tb.onLoginPage()
	tb.screenshot("login.png")

	tb.logIn(c.secrets["reader-app"])
	tb.onTimeline()
	if got := tb.text("#user"); !strings.Contains(got, "reader-app") {
		t.Errorf("header says %q, want the token's name", got)
	}
	tb.waitJS("the app/ revision", fmt.Sprintf(`document.getElementById("r%d") !== null`, c.appRev))
	if eval[bool](tb, fmt.Sprintf(`document.getElementById("r%d") !== null`, c.dbRev)) {
		t.Error("the timeline shows a revision of db/ keys only")
	}
	if body := tb.text("main"); strings.Contains(body, "db/password") || strings.Contains(body, "db/flag") || strings.Contains(body, "dbadmin") {
		t.Errorf("the timeline shows db/ to a reader of app/:\n%s", body)
	}

	// Live, through /ui/api/watch with the session cookie: a new app/
	// revision appears; one of db/ keys, committed first, does not.
	tb.waitJS("live status", `document.getElementById("live").textContent === "Live"`)
	hidden := c.commit("dbadmin", "db only", "db/hidden")
	shown := c.commit("alice", "app live", "app/live")
	tb.waitJS("the live row", fmt.Sprintf(`document.getElementById("r%d") !== null`, shown))
	if eval[bool](tb, fmt.Sprintf(`document.getElementById("r%d") !== null`, hidden)) {
		t.Error("the live timeline shows a revision of db/ keys only")
	}

	// Neither cookie is readable by the page's scripts.
	if jar := eval[string](tb, `document.cookie`); strings.Contains(jar, "configd_session") || strings.Contains(jar, "configd_csrf") {
		t.Errorf("document.cookie = %q: the session is readable by scripts", jar)
	}
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{c.URL + "/ui/"}})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, ck := range res.Cookies {
		if ck.Name == "configd_session" {
			session = ck
		}
	}
	if session == nil {
		t.Fatalf("no configd_session cookie in the browser: %+v", res.Cookies)
	}
	if !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Path != "/ui" {
		t.Errorf("session cookie: HttpOnly %v, SameSite %q, Path %q; want HttpOnly, Strict, /ui", session.HTTPOnly, session.SameSite, session.Path)
	}

	// A revision of db/ keys only: not found for this token.
	tb.open(fmt.Sprintf("%s/ui/rev/%d", c.URL, c.dbRev))
	tb.waitJS("the not-found page", `document.querySelector("h1").textContent === "Not found"`)
	if body := tb.text("main"); strings.Contains(body, "db/password") {
		t.Errorf("the not-found page names a db/ key: %s", body)
	}
	// A key page of app/: there.
	tb.open(c.URL + "/ui/key/app/limits")
	tb.waitJS("the key page", `document.querySelector("h1") !== null && document.querySelector("h1").textContent.includes("limits")`)
}

// TestBrowserLogout: after logging out, the next page is the login page.
func TestBrowserLogout(t *testing.T) {
	c := startAuthConfigd(t)
	tb := newTab(t)
	tb.open(c.URL + "/ui/login")
	tb.logIn(c.secrets["reader-all"])
	tb.onTimeline()
	tb.click("#logout button")
	tb.onLoginPage()
	tb.open(c.URL + "/ui/")
	tb.onLoginPage()
	tb.open(fmt.Sprintf("%s/ui/rev/%d", c.URL, c.appRev))
	tb.onLoginPage()
}

// TestBrowserRevokedTokenEndsTheSession: the next request after the token
// is revoked goes to the login page.
func TestBrowserRevokedTokenEndsTheSession(t *testing.T) {
	c := startAuthConfigd(t)
	tb := newTab(t)
	tb.open(c.URL + "/ui/")
	tb.logIn(c.secrets["reader-app"])
	tb.onTimeline()
	c.revoke("reader-app")
	tb.open(fmt.Sprintf("%s/ui/rev/%d", c.URL, c.appRev))
	tb.onLoginPage()
	if msg := tb.text("#login-message"); !strings.Contains(msg, "session has ended") {
		t.Errorf("login page message = %q, want one saying the session ended", msg)
	}
	// The revoked token cannot log in again.
	tb.logIn(c.secrets["reader-app"])
	tb.waitJS("the refusal", `document.getElementById("login-message") !== null && document.getElementById("login-message").textContent.includes("does not accept this token")`)
}
