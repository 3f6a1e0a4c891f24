package web_test

// Tests of the UI in a real browser: Debian's chromium, headless, driven
// with chromedp, against a real configd in the test process. They wait for
// DOM conditions with bounded timeouts; they never sleep.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
)

// stepTimeout bounds every wait for a page condition.
const stepTimeout = 15 * time.Second

// browser is one headless Chromium for the package's tests; each test gets
// its own tab (and so its own cookies only if it asks for an incognito
// context).
var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
	dir    string
}

func startBrowser() (context.Context, error) {
	browser.once.Do(func() {
		path, err := configdtest.ChromiumPath()
		if err != nil {
			browser.err = err
			return
		}
		browser.dir, err = os.MkdirTemp("", "configd-web-chromium-")
		if err != nil {
			browser.err = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(browser.dir),
			chromedp.WindowSize(1280, 860),
		)
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		// The first Do starts the browser; its context has no timeout, so
		// that the browser lives until TestMain ends it.
		if err := chromedp.Do(ctx); err != nil {
			cancel()
			acancel()
			browser.err = fmt.Errorf("start %s: %w (run make test-deps)", path, err)
			return
		}
		browser.ctx = ctx
		browser.cancel = func() { cancel(); acancel() }
	})
	return browser.ctx, browser.err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	if browser.dir != "" {
		os.RemoveAll(browser.dir)
	}
	os.Exit(code)
}

// tab is one browser tab of a test, with its own cookie jar and storage
// (a fresh browser context) and a record of the page's uncaught
// exceptions and Content-Security-Policy violations, which fail the test.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func newTab(t *testing.T) *tab {
	t.Helper()
	bctx, err := startBrowser()
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	tb := &tab{t: t}
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext(),
		chromedp.WithListener(func(ev any) {
			var problem string
			switch ev := ev.(type) {
			case *runtime.EventExceptionThrown:
				problem = "uncaught exception: " + exceptionText(ev.ExceptionDetails)
			case *log.EventEntryAdded:
				if ev.Entry != nil && strings.Contains(ev.Entry.Text, "Content Security Policy") {
					problem = "CSP violation: " + ev.Entry.Text
				}
			case *runtime.EventConsoleAPICalled:
				if ev.Type == runtime.ConsoleAPICalledTypeError {
					for _, a := range ev.Args {
						problem += " " + string(a.Value) + a.Description
					}
					problem = "console.error:" + problem
				}
			}
			if problem != "" {
				tb.mu.Lock()
				tb.problems = append(tb.problems, problem)
				tb.mu.Unlock()
			}
		}))
	t.Cleanup(cancel)
	tb.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 860)); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			t.Errorf("page: %s", p)
		}
	})
	return tb
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return ""
	}
	s := d.Text
	if d.Exception != nil {
		s += " " + d.Exception.Description
	}
	return fmt.Sprintf("%s (%s:%d)", s, d.URL, d.LineNumber+1)
}

// do runs actions with a bounded wait.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is truthy. It keeps waiting
// across navigations (a click on a link, the page's own location.assign),
// which destroy the document the poll runs in.
func (tb *tab) waitJS(what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		left := time.Until(deadline)
		ctx, cancel := context.WithTimeout(tb.ctx, left+time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(left)))
		cancel()
		if err == nil {
			return
		}
		if navigated(err) && time.Now().Before(deadline) {
			continue
		}
		tb.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, tb.text("body"))
	}
}

// navigated reports whether err says the page went away under a script.
func navigated(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Cannot find context") || strings.Contains(s, "context was destroyed") ||
		strings.Contains(s, "navigated") || strings.Contains(s, "not survive navigation")
}

// open navigates to a page of the UI and waits for its script to be ready.
func (tb *tab) open(url string) {
	tb.t.Helper()
	tb.do("navigate to "+url, chromedp.Navigate(url))
	tb.waitJS("the page script", `document.body && document.body.dataset.ready === "true"`)
}

// text returns the innerText of the first element sel matches.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.do("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

