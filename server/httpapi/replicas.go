package httpapi

import (
	"context"
	"net/http"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
)

// Replicas lists the replicas of the configd cluster this configd is a
// replica of (the daemon's registry in etcd).
type Replicas interface {
	Replicas(ctx context.Context) (api.ReplicasResponse, error)
}

// WithReplicas serves the cluster's replicas at GET /v1/replicas; without
// it (the SQLite mode) the route lists none, with store "sqlite".
func WithReplicas(r Replicas) Option { return func(o *options) { o.replicas = r } }

// WithReplication replaces the store's report of whether it follows its
// cluster's log (audit.Store.Replication) in /readyz and
// configd_store_available: the daemon adds what its own probe of etcd
// sees.
func WithReplication(fn func() audit.Replication) Option {
	return func(o *options) { o.replication = fn }
}

// GET /v1/replicas
func (h *handler) listReplicas(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.opts.replicas == nil {
		rev := h.st.Rev()
		setRev(w, rev)
		apierror.WriteJSON(w, http.StatusOK, api.ReplicasResponse{Store: "sqlite", Rev: rev, Replicas: []api.ReplicaStatus{}})
		return
	}
	resp, err := h.opts.replicas.Replicas(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setRev(w, h.st.Rev())
	apierror.WriteJSON(w, http.StatusOK, resp)
}
