// Package httpapi is configd's HTTP API (NewHandler): the /v1 routes and
// the access rule of each (routeAccess), the watch transports over HTTP
// (long poll, server-sent events and the upgraded watch stream), /healthz,
// /readyz and /metrics, the web UI mounted at /ui, and the guards every
// request passes (the identity and limits middleware of authz, the
// cross-origin guard, the body read timeout). It reads the store through
// the interface it declares (Store) and answers errors as apierror
// classifies them. docs/api.md describes the routes.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/pump"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
	"github.com/configd/configd/server/watchwire"
	"github.com/configd/configd/server/writeops"
	"github.com/configd/configd/source"
	"github.com/configd/configd/watcher"
	"github.com/configd/configd/web"
)

// DefaultMaxRequestBody caps the body of POST /v1/txn and POST
// /v1/rollback: 64 MiB.
const DefaultMaxRequestBody = 64 << 20

// OriginAPI is the origin recorded for writes made through the HTTP API:
// writeops.OriginAPI, which the gRPC API records too.
const OriginAPI = writeops.OriginAPI

// Option configures NewHandler.
type Option func(*options)

type options struct {
	logger         *slog.Logger
	version        string
	maxRequestBody int64
	identity       func(http.Handler) http.Handler
	ready          func(context.Context) error
	hub            *watcher.Hub
	progress       time.Duration
	reg            *prometheus.Registry // the daemon's, with the gRPC API's watch metrics
	wm             *watchwire.Metrics
	sources        Sources
	dataDir        string
	auth           *authz.Auth
	limits         *authz.Limits
	bodyTimeout    time.Duration
	readWait       time.Duration
	replicas       Replicas
	writes         func(http.Handler) http.Handler
	uiSessions     web.SessionTable
	clients        Clients
}

// WithAuth turns authentication and per-prefix authorisation on: a's
// Identity becomes the identity middleware (a later WithIdentity replaces
// it), every route is checked against its rule (routeAccess), and the
// token routes (/v1/tokens) manage a's tokens. The gRPC API on the same
// port is checked too.
func WithAuth(a *authz.Auth) Option {
	return func(o *options) {
		o.auth = a
		if a != nil {
			o.identity = a.Identity
		}
	}
}

// WithLimits applies per-identity limits (rate and open watches) to the
// /v1 routes, the web UI and the gRPC API on the same port. Share l with
// NewGRPCServer (WithGRPCLimits) when serving gRPC elsewhere, so that
// watches count the same over both.
func WithLimits(l *authz.Limits) Option { return func(o *options) { o.limits = l } }

// Sources are the sources configured under the store (pump.Pump).
type Sources interface {
	// Statuses returns every layer's status, highest precedence first.
	Statuses() []api.SourceStatus
}

// WithSources serves the sources' status at GET /v1/sources and in
// /readyz.
func WithSources(s Sources) Option { return func(o *options) { o.sources = s } }

// WithDataDir exports the size and free space of the file system holding
// dir (the data dir) on /metrics: configd_data_dir_size_bytes and
// configd_data_dir_free_bytes.
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithMetrics makes the handler register its metrics in reg and count
// watches in wm, which the daemon shares with the gRPC API.
func WithMetrics(reg *prometheus.Registry, wm *watchwire.Metrics) Option {
	return func(o *options) { o.reg, o.wm = reg, wm }
}

// WithHub turns on watches: GET /v1/watch (long poll, server-sent events
// and the watch stream), which read it as a Hub, and the web UI's live
// timeline, which takes the hub itself (web.WithHub). The hub must be fed
// the store's commits (core.Open wires them).
func WithHub(hub *watcher.Hub) Option {
	return func(o *options) { o.hub = hub }
}

// WithProgressInterval sets how often an idle watch (server-sent events,
// the watch stream) is told the current revision (default
// watchwire.DefaultProgressInterval).
func WithProgressInterval(d time.Duration) Option {
	return func(o *options) { o.progress = d }
}