func (tb *tab) typeInto(sel, text string) {
	tb.t.Helper()
	tb.do("type into "+sel, chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ""`, sel)),
		chromedp.SendKeys(chromedp.CSS(sel), text))
}

// screenshot saves a PNG of the viewport to docs/screenshots/name when
// CONFIGD_SCREENSHOTS=1 (make screenshots).
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	if os.Getenv("CONFIGD_SCREENSHOTS") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	// No blinking caret or half-finished highlight in the picture.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur && document.activeElement.tagName !== "BODY" && document.activeElement.closest("dialog") === null ? document.activeElement.blur() : 0`)); err != nil {
		tb.t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("saved docs/screenshots/%s", name)
}

// darkMode makes the page's prefers-color-scheme dark.
func (tb *tab) darkMode() {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		tb.t.Fatal(err)
	}
}

// beforeEachPage runs script in every page the tab loads from now on,
// before the page's own scripts.
func (tb *tab) beforeEachPage(script string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: script}); err != nil {
		tb.t.Fatal(err)
	}
}

// jsString quotes s as a JavaScript string literal.

// --- The tests ---------------------------------------------------------------

// TestBrowserFindDiffAndRollBack is the on-call path: find the bad change in
// the timeline, open its diff, roll the key back with a reason, and check
// through the API that the value is back and the audit says who and why.
func TestBrowserFindDiffAndRollBack(t *testing.T) {
	c := startConfigd(t)
	seedTimeline(c)
	good := `{"rps": 100, "burst": 20, "regions": ["eu-west-1", "us-east-1"]}`
	goodRev := c.put("app/limits", good, "application/json", "alice", "initial limits")
	c.put("app/db/timeout", "5s", "", "alice", "db timeout")
	bad := c.put("app/limits", `{"rps": 5, "burst": 20, "regions": ["eu-west-1"]}`, "application/json", "bob", "lower rps for load test")
	c.put("app/db/pool", "size: 20\nidle: 5\n", "application/yaml", "carol", "pool sizing")

	tb := newTab(t)
	tb.open(c.URL + "/")
	row := fmt.Sprintf("#r%d", bad)
	tb.waitJS("the bad revision's row", fmt.Sprintf(`document.querySelector(%q) !== null`, row))
	rowText := tb.text(row)
	for _, want := range []string{"bob", "lower rps for load test", "app/limits", "1 key", "api"} {
		if !strings.Contains(rowText, want) {
			t.Errorf("timeline row %s = %q, want it to contain %q", row, rowText, want)
		}
	}
	// Time: local in the cell, UTC in the title.
	title := eval[string](tb, fmt.Sprintf(`document.querySelector("%s time").title`, row))
	if !strings.HasSuffix(title, " UTC") {
		t.Errorf("time title = %q, want the UTC time", title)
	}
	tb.waitJS("live status", `document.getElementById("live").textContent === "Live"`)

	// Open the diff.
	tb.click(row + " .c-rev a")
	tb.waitJS("the revision page", fmt.Sprintf(`document.querySelector("h1").textContent === "Revision %d"`, bad))
	tb.waitJS("the diff", `document.querySelector(".dl.del") !== null`)
	del, add := tb.text(".dl.del"), tb.text(".dl.add")
	if !strings.Contains(del, `"rps": 100,`) || !strings.Contains(add, `"rps": 5,`) {
		t.Errorf("diff lines: del %q, add %q; want the pretty-printed rps change", del, add)
	}
	if got := tb.text(".change h3"); got != "app/limits" {
		t.Errorf("change heading = %q", got)
	}
	tb.screenshot("diff.png")

	// Roll the key back to the revision before the bad one.
	tb.click(".change .rb-open")
	tb.waitJS("the dialog", `document.getElementById("rb").open`)
	tb.waitJS("the dry-run diff", `document.getElementById("rb-summary").textContent.includes("will change 1 key")`)
	if got := tb.text("#rb-diff .dl.add"); !strings.Contains(got, `"rps": 100,`) {
		t.Errorf("dialog diff adds %q, want the old rps back", got)
	}
	if eval[bool](tb, `document.getElementById("rb-confirm").disabled`) != true {
		t.Error("confirm is enabled before a reason is given")
	}
	tb.typeInto("#rb-reason", "INC-7: rps too low for production")
	tb.typeInto("#rb-actor", "dana (on call)")
	tb.waitJS("confirm enabled", `!document.getElementById("rb-confirm").disabled`)
	tb.screenshot("rollback-dialog.png")
	tb.click("#rb-confirm")

	// The page shows the new revision.
	tb.waitJS("the new revision's page", fmt.Sprintf(`/Revision \d+/.test(document.querySelector("h1")?.textContent) && document.querySelector("h1").textContent !== "Revision %d"`, bad))
	newRev := c.rev()
	if got := tb.text("h1"); got != fmt.Sprintf("Revision %d", newRev) {
		t.Errorf("after the rollback the page shows %q, want revision %d", got, newRev)
	}

	// Through the API: the value is back, the audit says who and why.
	kv, ok := c.get("app/limits")
	if !ok || kv.Value != good {
		t.Errorf("app/limits = %q (exists %v), want %q", kv.Value, ok, good)
	}
	r := c.revision(newRev)
	if r.Actor != "dana (on call)" {
		t.Errorf("rollback actor = %q, want the name typed in the dialog", r.Actor)
	}
	wantReason := fmt.Sprintf("rollback to %d: INC-7: rps too low for production", bad-1)
	if r.Reason != wantReason || r.RollbackTo != bad-1 || len(r.Changes) != 1 || r.Changes[0].Key != "app/limits" {
		t.Errorf("rollback revision = %+v, want reason %q, rollback_to %d, one change of app/limits", r, wantReason, bad-1)
	}
	if eval[string](tb, `localStorage.getItem("configd.actor")`) != "dana (on call)" {
		t.Error("the name was not remembered in localStorage")
	}
	if got := tb.text("dd.actor"); got != "dana (on call)" {
		t.Errorf("revision page actor = %q", got)
	}

	// The key page shows the value and its history, and compares two
	// revisions picked from it.
	tb.click(".change h3 a")
	tb.waitJS("the key page", `document.querySelector(".key-title code") && document.querySelector(".key-title code").textContent === "app/limits"`)
	if got := tb.text("#value"); !strings.Contains(got, `"rps": 100,`) {
		t.Errorf("key page value = %q", got)
	}
	if got := tb.text(".ctype"); got != "application/json" {
		t.Errorf("content type = %q", got)
	}
	if got := tb.text(".layers"); got != "store (the value comes from here)" {
		t.Errorf("layers = %q", got)
	}
	tb.click(fmt.Sprintf(`input[name="a"][value="%d"]`, goodRev))
	tb.click(fmt.Sprintf(`input[name="b"][value="%d"]`, bad))
	tb.click(".history-form button[type=submit]")
	tb.waitJS("the comparison", fmt.Sprintf(`document.getElementById("h-compare").textContent === "Changes from r%d to r%d"`, goodRev, bad))
	if got := tb.text(".compare .dl.add"); !strings.Contains(got, `"rps": 5,`) {
		t.Errorf("compare adds %q; section: %s", got, tb.text(".compare"))
	}

	// The timeline shows the rollback.
	tb.open(c.URL + "/ui/")
	tb.waitJS("live status", `document.getElementById("live").textContent === "Live"`)
	if got := tb.text(fmt.Sprintf("#r%d .c-origin", newRev)); got != fmt.Sprintf("rollback to r%d", bad-1) {
		t.Errorf("the rollback's origin cell = %q", got)
	}
	tb.screenshot("timeline.png")
}

