// Package consulapi is configd's Consul door: the KV part of Consul's
// HTTP API (/v1/kv, /v1/txn) and the few answers its clients probe for
// (/v1/status/leader, /v1/status/peers, /v1/agent/self), so that the
// `consul` CLI, github.com/hashicorp/consul/api and the tools built on
// them read and write configd unchanged. docs/compat.md lists what is
// served, partly served and not.
//
// It is a door like server/httpapi and server/grpcapi: a write through it
// is an ordinary revision (the token's name or consul-api@ADDRESS as its
// actor, origin consul-api), checked by the same rules (authz's grants,
// writeops' checks of a write's ops, requests' policies), and every error
// is classified by apierror, then said in Consul's words: a plain-text
// body with the status Consul gives.
package consulapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/writeops"
	"github.com/configd/configd/watcher"
)

// Origin is the origin recorded for the writes made through this door.
const Origin = "consul-api"

// ConsulVersion is the version of Consul whose API this door follows, as
// /v1/agent/self reports it.
const ConsulVersion = "1.14.5"

// Store is what the door reads of the store and how it writes it:
// audit.Store.
type Store interface {
	Rev() int64
	Get(ctx context.Context, key string, opts ...audit.ReadOption) (audit.KeyValue, error)
	List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error)
	// Withhold hides a secret's value from a connection that may not
	// carry it (authz.SecureRequest), as configd's own listing does.
	Withhold(kv audit.KeyValue) (audit.KeyValue, error)
	Commit(ctx context.Context, txn audit.Txn) (audit.Revision, error)
	writeops.Store
	// WaitRev and Sync serve ?consistent (core.ReadFence); Replication
	// says whether a replica follows its cluster (X-Consul-KnownLeader).
	WaitRev(ctx context.Context, rev int64) error
	Sync(ctx context.Context) (int64, error)
	Replication() audit.Replication
}

// Hub is the watch hub a blocking query waits on: watcher.Hub.
type Hub interface {
	Watch(ctx context.Context, f watcher.Filter, since int64, opts ...watcher.WatchOption) (*watcher.Watcher, error)
}

var (
	_ Store = (*audit.Store)(nil)
	_ Hub   = (*watcher.Hub)(nil)
)

// Option configures the door.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	auth     *authz.Auth
	limits   *authz.Limits
	reg      prometheus.Registerer
	version  string
	node     string
	readWait time.Duration
	body     time.Duration
}

// WithLogger sets the door's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithAuth makes the door authenticate every KV and transaction request
// with its Consul token (X-Consul-Token, Authorization: Bearer, or
// ?token=) as a configd token, and check it against the token's grants.
// nil leaves authentication off: every request acts as
// consul-api@ADDRESS.
func WithAuth(a *authz.Auth) Option { return func(o *options) { o.auth = a } }

// WithLimits applies the per-identity limits the other doors share: the
// request rate, and a blocking query counts as an open watch.
func WithLimits(l *authz.Limits) Option { return func(o *options) { o.limits = l } }

// WithMetrics registers the door's metrics in reg (the daemon's shared
// registry); without it they are kept but not exported.
func WithMetrics(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithVersion sets configd's version, reported by /v1/agent/self.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithNodeName sets the node name /v1/agent/self reports (default the
// host name).
func WithNodeName(n string) Option { return func(o *options) { o.node = n } }

// WithBodyReadTimeout bounds how long reading a request's body may take
// (authz.BodyDeadline, --body-read-timeout; default: no bound).
func WithBodyReadTimeout(d time.Duration) Option { return func(o *options) { o.body = d } }

// WithReadWait bounds how long a ?consistent read waits for the store to
// catch up (default core.DefaultReadWait).
func WithReadWait(d time.Duration) Option { return func(o *options) { o.readWait = d } }

// handler is the door.
type handler struct {
	st      Store
	direct  *requests.Direct
	hub     Hub
	opts    options
	metrics *metrics
}

// New returns the door over st and hub as an http.Handler.
func New(st Store, hub Hub, opts ...Option) http.Handler {
	o := options{logger: slog.Default(), readWait: core.DefaultReadWait}
	for _, opt := range opts {
		opt(&o)
	}
	h := &handler{st: st, direct: writeops.Direct(st), hub: hub, opts: o, metrics: newMetrics(o.reg)}
	body := authz.BodyDeadline(o.body)
	kv, txn := h.route("kv", body(h.identity(h.kv))), h.route("txn", body(h.identity(h.txn)))
	fixed := map[string]http.Handler{
		"/v1/txn":           txn,
		"/v1/status/leader": h.route("status", http.HandlerFunc(h.leader)),
		"/v1/status/peers":  h.route("status", http.HandlerFunc(h.peers)),
		"/v1/agent/self":    h.route("agent", h.identity(h.agentSelf)),
	}
	unknown := h.route("unknown", http.HandlerFunc(notServed))
	// Routed by hand, not by http.ServeMux, which would clean a path
	// ("app//k", "app/../k") and redirect a write to another key: a key
	// is taken as sent, and refused by configd's key rules.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/kv/"):
			kv.ServeHTTP(w, r)
		case fixed[r.URL.Path] != nil:
			fixed[r.URL.Path].ServeHTTP(w, r)
		default:
			unknown.ServeHTTP(w, r)
		}
	})
}

// route counts the requests of endpoint in the metrics.
func (h *handler) route(endpoint string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, r)
		h.metrics.observe(endpoint, r.Method, sw.status, time.Since(start))
	})
}

// notServed answers a path this door does not serve as Consul answers an
// unknown endpoint, naming it.
func notServed(w http.ResponseWriter, r *http.Request) {
	writeText(w, http.StatusNotFound, "Invalid URL path: not a recognized HTTP API endpoint: "+
		strconv.Quote(r.URL.Path)+" is not served by configd's Consul API (see docs/compat.md)")
}

// methods answers 405 as Consul does when r's method is not one of
// allowed, and returns false.
func methods(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ","))
	writeText(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
	return false
}