// WithLogger sets the logger for errors and the access log (at debug
// level). The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithVersion sets the version that GET /v1/status reports (default
// none: the daemon gives its own).
func WithVersion(v string) Option {
	return func(o *options) { o.version = v }
}

// WithMaxRequestBody caps the JSON body of a transaction or a rollback, in
// bytes. The default is DefaultMaxRequestBody or, when larger, twice the
// store's MaxValueSize plus 1 MiB, so that a transaction can carry a
// largest value in base64. PUT bodies are capped by MaxValueSize instead.
func WithMaxRequestBody(n int64) Option {
	return func(o *options) { o.maxRequestBody = n }
}

// WithIdentity replaces authz.HeaderIdentity, the middleware that decides who a
// request comes from. mw must put the actor in the request's context with
// WithActor, or answer the request itself (for instance with 401).
func WithIdentity(mw func(http.Handler) http.Handler) Option {
	return func(o *options) { o.identity = mw }
}

// WithWrites wraps the routes that commit revisions (those whose access
// rule needs write: PUT and DELETE /v1/kv/..., POST /v1/txn, POST
// /v1/rollback) in mw, after their access check; nil wraps nothing. A
// replica uses it to forward them to the cluster's writer (package
// forward).
func WithWrites(mw func(http.Handler) http.Handler) Option {
	return func(o *options) { o.writes = mw }
}

// WithReadiness adds a check to /readyz, beyond the store answering: a
// non-nil error makes /readyz answer 503 with the error's message. Run
// uses it to report "shutting down" while it drains.
func WithReadiness(check func(context.Context) error) Option {
	return func(o *options) { o.ready = check }
}

type handler struct {
	st       Store
	opts     options
	metrics  *metrics
	book     *requests.Book // the change requests
	rollouts *rollouts.Book
}

