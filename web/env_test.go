package web_test

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/watcher"
)

// configd is a real configd in the test process: an audit.Store on a temp
// dir, the watch hub fed by its commits, and server.NewHandler (API and
// UI) on a loopback port.
type configd struct {
	t   testing.TB
	env *configdtest.Env
	st  *audit.Store
	hub *watcher.Hub
	ts  *httptest.Server
	URL string
}

func startConfigd(t testing.TB, opts ...audit.Option) *configd {
	t.Helper()
	e := configdtest.NewEnv(t, configdtest.WithCore(core.WithStoreOptions(opts...)))
	return newConfigd(t, e)
}

func newConfigd(t testing.TB, e *configdtest.Env) *configd {
	return &configd{t: t, env: e, st: e.Store, hub: e.Hub, ts: e.HTTP, URL: e.URL}
}

// do sends a request to the server and returns the status and body.
func (c *configd) do(method, path string, body []byte, headers ...string) (int, []byte, http.Header) {
	c.t.Helper()
	status, header, b := c.env.Request(method, path, body, headers...)
	return status, b, header
}

// kvPath is the API path of a key, each segment escaped.
func kvPath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/v1/kv/" + strings.Join(segs, "/")
}

// put writes key through the HTTP API as actor, with reason, and returns
// the revision it made.
func (c *configd) put(key, value, contentType, actor, reason string) int64 {
	c.t.Helper()
	if contentType == "" {
		contentType = "text/plain"
	}
	status, b, _ := c.do(http.MethodPut, kvPath(key), []byte(value),
		"Content-Type", contentType, api.HeaderActor, actor, api.HeaderReason, reason)
	if status != http.StatusOK {
		c.t.Fatalf("PUT %s: %d %s", key, status, b)
	}
	var wr api.WriteResponse
	if err := json.Unmarshal(b, &wr); err != nil || !wr.Changed {
		c.t.Fatalf("PUT %s: %s (%v)", key, b, err)
	}
	return wr.Rev
}

// get reads key through the API; ok is false when it does not exist.
func (c *configd) get(key string) (kv api.KeyValue, ok bool) {
	c.t.Helper()
	status, b, _ := c.do(http.MethodGet, kvPath(key), nil, "Accept", "application/json")
	if status == http.StatusNotFound {
		return kv, false
	}
	if status != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", key, status, b)
	}
	if err := json.Unmarshal(b, &kv); err != nil {
		c.t.Fatalf("GET %s: %s: %v", key, b, err)
	}
	return kv, true
}

// revision reads a revision through the API.
func (c *configd) revision(rev int64) api.Revision {
	c.t.Helper()
	status, b, _ := c.do(http.MethodGet, "/v1/revisions/"+strconv.FormatInt(rev, 10), nil)
	if status != http.StatusOK {
		c.t.Fatalf("GET revision %d: %d %s", rev, status, b)
	}
	var r api.Revision
	if err := json.Unmarshal(b, &r); err != nil {
		c.t.Fatal(err)
	}
	return r
}

// rev is the store's current revision, read through the API.
func (c *configd) rev() int64 {
	c.t.Helper()
	_, b, _ := c.do(http.MethodGet, "/v1/status", nil)
	var s api.Status
	if err := json.Unmarshal(b, &s); err != nil {
		c.t.Fatal(err)
	}
	return s.Rev
}

// startEvilSite serves, on another port (the same site, another origin), a
// page that posts a form to target as soon as it loads: the classic
// cross-site request forgery. The field's name and value add up to body,
// sent as text/plain so that it reads as JSON.
func startEvilSite(t testing.TB, target, body string) string {
	t.Helper()
	name, value := body[:len(body)-1]+`,"x":"`, `"}`
	page := `<!doctype html><html><body>
<form method="post" action="` + html.EscapeString(target) + `" enctype="text/plain">
<input type="hidden" name="` + html.EscapeString(name) + `" value="` + html.EscapeString(value) + `">
</form>
<script>document.forms[0].submit();</script>
</body></html>`
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}
