// Package web is configd's audit web UI: a timeline of revisions that
// updates live, a page per revision and per key with line diffs of old and
// new values, and a rollback dialog that shows the exact diff it will apply
// before it applies it.
//
// Pages are rendered on the server with html/template; a small script
// (static/app.js) localises times, keeps the timeline live over the watch
// API ({base}/api/watch with WithWatch, else {api}/watch: server-sent
// events with a long-poll fallback) and drives the rollback dialog.
// Templates, script and style are embedded: no build step, no CDN, no
// external font.
//
// With WithAuth, users log in at {base}/login with a token and get a
// server-side session (session.go, auth.go); every other page and JSON
// route needs that session or a bearer token, and shows only what the
// token may read.
//
// With WithRequests, {base}/requests lists the change requests and
// {base}/requests/{id} shows one with its diff against now and the forms
// that approve, publish or close it through the requests book; with
// WithClients, {base}/clients shows the SDK clients of a prefix. With
// WithRollouts, {base}/rollouts lists the rollouts and {base}/rollouts/{id}
// shows one with its steps and their convergence, refreshed every few
// seconds from {base}/rollouts/{id}/status.json, and the forms that
// promote, pause, resume or abort it through the rollouts' book.
//
// The state-changing routes, POST {base}/rollback, /login, /logout and
// /requests/{id}/{action} and /rollouts/{id}/{action}, are guarded against cross-site requests by
// http.CrossOriginProtection (Sec-Fetch-Site and Origin) and a
// double-submit token: a random per-session token in an HttpOnly,
// SameSite=Strict cookie that the page must echo in the X-CSRF-Token
// header or the form field csrf, compared in constant time.
package web

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/watcher"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Store is what the UI reads and writes. *audit.Store implements it.
type Store interface {
	Rev() int64
	Get(ctx context.Context, key string, opts ...audit.ReadOption) (audit.KeyValue, error)
	History(ctx context.Context, q audit.HistoryQuery) (audit.HistoryPage, error)
	Revision(ctx context.Context, rev int64) (audit.Revision, error)
	Diff(ctx context.Context, scope audit.Scope, from, to int64) ([]audit.Change, error)
	Rollback(ctx context.Context, req audit.RollbackRequest) (audit.Revision, error)
	Stack(ctx context.Context, key string) ([]audit.LayerEntry, error)
}

var _ Store = (*audit.Store)(nil)

// Option configures New.
type Option func(*options)

type options struct {
	base    string
	apiBase string
	hub     *watcher.Hub
	logger  *slog.Logger
	actor   ActorFunc
	secret  func(key string) bool

	auth       Authenticator
	middleware []func(http.Handler) http.Handler
	watch      http.Handler
	sessions   SessionTable
	requests   Requests
	clients    Clients
	rollouts   Rollouts
}

// ActorFunc decides who a rollback made through the UI is recorded as.
// claimed is the name the page sent (the name field of the rollback dialog,
// which the browser remembers). It returns the actor, or an error that the
// UI shows to the user (and answers with 400).
type ActorFunc func(r *http.Request, claimed string) (string, error)

// WithBasePath sets the path the UI is mounted at (default "/ui"). Links
// and the CSRF cookie's path use it.
func WithBasePath(p string) Option { return func(o *options) { o.base = strings.TrimSuffix(p, "/") } }

// WithAPIPath sets where the page finds the HTTP API (default "/v1"); the
// live timeline watches {api}/watch.
func WithAPIPath(p string) Option { return func(o *options) { o.apiBase = strings.TrimSuffix(p, "/") } }

// WithHub makes the timeline live: the page watches the API's /watch route,
// which exists when the server has a hub. A nil hub leaves the timeline
// static (reload to see new revisions).
func WithHub(h *watcher.Hub) Option { return func(o *options) { o.hub = h } }

// WithLogger sets the logger for errors (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithActor replaces ClaimedActor, the function that names the actor of a
// UI rollback when authentication is off. With WithAuth the actor is
// always the token's name.
func WithActor(fn ActorFunc) Option { return func(o *options) { o.actor = fn } }

// WithSecrets marks more keys whose values must never be shown: the pages
// say "••••" and the revision instead. Keys the store marks secret
// (audit.KeyValue.Secret) are hidden without it.
func WithSecrets(isSecret func(key string) bool) Option {
	return func(o *options) { o.secret = isSecret }
}