// NewHandler returns the HTTP API of configd over st: the /v1 routes,
// /healthz, /readyz and /metrics (docs/api.md describes them). Each handler
// has its own Prometheus registry, so several can live in one process. It
// panics if st is nil.
func NewHandler(st Store, opts ...Option) http.Handler {
	if st == nil {
		panic("httpapi: NewHandler with a nil store")
	}
	// The doors' writes are checked against the policies that require
	// change requests; the book publishes to the store itself.
	book := requests.New(st)
	h := &handler{st: directWrites{Store: st, check: writeops.Direct(st)}, book: book, rollouts: rollouts.New(st, book), opts: options{
		logger:         slog.Default(),
		maxRequestBody: max(DefaultMaxRequestBody, 2*int64(st.MaxValueSize())+1<<20),
		identity:       authz.HeaderIdentity,
		bodyTimeout:    DefaultBodyReadTimeout,
	}}
	for _, o := range opts {
		o(&h.opts)
	}
	if h.opts.maxRequestBody <= 0 {
		panic("httpapi: WithMaxRequestBody needs a positive size")
	}
	if h.opts.identity == nil {
		panic("httpapi: WithIdentity(nil)")
	}
	h.metrics = newMetrics(st, h.opts.reg, h.opts.sources, h.opts.dataDir)
	if h.opts.auth != nil {
		h.metrics.registerOnce(h.opts.auth.Collector())
	}
	if h.opts.limits != nil {
		h.metrics.registerOnce(h.opts.limits.Collector())
	}
	if c, ok := h.opts.clients.(interface{ Collector() prometheus.Collector }); ok {
		h.metrics.registerOnce(c.Collector())
	}
	wm := h.opts.wm
	var watch *watchHTTP // GET /v1/watch and the web UI's live timeline
	if h.opts.hub != nil {
		if wm == nil {
			wm = watchwire.NewMetrics(h.metrics.reg)
		}
		watch = &watchHTTP{hub: h.opts.hub, metrics: wm, progress: h.opts.progress, limits: h.opts.limits, auth: h.opts.auth,
			await: func(ctx context.Context, since int64) error {
				return core.AwaitWatch(ctx, st, h.opts.hub, since, h.opts.readWait)
			}}
	}

	r := chi.NewRouter()
	r.Use(h.observe, h.recoverer, middleware.GetHead, h.bodyDeadline)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, api.ErrorBody{Code: api.CodeNotFound,
			Message: "no such route: " + apierror.OneLine(r.URL.Path) + " (see docs/api.md)"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, apierror.BadRequest("method %s is not allowed on %s", r.Method, apierror.OneLine(r.URL.Path)).WithStatus(http.StatusMethodNotAllowed))
	})
	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	r.Method(http.MethodGet, "/metrics", h.metrics.handler())
	// The web UI, with its own logins when authentication is on (webUI).
	r.With(h.uiMiddleware()...).Mount("/ui", h.webUI(watch))
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusFound) })
	r.Route("/v1", func(r chi.Router) {
		// A web page in an operator's browser must not be able to write to a
		// configd it can reach: cross-origin writes that a browser marks as
		// such (Sec-Fetch-Site, Origin) are refused; configctl, the SDK and
		// curl send neither header and are not affected.
		r.Use(h.crossOriginGuard)
		r.Use(h.opts.identity)
		r.Use(h.opts.limits.Middleware)
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			apierror.Write(w, api.ErrorBody{Code: api.CodeNotFound,
				Message: "no such route: " + apierror.OneLine(r.URL.Path) + " (see docs/api.md)"})
		})
		// route registers a /v1 route with its access rule; a route
		// without one is a bug caught here, at start.
		route := func(method, pattern string, hd http.Handler) {
			a, ok := routeAccess[method+" /v1"+pattern]
			if !ok {
				panic("httpapi: no access rule for " + method + " /v1" + pattern + " (add it to routeAccess)")
			}
			if a.perm == api.PermissionWrite && h.opts.writes != nil {
				hd = h.opts.writes(hd)
			}
			r.With(h.need(a)).Method(method, pattern, hd)
		}
		get := func(pattern string, hf http.HandlerFunc) { route(http.MethodGet, pattern, hf) }
		get("/kv", h.list)
		get("/kv/*", h.get)
		route(http.MethodPut, "/kv/*", http.HandlerFunc(h.put))
		route(http.MethodDelete, "/kv/*", http.HandlerFunc(h.del))
		route(http.MethodPost, "/txn", http.HandlerFunc(h.txn))
		get("/history", h.history)
		get("/revisions/{rev}", h.revision)
		get("/diff", h.diff)
		route(http.MethodPost, "/rollback", http.HandlerFunc(h.rollback))
		get("/schemas", h.listSchemas)
		get("/schemas/*", h.getSchema)
		route(http.MethodPut, "/schemas/*", http.HandlerFunc(h.putSchema))
		route(http.MethodDelete, "/schemas/*", http.HandlerFunc(h.deleteSchema))
		get("/schema-history/*", h.schemaHistory)
		get("/status", h.status)
		get("/sources", h.listSources)
		get("/replicas", h.listReplicas)
		get("/layers/*", h.layers)
		get("/audit/verify", h.auditVerify)
		get("/backup", h.backup)
		get("/tokens", h.listTokens)
		route(http.MethodPost, "/tokens", http.HandlerFunc(h.createToken))
		route(http.MethodDelete, "/tokens/{name}", http.HandlerFunc(h.revokeToken))
		route(http.MethodPut, "/tokens/{name}/grants", http.HandlerFunc(h.setTokenGrants))
		route(http.MethodPost, "/requests", http.HandlerFunc(h.propose))
		get("/requests", h.listRequests)
		get("/requests/{id}", h.getRequest)
		route(http.MethodPost, "/requests/{id}/{action}", http.HandlerFunc(h.requestAction))
		get("/policies", h.listPolicies)
		route(http.MethodPut, "/policies", http.HandlerFunc(h.setPolicy))
		route(http.MethodPost, "/rollouts", http.HandlerFunc(h.startRollout))
		get("/rollouts", h.listRollouts)
		get("/rollouts/{id}", h.getRollout)
		route(http.MethodPost, "/rollouts/{id}/{action}", http.HandlerFunc(h.rolloutAction))
		if watch != nil {
			route(http.MethodGet, "/watch", watch)
		}
		if h.opts.clients != nil {
			get("/clients", h.listClients)
			route(http.MethodPost, "/clients/report", http.HandlerFunc(h.clientReport))
		}
	})
	return r
}