// seedTimeline writes a few revisions from several actors and origins, so
// that the timeline (and its screenshot) looks like a real one.
func seedTimeline(c *configd) {
	c.t.Helper()
	ctx := context.Background()
	c.put("payments/currency", "EUR", "", "erin", "launch payments")
	c.put("payments/retry", `{"attempts": 3, "backoff": "200ms"}`, "application/json", "erin", "retry policy")
	if _, err := c.st.Commit(ctx, audit.Txn{Actor: "consul-sync", Origin: "source:consul", Reason: "consul KV changed",
		Ops: []audit.Op{audit.Put("edge/rate", []byte("1000"), ""), audit.Put("edge/burst", []byte("50"), ""),
			audit.Put("edge/regions", []byte("eu,us"), ""), audit.Put("edge/tls", []byte("on"), "")}}); err != nil {
		c.t.Fatal(err)
	}
}

// TestBrowserTimelineIsLive: a revision committed while the timeline is
// open appears at the top without a reload, over server-sent events.
func TestBrowserTimelineIsLive(t *testing.T) {
	c := startConfigd(t)
	c.put("svc/a", "1", "", "alice", "first")
	tb := newTab(t)
	tb.open(c.URL + "/ui/")
	tb.waitJS("live status", `document.getElementById("live").textContent === "Live"`)
	eval[chromedp.Void](tb, `window.__sameDocument = 1`)

	rev := c.put("svc/b", "2", "", "frank", "added while the page was open")
	row := fmt.Sprintf("#r%d", rev)
	tb.waitJS("the new row", fmt.Sprintf(`document.querySelector(%q) !== null`, row))
	if eval[int](tb, `window.__sameDocument || 0`) != 1 {
		t.Fatal("the page reloaded")
	}
	if first := eval[string](tb, `document.querySelector("#rows tr").id`); first != row[1:] {
		t.Errorf("first row is %q, want the new revision on top", first)
	}
	got := tb.text(row)
	for _, want := range []string{"frank", "added while the page was open", "svc/b"} {
		if !strings.Contains(got, want) {
			t.Errorf("live row = %q, want %q in it", got, want)
		}
	}

	// A filtered timeline adds only the revisions that match.
	tb.open(c.URL + "/ui/?actor=alice")
	tb.waitJS("live status", `document.getElementById("live").textContent === "Live"`)
	other := c.put("svc/c", "3", "", "frank", "not alice")
	mine := c.put("svc/d", "4", "", "alice", "alice again")
	tb.waitJS("alice's new row", fmt.Sprintf(`document.querySelector("#r%d") !== null`, mine))
	if eval[bool](tb, fmt.Sprintf(`document.querySelector("#r%d") !== null`, other)) {
		t.Error("the actor-filtered timeline shows another actor's revision")
	}
}

