package httpapi

import (
	"net/http"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/writeops"
)

// The JSON Schemas per prefix (docs/schemas.md). A schema's prefix is the
// rest of the path: /v1/schemas/app/ is app/'s, /v1/schemas/ the whole
// keyspace's; /v1/schemas (no slash) lists them.

// schemaPrefix returns the canonical prefix of a /v1/schemas/{prefix...}
// or /v1/schema-history/{prefix...} route.
func schemaPrefix(r *http.Request) (string, error) {
	raw, err := pathParam(r, "prefix")
	if err != nil {
		return "", err
	}
	p, err := keyspace.Prefix(raw)
	if err != nil {
		return "", apierror.WithKey(err, raw)
	}
	return p, nil
}

// schemaRequest checks the query of a schema's route (params are the
// ones it takes) and returns its prefix.
func schemaRequest(r *http.Request, params ...string) (string, error) {
	if err := checkParams(r.URL.Query(), params...); err != nil {
		return "", err
	}
	return schemaPrefix(r)
}

// schemaTarget is the prefix of a schema's route: setting or deleting a
// schema needs write on it, reading it read.
func schemaTarget(r *http.Request) ([]string, bool) {
	p, err := schemaPrefix(r)
	return []string{p}, err == nil
}

func toAPISchema(s audit.Schema) api.Schema {
	return api.Schema{Prefix: s.Prefix, Schema: s.Schema, CreateRev: s.CreateRev, ModRev: s.ModRev, Version: s.Version}
}

// GET /v1/schemas: the schemas whose prefix the token may read.
func (h *handler) listSchemas(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	cur := h.st.Rev()
	all, err := h.st.Schemas(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := api.SchemasResponse{Schemas: []api.Schema{}}
	for _, s := range all {
		if h.opts.auth == nil || h.opts.auth.Check(authz.PrincipalFrom(r.Context()), api.PermissionRead, s.Prefix) == nil {
			resp.Schemas = append(resp.Schemas, toAPISchema(s))
		}
	}
	setRev(w, cur)
	apierror.WriteJSON(w, http.StatusOK, resp)
}

// GET /v1/schemas/{prefix...}
func (h *handler) getSchema(w http.ResponseWriter, r *http.Request) {
	p, err := schemaRequest(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	cur := h.st.Rev()
	s, err := h.st.GetSchema(r.Context(), p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setRev(w, cur)
	apierror.WriteJSON(w, http.StatusOK, toAPISchema(s))
}

// PUT /v1/schemas/{prefix...}[?force=true]: the body is the schema.
func (h *handler) putSchema(w http.ResponseWriter, r *http.Request) {
	p, err := schemaRequest(r, api.QueryForce)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	force, err := boolParam(r.URL.Query(), api.QueryForce)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	doc, err := h.readValue(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rev, err := h.st.SetSchema(r.Context(), p, doc, h.schemaChange(r, force))
	h.wrote(w, r, rev, err)
}

// DELETE /v1/schemas/{prefix...}
func (h *handler) deleteSchema(w http.ResponseWriter, r *http.Request) {
	p, err := schemaRequest(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rev, err := h.st.DeleteSchema(r.Context(), p, h.schemaChange(r, false))
	h.wrote(w, r, rev, err)
}

func (h *handler) schemaChange(r *http.Request, force bool) audit.SchemaChange {
	return audit.SchemaChange{Actor: authz.ActorFrom(r.Context()), Reason: r.Header.Get(api.HeaderReason),
		Origin: writeops.OriginAPI, Force: force}
}

// wrote answers a schema's write.
func (h *handler) wrote(w http.ResponseWriter, r *http.Request, rev audit.Revision, err error) {
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setRev(w, rev.Rev)
	apierror.WriteJSON(w, http.StatusOK, api.WriteResponse{Rev: rev.Rev, Changed: len(rev.Changes) > 0})
}

// GET /v1/schema-history/{prefix...}[?limit=N][&cursor=C]: the revisions
// that set or deleted the prefix's schema, newest first.
func (h *handler) schemaHistory(w http.ResponseWriter, r *http.Request) {
	p, err := schemaRequest(r, "limit", "cursor")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var hq audit.HistoryQuery
	if err := pageParams(r.URL.Query(), &hq); err != nil {
		h.fail(w, r, err)
		return
	}
	cur := h.st.Rev()
	page, err := h.st.SchemaHistory(r.Context(), p, hq)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeHistory(w, cur, page)
}