func (h *handler) crossOriginGuard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, api.ErrorBody{Code: api.CodeForbidden,
			Message: "cross-origin request refused: a web page may not change configd's configuration (use configctl, the SDK or the web UI)"})
	}))
	return cop.Handler(next)
}

// fail answers a request with the error response err maps to. Errors that
// are not the client's fault are logged with their cause.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body, known := errorBody(err)
	switch {
	case !known:
		h.opts.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case status == http.StatusServiceUnavailable:
		h.opts.logger.Warn("request not served", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusConflict && body.Rev == 0 {
		body.Rev = h.st.Rev()
	}
	if w.Header().Get(api.HeaderRev) == "" {
		setRev(w, h.st.Rev())
	}
	apierror.WriteJSON(w, status, api.ErrorResponse{Error: body})
}

func setRev(w http.ResponseWriter, rev int64) {
	w.Header().Set(api.HeaderRev, strconv.FormatInt(rev, 10))
}

// recoverer turns a panic in a handler into a logged 500, so that one bad
// request cannot take the daemon down.
func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.opts.logger.Error("panic serving request", "method", r.Method, "path", r.URL.Path,
				"panic", v, "stack", string(debug.Stack()))
			apierror.Write(w, api.ErrorBody{Code: api.CodeInternal,
				Message: "internal error; the server log has the details"})
		}()
		next.ServeHTTP(w, r)
	})
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var err error
	if h.opts.ready != nil {
		err = h.opts.ready(ctx)
	}
	if err == nil {
		err = h.st.Ping(ctx)
	}
	degraded := ""
	if err == nil {
		degraded, err = replicaReadiness(h.st.Replication(), r.URL.Query().Get("writes") == "true")
	}
	var sources string
	if h.opts.sources != nil {
		sources = readiness(h.opts.sources.Statuses())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + apierror.OneLine(err.Error()) + "\n" + sources))
		return
	}
	_, _ = w.Write([]byte("ok\n" + degraded + sources))
}

// replicaReadiness is /readyz's word on a replica of a configd cluster
// whose etcd does not answer: it still serves reads and watches from
// what it has, so it stays ready (a load balancer keeps sending it reads)
// and says it is degraded; ?writes=true asks whether it takes writes, and
// then it is not ready. A replica that diverged from the log is not ready
// at all: what it serves is no longer the cluster's.
func replicaReadiness(r audit.Replication, writes bool) (degraded string, notReady error) {
	switch {
	case !r.Replica || r.Err == nil:
		return "", nil
	case errors.Is(r.Err, audit.ErrDiverged):
		return "", fmt.Errorf("this replica diverged from its cluster's commit log and serves nothing newer than revision %d: %w", r.Applied, r.Err)
	case writes:
		return "", fmt.Errorf("writes are refused (503 %s): the cluster's etcd does not answer: %w", api.CodeStoreUnavailable, r.Err)
	}
	return fmt.Sprintf("store: degraded: the cluster's etcd does not answer (%s); writes are refused (503 %s), reads and watches are served up to revision %d\n",
		apierror.OneLine(r.Err.Error()), api.CodeStoreUnavailable, r.Applied), nil
}

