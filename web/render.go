package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/configd/configd/server/apierror"
	"github.com/go-chi/chi/v5"
)

// page is what every page template gets.
type page struct {
	Title string
	// Page names the page for the script: timeline, revision, key, error.
	Page string
	Base string
	API  string
	// Rev is the store's revision when the page was rendered: the rollback
	// dialog sends it as expect_rev, the live timeline watches from it.
	Rev    int64
	CSRF   string
	Live   bool
	Assets string // version of the static files, for cache busting
	// Watch is the URL the live timeline watches.
	Watch string
	// Bare pages (login, not logged in) show no navigation and no
	// revision: they are for visitors who may see nothing.
	Bare bool
	// User is the token the page is shown to ("" with authentication
	// off); Session says it logged in (and may log out).
	User    string
	Session bool
	// Requests, Clients and Rollouts: the navigation links those pages.
	Requests, Clients, Rollouts bool
	Data                        any
}

type pageTemplate struct{ t *template.Template }

// assetVersion is a hash of the static files: their URLs carry it, so that
// browsers may cache them for good.
var assetVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(assets, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := assets.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

func funcs(base string) template.FuncMap {
	return template.FuncMap{
		"keyURL":      func(key string) string { return keyURL(base, key) },
		"revURL":      func(rev int64) string { return base + "/rev/" + strconv.FormatInt(rev, 10) },
		"utc":         func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"iso":         func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"parent":      parentPrefix,
		"origin":      displayOrigin,
		"originClass": originClass,
		"plural": func(n int, word string) string {
			if n == 1 {
				return "1 " + word
			}
			return strconv.Itoa(n) + " " + word + "s"
		},
		"lineClass": func(kind string) string {
			switch kind {
			case lineAdd:
				return "add"
			case lineDel:
				return "del"
			case lineSkip:
				return "skip"
			}
			return "same"
		},
		"crumbs": crumbs,
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict: odd number of arguments")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
	}
}

// crumb is one parent prefix of a key, for links to the timeline of that
// prefix.
type crumb struct{ Name, Prefix string }

func crumbs(key string) []crumb {
	segs := strings.Split(key, "/")
	out := make([]crumb, 0, len(segs))
	for i, s := range segs[:len(segs)-1] {
		out = append(out, crumb{Name: s, Prefix: strings.Join(segs[:i+1], "/") + "/"})
	}
	return out
}

// parsePages parses every page with the layout and the shared partials.
// A template that does not parse is a bug caught by any test, so it panics.
func parsePages(base string) map[string]*pageTemplate {
	out := map[string]*pageTemplate{}
	for _, name := range []string{"timeline", "revision", "key", "error", "login", "requests", "request", "clients", "rollouts", "rollout"} {
		t := template.Must(template.New(name).Funcs(funcs(base)).ParseFS(assets,
			"templates/layout.html", "templates/partials.html", "templates/"+name+".html"))
		out[name] = &pageTemplate{t: t}
	}
	return out
}

// render writes a page. It renders into a buffer first, so that a template
// error becomes a clean 500 instead of half a page.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Page, p.Base, p.API, p.Assets = name, u.opts.base, u.opts.apiBase, assetVersion
	p.Live, p.Watch = u.opts.hub != nil, u.watchURL()
	p.Requests, p.Clients, p.Rollouts = u.opts.requests != nil, u.opts.clients != nil, u.opts.rollouts != nil
	if id := identityFrom(r); id.p != nil && !p.Bare {
		p.User, p.Session = id.p.Name(), id.session
	}
	if p.Rev == 0 && !p.Bare {
		p.Rev = u.st.Rev()
	}
	p.CSRF = u.csrfToken(w, r)
	var buf bytes.Buffer
	if err := u.pages[name].t.ExecuteTemplate(&buf, "layout", p); err != nil {
		u.opts.logger.Error("web: render", "page", name, "err", err)
		http.Error(w, "internal error; the server log has the details", http.StatusInternalServerError)
		return
	}
	setServerTiming(w, r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorView is the Data of the error page.
type errorView struct {
	Status  int
	Heading string
	Message string
}

func (u *ui) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	u.render(w, r, status, "error", page{Title: heading, Data: errorView{Status: status, Heading: heading, Message: msg}})
}

func (u *ui) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	u.errorPage(w, r, http.StatusNotFound, "Not found", msg)
}

// fail shows the error page for err, with the status of its class
// (apierror.Classify), as the API answers it; an internal error is logged.
func (u *ui) fail(w http.ResponseWriter, r *http.Request, err error) {
	c := u.classify(r, err)
	u.errorPage(w, r, c.Status, pageHeading(c.Status), c.Message)
}

// classify is apierror.Classify, logging an internal error's cause.
func (u *ui) classify(r *http.Request, err error) apierror.Class {
	c := apierror.Classify(err)
	if c.Internal {
		u.opts.logger.Error("web: request failed", "path", r.URL.Path, "err", err)
	}
	return c
}

// pageHeading is the heading of an error page with status.
func pageHeading(status int) string {
	switch status {
	case http.StatusNotFound:
		return "Not found"
	case http.StatusBadRequest:
		return "Bad request"
	case http.StatusServiceUnavailable:
		return "Unavailable"
	case http.StatusInternalServerError:
		return "Internal error"
	}
	return http.StatusText(status)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	setServerTiming(w, r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // a failed write means the client is gone
}

// jsonError is the error body of the UI's JSON routes, shaped like the
// API's.
type jsonError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// securityHeaders forbids inline script and style, framing and sniffing:
// even a value that slipped past escaping could not run.
func securityHeaders(next http.Handler) http.Handler {
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

type startKey struct{}

// serverTiming notes when a request started, for the Server-Timing header
// that setServerTiming writes: the browser's developer tools show how long
// the server took.
func serverTiming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), startKey{}, time.Now())))
	})
}

func setServerTiming(w http.ResponseWriter, r *http.Request) {
	if t, ok := r.Context().Value(startKey{}).(time.Time); ok {
		w.Header().Set("Server-Timing", fmt.Sprintf("app;dur=%.2f", float64(time.Since(t).Microseconds())/1000))
	}
}

// static serves the embedded script and style. URLs that carry the
// current asset version may be cached for good.
func (u *ui) static(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "file")
	b, err := assets.ReadFile("static/" + path.Base(name))
	if err != nil || strings.HasPrefix(name, ".") {
		http.NotFound(w, r)
		return
	}
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("ETag", `"`+assetVersion+`"`)
	if r.URL.Query().Get("v") == assetVersion {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}