// ui holds the handler's state.
type ui struct {
	st       Store
	opts     options
	pages    map[string]*pageTemplate
	sessions SessionTable
}

// New returns the web UI over st, to be mounted at the base path (see
// WithBasePath), for example with chi's Mount("/ui", web.New(st)). It
// panics if st is nil.
func New(st Store, opts ...Option) http.Handler {
	return newUI(st, opts...).routes()
}

func newUI(st Store, opts ...Option) *ui {
	if st == nil {
		panic("web: New with a nil store")
	}
	u := &ui{st: st, opts: options{base: "/ui", apiBase: "/v1", logger: slog.Default(), actor: ClaimedActor, sessions: newSessions()}}
	for _, o := range opts {
		o(&u.opts)
	}
	if u.opts.sessions == nil {
		panic("web: WithSessions(nil)")
	}
	u.sessions = u.opts.sessions
	if u.opts.actor == nil {
		panic("web: WithActor(nil)")
	}
	u.pages = parsePages(u.opts.base)
	return u
}

func (u *ui) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(securityHeaders, serverTiming, u.identify)
	r.Use(u.opts.middleware...)
	// An unknown address, to a visitor who is not logged in, is the login
	// page: which pages exist is for users to know.
	r.NotFound(u.requirePage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.notFound(w, r, "There is no page at this address.")
	})).ServeHTTP)
	r.MethodNotAllowed(u.requirePage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This page does not take "+r.Method+" requests.")
	})).ServeHTTP)
	// Open to all: the login page and the script and style.
	r.Get("/static/{file}", u.static)
	r.Get("/login", u.loginPage)
	r.With(u.csrf).Post("/login", u.login)
	r.With(u.csrf).Post("/logout", u.logout)
	// Pages: without a session or token, the login page.
	r.Group(func(r chi.Router) {
		r.Use(u.requirePage)
		r.Get("/", u.timeline)
		r.Get("/rev/{rev}", u.revision)
		r.Get("/key", u.keySearch)
		r.Get("/key/*", u.key)
		if u.opts.requests != nil {
			r.Get("/requests", u.requestsPage)
			r.Get("/requests/{id}", u.requestPage)
			r.With(u.csrf).Post("/requests/{id}/{action}", u.requestAction)
		}
		if u.opts.clients != nil {
			r.Get("/clients", u.clientsPage)
		}
		if u.opts.rollouts != nil {
			r.Get("/rollouts", u.rolloutsPage)
			r.Get("/rollouts/{id}", u.rolloutPage)
			r.With(u.csrf).Post("/rollouts/{id}/{action}", u.rolloutAction)
		}
	})
	// JSON: without a session or token, 401.
	r.Group(func(r chi.Router) {
		r.Use(u.requireJSON)
		r.Get("/timeline.json", u.timelineJSON)
		r.With(u.csrf).Post("/rollback", u.rollback)
		if u.opts.watch != nil {
			r.Method(http.MethodGet, "/api/watch", u.opts.watch)
		}
		if u.opts.rollouts != nil {
			r.Get("/rollouts/{id}/status.json", u.rolloutStatusJSON)
		}
	})
	return r
}

// watchURL is where the live timeline watches.
func (u *ui) watchURL() string {
	if u.opts.watch != nil {
		return u.opts.base + "/api/watch"
	}
	return u.opts.apiBase + "/watch"
}

// keyURL returns the path of key's page: each segment is escaped, so that
// '?', '#' and '%' in a key survive the trip.
func keyURL(base, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return base + "/key/" + strings.Join(segs, "/")
}

// parentPrefix returns the prefix a key sits in ("app/db/" for
// "app/db/timeout"), or "" for a top-level key.
func parentPrefix(key string) string {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return ""
	}
	return key[:i+1]
}

// displayOrigin is how the timeline names where a revision came from: a
// revision with RollbackTo > 0 is a rollback, "source:NAME" is NAME.
func displayOrigin(r audit.Revision) string {
	switch {
	case r.RollbackTo > 0:
		return "rollback"
	case strings.HasPrefix(r.Origin, "source:"):
		return strings.TrimPrefix(r.Origin, "source:")
	case r.Origin == "":
		return "api"
	}
	return r.Origin
}

// originClass is the CSS class of an origin's badge.
func originClass(r audit.Revision) string {
	switch {
	case r.RollbackTo > 0:
		return "o-rollback"
	case r.Origin == "" || r.Origin == "api":
		return "o-api"
	}
	return "o-source"
}