// TestBrowserTimelineLongPollFallback: without EventSource the timeline
// stays live through the long poll.
func TestBrowserTimelineLongPollFallback(t *testing.T) {
	c := startConfigd(t)
	c.put("svc/a", "1", "", "alice", "first")
	tb := newTab(t)
	tb.beforeEachPage(`delete window.EventSource;`)
	tb.open(c.URL + "/ui/")
	if eval[bool](tb, `"EventSource" in window`) {
		t.Fatal("EventSource is still there")
	}
	tb.waitJS("long-poll status", `document.getElementById("live").textContent === "Live (long poll)"`)
	rev := c.put("svc/b", "2", "", "gina", "via long poll")
	tb.waitJS("the new row", fmt.Sprintf(`document.querySelector("#r%d") !== null`, rev))
	if got := tb.text(fmt.Sprintf("#r%d .c-actor", rev)); got != "gina" {
		t.Errorf("actor = %q", got)
	}
}

// TestBrowserRollbackConflictShowsNewDiff: when the key changes between the
// dry run and the confirmation, the server answers 409 and the dialog shows
// the new diff instead of applying; confirming again applies that one.
func TestBrowserRollbackConflictShowsNewDiff(t *testing.T) {
	c := startConfigd(t)
	r1 := c.put("app/mode", "safe", "", "alice", "")
	c.put("app/mode", "fast", "", "bob", "")
	tb := newTab(t)
	tb.open(c.URL + "/ui/key/app/mode")
	tb.click(fmt.Sprintf(`#r%d .rb-open`, r1))
	tb.waitJS("the dry run", `document.getElementById("rb-summary").textContent.includes("will change 1 key")`)
	if got := tb.text("#rb-diff .dl.del"); !strings.Contains(got, "fast") {
		t.Fatalf("dry run removes %q, want fast", got)
	}
	tb.typeInto("#rb-reason", "back to safe")

	// Someone else changes the key meanwhile.
	changed := c.put("app/mode", "turbo", "", "mallory", "meanwhile")
	tb.click("#rb-confirm")
	tb.waitJS("the conflict notice", `!document.getElementById("rb-notice").hidden`)
	notice := tb.text("#rb-notice")
	if !strings.Contains(notice, "changed after revision") {
		t.Errorf("notice = %q", notice)
	}
	tb.waitJS("the new diff", `document.querySelector("#rb-diff .dl.del") && document.querySelector("#rb-diff .dl.del").innerText.includes("turbo")`)
	if !eval[bool](tb, `document.getElementById("rb").open`) {
		t.Error("the dialog closed on a conflict")
	}
	if kv, _ := c.get("app/mode"); kv.Value != "turbo" || c.rev() != changed {
		t.Fatalf("after the conflict app/mode = %q at rev %d: the stale rollback was applied", kv.Value, c.rev())
	}

	// Confirming the new diff applies it.
	tb.waitJS("confirm enabled", `!document.getElementById("rb-confirm").disabled`)
	tb.click("#rb-confirm")
	tb.waitJS("the new revision's page", fmt.Sprintf(`document.querySelector("h1").textContent === "Revision %d"`, changed+1))
	if kv, _ := c.get("app/mode"); kv.Value != "safe" {
		t.Errorf("app/mode = %q, want safe", kv.Value)
	}
	if r := c.revision(changed + 1); r.Actor != "web" || r.Reason != fmt.Sprintf("rollback to %d: back to safe", r1) {
		t.Errorf("rollback revision: actor %q reason %q; want the default actor web and the reason", r.Actor, r.Reason)
	}
}

