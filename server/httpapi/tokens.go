package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
)

// maxTokenBody caps the body of POST /v1/tokens: a name and grants.
const maxTokenBody = 64 << 10

// errAuthOff answers the token routes when authentication is off: tokens
// are managed by the Auth that checks them.
var errAuthOff = apierror.New(api.CodeNotFound,
	"authentication is off: start configd with --auth (or on a non-loopback address) to manage tokens")

// tokenRoute checks what every token route needs: no query parameters,
// and authentication on. It answers the request and returns false when
// either is missing.
func (h *handler) tokenRoute(w http.ResponseWriter, r *http.Request) bool {
	err := checkParams(r.URL.Query())
	if err == nil && h.opts.auth == nil {
		err = errAuthOff
	}
	if err != nil {
		h.fail(w, r, err)
		return false
	}
	return true
}

// POST /v1/tokens
func (h *handler) createToken(w http.ResponseWriter, r *http.Request) {
	if !h.tokenRoute(w, r) {
		return
	}
	var req api.TokenRequest
	if err := h.decodeTokenBody(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	secret, grants, err := h.opts.auth.CreateToken(r.Context(), req.Name, req.Grants)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.opts.logger.Info("token created", "name", req.Name, "by", authz.ActorFrom(r.Context()))
	w.Header().Set("Cache-Control", "no-store")
	apierror.WriteJSON(w, http.StatusCreated, api.TokenCreated{Name: req.Name, Token: secret, Grants: grants})
}

// GET /v1/tokens
func (h *handler) listTokens(w http.ResponseWriter, r *http.Request) {
	if !h.tokenRoute(w, r) {
		return
	}
	ts, err := h.opts.auth.Tokens(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	apierror.WriteJSON(w, http.StatusOK, api.TokensResponse{Tokens: ts})
}

// DELETE /v1/tokens/{name}
func (h *handler) revokeToken(w http.ResponseWriter, r *http.Request) {
	if !h.tokenRoute(w, r) {
		return
	}
	name := chi.URLParam(r, "name")
	if err := h.opts.auth.RevokeToken(r.Context(), name); err != nil {
		h.fail(w, r, err)
		return
	}
	h.opts.logger.Info("token revoked", "name", name, "by", authz.ActorFrom(r.Context()))
	w.WriteHeader(http.StatusNoContent)
}

// PUT /v1/tokens/{name}/grants
func (h *handler) setTokenGrants(w http.ResponseWriter, r *http.Request) {
	if !h.tokenRoute(w, r) {
		return
	}
	var req api.GrantsRequest
	if err := h.decodeTokenBody(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	name := chi.URLParam(r, "name")
	grants, err := h.opts.auth.SetGrants(r.Context(), name, req.Grants)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.opts.logger.Info("token grants set", "name", name, "grants", authz.GrantsString(grants), "by", authz.ActorFrom(r.Context()))
	apierror.WriteJSON(w, http.StatusOK, api.TokenInfo{Name: name, Grants: grants})
}

// decodeTokenBody decodes the JSON body of a token route into v, reading at
// most maxTokenBody bytes.
func (h *handler) decodeTokenBody(w http.ResponseWriter, r *http.Request, v any) error {
	limit := min(maxTokenBody, h.opts.maxRequestBody)
	tooLarge := apierror.New(api.CodeTooLarge, "request body is larger than the limit of %d bytes", limit)
	if r.ContentLength > limit {
		return tooLarge
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := h.decodeBody(w, r, v); err != nil {
		if _, body, _ := errorBody(err); body.Code == api.CodeTooLarge {
			return tooLarge
		}
		return err
	}
	return nil
}