// GET /v1/sources
func (h *handler) listSources(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.opts.sources == nil {
		apierror.WriteJSON(w, http.StatusOK, api.SourcesResponse{Sources: []api.SourceStatus{
			{Name: audit.StoreLayer, Type: pump.StoreType, State: "ok"}}})
		return
	}
	resp := api.SourcesResponse{Sources: h.opts.sources.Statuses(), Events: []api.SourceEvent{}}
	evs, err := h.st.SourceEvents(r.Context(), "", 20)
	if err != nil {
		apierror.WriteError(w, err)
		return
	}
	for _, e := range evs {
		resp.Events = append(resp.Events, api.SourceEvent{Time: e.Time, Source: e.Source, State: e.State, Message: e.Message})
	}
	apierror.WriteJSON(w, http.StatusOK, resp)
}

// readiness lists the sources for /readyz: configd is ready while a source
// is degraded (it serves the last good snapshot), and says so.
func readiness(statuses []api.SourceStatus) string {
	var b strings.Builder
	for _, ss := range statuses {
		fmt.Fprintf(&b, "source %s (%s): %s", ss.Name, ss.Type, ss.State)
		if ss.LastError != "" && ss.State != string(source.StateOK) {
			fmt.Fprintf(&b, ": %s", apierror.OneLine(ss.LastError))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// GET /v1/layers/{key...}
func (h *handler) layers(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	key, err := keyParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	stack, err := h.st.Stack(r.Context(), key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := api.LayersResponse{Key: key, Layers: make([]api.LayerValue, len(stack))}
	for i, e := range stack {
		lv := api.LayerValue{Layer: e.Layer, Tombstone: e.Value.Tombstone, Effective: e.Effective}
		switch {
		case e.Value.Secret:
			// Withheld by the store, as in history: a digest and a length.
			lv.Secret, lv.Hash, lv.Length, lv.ContentType = true, e.Value.Hash, e.Value.Length, e.Value.ContentType
		case !e.Value.Tombstone:
			lv.Value, lv.Encoding = api.EncodeValue(e.Value.Value)
			lv.ContentType = e.Value.ContentType
		}
		out.Layers[i] = lv
	}
	setRev(w, h.st.Rev())
	apierror.WriteJSON(w, http.StatusOK, out)
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	rev := h.st.Rev()
	setRev(w, rev)
	apierror.WriteJSON(w, http.StatusOK, api.Status{Rev: rev, Version: h.opts.version})
}

// checkParams refuses query parameters outside known, so that a typo
// (?revision=3) is an error instead of a silently different answer.
func checkParams(q url.Values, known ...string) error {
	for name := range q {
		ok := false
		for _, k := range known {
			if name == k {
				ok = true
				break
			}
		}
		if !ok {
			if len(known) == 0 {
				return apierror.BadRequest("unknown query parameter %q: this route takes none", name)
			}
			return apierror.BadRequest("unknown query parameter %q (this route takes %s)", name, strings.Join(known, ", "))
		}
	}
	for _, k := range known {
		if len(q[k]) > 1 {
			return apierror.BadRequest("query parameter %q is given %d times", k, len(q[k]))
		}
	}
	return nil
}

// revParam parses the revision parameter name: 0 when absent.
func revParam(q url.Values, name string) (int64, error) {
	s, ok := q[name]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(s[0], 10, 64)
	if err != nil || n < 0 {
		return 0, apierror.BadRequest("%s=%q is not a revision (a whole number >= 0)", name, s[0])
	}
	return n, nil
}

// optRevParam parses an optional revision parameter, telling whether it
// was given.
func optRevParam(q url.Values, name string) (int64, bool, error) {
	if _, ok := q[name]; !ok {
		return 0, false, nil
	}
	n, err := revParam(q, name)
	return n, err == nil, err
}

func boolParam(q url.Values, name string) (bool, error) {
	s, ok := q[name]
	if !ok {
		return false, nil
	}
	if s[0] == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(s[0])
	if err != nil {
		return false, apierror.BadRequest("%s=%q is not a boolean (true or false)", name, s[0])
	}
	return b, nil
}