// TestBrowserRollbackWithoutCSRFToken: a POST from the page without the
// token is refused with 403, and so is a form posted by another site.
func TestBrowserRollbackWithoutCSRFToken(t *testing.T) {
	c := startConfigd(t)
	r1 := c.put("k", "one", "", "alice", "")
	c.put("k", "two", "", "alice", "")
	tb := newTab(t)
	tb.open(c.URL + "/ui/")
	body := fmt.Sprintf(`JSON.stringify({scope: "key", key: "k", to: %d, reason: "x", expect_rev: 0})`, r1)
	noToken := eval[int](tb, `fetch("/ui/rollback", {method: "POST", headers: {"Content-Type": "application/json"}, body: `+body+`}).then(r => r.status)`)
	if noToken != 403 {
		t.Errorf("POST without the token: %d, want 403", noToken)
	}
	badToken := eval[int](tb, `fetch("/ui/rollback", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": "A".repeat(43)}, body: `+body+`}).then(r => r.status)`)
	if badToken != 403 {
		t.Errorf("POST with a wrong token: %d, want 403", badToken)
	}
	if kv, _ := c.get("k"); kv.Value != "two" {
		t.Fatalf("k = %q: a POST without the token rolled back", kv.Value)
	}
	// With the page's token the same request works.
	withToken := eval[int](tb, `fetch("/ui/rollback", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": document.body.dataset.csrf}, body: `+body+`}).then(r => r.status)`)
	if withToken != 200 {
		t.Errorf("POST with the token: %d, want 200", withToken)
	}
	if kv, _ := c.get("k"); kv.Value != "one" {
		t.Fatalf("k = %q after the POST with the token", kv.Value)
	}

	// Another site (another port: same site, other origin) posts a form.
	evil := startEvilSite(t, c.URL+"/ui/rollback", `{"scope":"all","to":1,"reason":"pwned","expect_rev":0}`)
	before := c.rev()
	tb.do("open the other site", chromedp.Navigate(evil))
	tb.waitJS("the refusal", `document.body && document.body.innerText.includes("forbidden")`)
	if c.rev() != before {
		t.Fatalf("a cross-site form made revision %d", c.rev())
	}
}

