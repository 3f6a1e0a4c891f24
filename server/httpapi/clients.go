package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
)

// Clients is what configd knows of its SDK clients (delivery.Table):
// their reports, and the clients of every replica listed.
type Clients interface {
	Report(token string, r api.ClientReport)
	ReportEvery() time.Duration
	ReportWindow() time.Duration
	List(ctx context.Context, prefix string) ([]api.ClientStatus, error)
}

// WithClients serves delivery tracking: POST /v1/clients/report records
// an SDK client's report in c, GET /v1/clients lists c's clients. Without
// it, both routes answer 404.
func WithClients(c Clients) Option { return func(o *options) { o.clients = c } }

// POST /v1/clients/report
func (h *handler) clientReport(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	var rep api.ClientReport
	if err := h.decodeBody(w, r, &rep); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := rep.Check(); err != nil {
		h.fail(w, r, apierror.BadRequest("client report: %v", err))
		return
	}
	for i, p := range rep.Prefixes {
		// A prefix ends with "/" (or is ""); anything else is one key.
		var err error
		if p == "" || strings.HasSuffix(p, "/") {
			p, err = keyspace.Prefix(p)
		} else {
			err = keyspace.Validate(p)
		}
		if err != nil {
			h.fail(w, r, apierror.BadRequest("client report: prefix %q: %v", p, err))
			return
		}
		rep.Prefixes[i] = p
	}
	for _, p := range rep.Prefixes {
		if !h.authorize(w, r, api.PermissionRead, p) {
			return
		}
	}
	token := ""
	if p := authz.PrincipalFrom(r.Context()); p != nil {
		token = p.Name
	}
	h.opts.clients.Report(token, rep)
	apierror.WriteJSON(w, http.StatusOK, api.ClientReportResponse{EveryMS: h.opts.clients.ReportEvery().Milliseconds(),
		WindowMS: h.opts.clients.ReportWindow().Milliseconds()})
}

// GET /v1/clients?prefix=
func (h *handler) listClients(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "prefix"); err != nil {
		h.fail(w, r, err)
		return
	}
	prefix, err := keyspace.Prefix(q.Get("prefix"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rev := h.st.Rev()
	clients, err := h.opts.clients.List(r.Context(), prefix)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if clients == nil {
		clients = []api.ClientStatus{}
	}
	setRev(w, rev)
	apierror.WriteJSON(w, http.StatusOK, api.ClientsResponse{Prefix: prefix, Rev: rev, Clients: clients})
}