// TestBrowserEscapesHostileText: HTML and script in keys, values, reasons
// and actor names are shown as text on every page and in the dialog, and
// never become elements.
func TestBrowserEscapesHostileText(t *testing.T) {
	c := startConfigd(t)
	const (
		key    = `evil/<img src=x onerror=window.__xss=1>`
		value  = `<script>window.__xss=2</script><img src=x onerror="window.__xss=3">`
		reason = `<b onmouseover=window.__xss=4>bold</b><img src=x onerror=window.__xss=5>`
		actor  = `<img src=x onerror=window.__xss=6>`
		json   = `{"html": "<img src=x onerror=window.__xss=7>"}`
	)
	r1 := c.put(key, value, "", actor, reason)
	r2 := c.put(key, "safe", "", actor, reason)
	c.put("evil/json", json, "application/json", actor, reason)

	tb := newTab(t)
	clean := func(where string, texts ...string) {
		t.Helper()
		if n := eval[int](tb, `document.querySelectorAll("img, b, script:not([src])").length`); n != 0 {
			t.Errorf("%s: %d elements made from data: %s", where, n, eval[string](tb, `Array.from(document.querySelectorAll("img, b, script:not([src])")).map(e => e.outerHTML).join(" ")`))
		}
		if v := eval[string](tb, `String(window.__xss)`); v != "undefined" {
			t.Errorf("%s: window.__xss = %s: a script ran", where, v)
		}
		page := tb.text("body")
		for _, s := range texts {
			if !strings.Contains(page, s) {
				t.Errorf("%s: the page does not show %q as text", where, s)
			}
		}
	}

	tb.open(c.URL + "/ui/")
	tb.waitJS("live status", `document.getElementById("live").textContent === "Live"`)
	clean("timeline", key, actor, reason)
	// A live row is built by the script.
	live := c.put(key, value, "", actor, reason)
	tb.waitJS("the live row", fmt.Sprintf(`document.querySelector("#r%d") !== null`, live))
	clean("timeline with a live row", key, actor, reason)

	tb.open(fmt.Sprintf("%s/ui/rev/%d", c.URL, r1))
	clean("revision page", key, value, actor, reason)

	tb.click(".change h3 a")
	tb.waitJS("the key page", `document.querySelector(".key-title") !== null`)
	clean("key page", key, value)

	// The dialog's diff is built by the script from JSON.
	tb.click(fmt.Sprintf("#r%d .rb-open", r2))
	tb.waitJS("the dry run", `document.getElementById("rb-summary").textContent.includes("will change 1 key")`)
	clean("rollback dialog", key, value)
	tb.typeInto("#rb-reason", reason)
	tb.typeInto("#rb-actor", `<script>window.__xss=8</script>`)
	tb.click("#rb-confirm")
	tb.waitJS("the new revision", fmt.Sprintf(`document.querySelector("h1").textContent === "Revision %d"`, live+1))
	clean("the rollback's revision page", `<script>window.__xss=8</script>`, reason)
	if r := c.revision(live + 1); r.Actor != `<script>window.__xss=8</script>` {
		t.Errorf("actor = %q", r.Actor)
	}

	tb.open(c.URL + "/ui/key/evil/json")
	clean("JSON key page", `"html": "<img src=x onerror=window.__xss=7>"`)
}

// TestBrowserNotFoundPages: a revision or a key that does not exist is a
// 404 page; a revision newer than the newest is a 400 page (bad_revision,
// as on every door).
func TestBrowserNotFoundPages(t *testing.T) {
	c := startConfigd(t)
	c.put("k", "v", "", "alice", "")
	tb := newTab(t)
	ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(c.URL+"/ui/rev/999"))
	cancel()
	if err != nil || resp.Status != 400 || tb.text("h1") != "Bad request" || !strings.Contains(tb.text("main"), "Revision 999 does not exist yet") {
		t.Errorf("/ui/rev/999: %v %v, heading %q, page %q; want a 400 page saying it does not exist yet", resp, err, tb.text("h1"), tb.text("main"))
	}
	for _, tc := range []struct{ path, text string }{
		{"/ui/rev/0", "is not a revision"},
		{"/ui/rev/abc", "is not a revision"},
		{"/ui/key/no/such/key", `There is no key "no/such/key"`},
		{"/ui/nothing-here", "There is no page"},
	} {
		ctx, cancel := context.WithTimeout(tb.ctx, stepTimeout)
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(c.URL+tc.path))
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if resp.Status != 404 {
			t.Errorf("%s: status %d, want 404", tc.path, resp.Status)
		}
		if h := tb.text("h1"); h != "Not found" {
			t.Errorf("%s: heading %q", tc.path, h)
		}
		if got := tb.text("main"); !strings.Contains(got, tc.text) {
			t.Errorf("%s: page says %q, want %q", tc.path, got, tc.text)
		}
	}
}

// TestBrowserKeyboardDialog: the dialog opens from the keyboard, keeps Tab
// inside, and closes on Esc, giving focus back to its button.
func TestBrowserKeyboardDialog(t *testing.T) {
	c := startConfigd(t)
	r1 := c.put("k", "one", "", "alice", "")
	c.put("k", "two", "", "alice", "")
	tb := newTab(t)
	tb.open(c.URL + "/ui/key/k")
	btn := fmt.Sprintf("#r%d .rb-open", r1)
	tb.do("focus the button", chromedp.Focus(chromedp.CSS(btn)))
	tb.do("press Enter", chromedp.KeyEvent("\r"))
	tb.waitJS("the dialog", `document.getElementById("rb").open`)
	tb.waitJS("the dry run", `document.getElementById("rb-summary").textContent.includes("will change 1 key")`)
	for i := 0; i < 25; i++ {
		tb.do("press Tab", chromedp.KeyEvent("\t"))
		if !eval[bool](tb, `document.getElementById("rb").contains(document.activeElement)`) {
			t.Fatalf("after %d Tabs focus left the dialog: %s", i+1, eval[string](tb, `document.activeElement.outerHTML`))
		}
	}
	tb.do("press Escape", chromedp.KeyEvent(string(rune(0x1b))))
	tb.waitJS("the dialog closed", `!document.getElementById("rb").open`)
	if !eval[bool](tb, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, btn)) {
		t.Error("focus did not return to the button that opened the dialog")
	}
	if kv, _ := c.get("k"); kv.Value != "two" {
		t.Error("closing the dialog rolled back")
	}
}

// TestBrowserScreenshotsPhoneAndDark renders the timeline on a phone-sized
// screen and the diff in dark mode, checks that nothing overflows the
// phone's width, and saves screenshots when asked to.
func TestBrowserScreenshotsPhoneAndDark(t *testing.T) {
	c := startConfigd(t)
	seedTimeline(c)
	c.put("app/limits", `{"rps": 100, "burst": 20}`, "application/json", "alice", "initial limits")
	bad := c.put("app/limits", `{"rps": 5, "burst": 20}`, "application/json", "bob", "lower rps for load test")
	tb := newTab(t)
	tb.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	tb.open(c.URL + "/ui/")
	if w := eval[int](tb, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the timeline is %dpx wide on a 390px screen", w)
	}
	tb.screenshot("timeline-phone.png")
	tb.do("laptop viewport", chromedp.EmulateViewport(1280, 860))
	tb.darkMode()
	tb.open(fmt.Sprintf("%s/ui/rev/%d", c.URL, bad))
	if bg := eval[string](tb, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(17, 20, 24)" {
		t.Errorf("dark mode background = %s", bg)
	}
	tb.screenshot("diff-dark.png")
}
