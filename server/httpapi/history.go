package httpapi

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/writeops"
)

// MaxHistoryLimit is the largest page of GET /v1/history.
const MaxHistoryLimit = 1000

// scopeParams reads the key= or prefix= of a query into a Scope: at most
// one of them; neither is the whole keyspace.
func scopeParams(q url.Values) (audit.Scope, error) {
	_, hasKey := q["key"]
	_, hasPrefix := q["prefix"]
	switch {
	case hasKey && hasPrefix:
		return audit.Scope{}, apierror.BadRequest("give key or prefix, not both")
	case hasKey:
		key := q.Get("key")
		if err := keyspace.Validate(key); err != nil {
			return audit.Scope{}, apierror.WithKey(err, key)
		}
		return audit.Scope{Key: key}, nil
	case hasPrefix:
		p, err := keyspace.Prefix(q.Get("prefix"))
		if err != nil {
			return audit.Scope{}, apierror.WithKey(err, q.Get("prefix"))
		}
		return audit.Scope{Prefix: p}, nil
	}
	return audit.Scope{}, nil
}

// GET /v1/history?key=K|prefix=P&actor=A&limit=N&cursor=C
func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "key", "prefix", "actor", "limit", "cursor"); err != nil {
		h.fail(w, r, err)
		return
	}
	scope, err := scopeParams(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hq := audit.HistoryQuery{Scope: scope, Actor: q.Get("actor")}
	if err := pageParams(q, &hq); err != nil {
		h.fail(w, r, err)
		return
	}
	cur := h.st.Rev()
	page, err := h.st.History(r.Context(), hq)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeHistory(w, cur, page)
}

// pageParams reads the limit= and cursor= of a history query into hq.
func pageParams(q url.Values, hq *audit.HistoryQuery) error {
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxHistoryLimit {
			return apierror.BadRequest("limit=%q: want a whole number from 1 to %d", s, MaxHistoryLimit)
		}
		hq.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return apierror.BadRequest("cursor=%q is not a cursor: pass back the next_cursor of the previous page", s)
		}
		hq.Before = n
	}
	return nil
}

// writeHistory answers with a page of history read at revision cur.
func writeHistory(w http.ResponseWriter, cur int64, page audit.HistoryPage) {
	resp := api.HistoryResponse{Revisions: toAPIRevisions(page.Revisions)}
	if page.Next > 0 {
		resp.NextCursor = strconv.FormatInt(page.Next, 10)
	}
	setRev(w, cur)
	apierror.WriteJSON(w, http.StatusOK, resp)
}

// GET /v1/revisions/{rev}
func (h *handler) revision(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	s := chi.URLParam(r, "rev")
	rev, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		h.fail(w, r, apierror.BadRequest("%q is not a revision number", s))
		return
	}
	if rev < 1 {
		h.fail(w, r, apierror.New(api.CodeRevisionGone,
			"revision %d does not exist: revisions start at 1", rev))
		return
	}
	cur := h.st.Rev()
	res, err := h.st.Revision(r.Context(), rev)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setRev(w, cur)
	apierror.WriteJSON(w, http.StatusOK, toAPIRevision(res))
}

// GET /v1/diff?from=A[&to=B][&key=K|prefix=P]
func (h *handler) diff(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "from", "to", "key", "prefix"); err != nil {
		h.fail(w, r, err)
		return
	}
	from, hasFrom, err := optRevParam(q, "from")
	if err == nil && !hasFrom {
		err = apierror.BadRequest("from is required: the revision to diff from (0 is the empty keyspace)")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	to, err := revParam(q, "to")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if to > 0 && from > to {
		h.fail(w, r, apierror.New(api.CodeBadRevision,
			"from=%d is after to=%d: swap them to see the changes in the other direction", from, to))
		return
	}
	scope, err := scopeParams(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	cur := h.st.Rev()
	if to == 0 {
		// Pin "current" so the answer says which revision it went to.
		to = cur
		if from > to {
			h.fail(w, r, apierror.New(api.CodeBadRevision,
				"from=%d is in the future: the current revision is %d", from, cur))
			return
		}
	}
	changes, err := h.st.Diff(r.Context(), scope, from, to)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setRev(w, cur)
	apierror.WriteJSON(w, http.StatusOK, api.DiffResponse{From: from, To: to, Changes: toAPIChanges(changes)})
}

// POST /v1/rollback
func (h *handler) rollback(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	var req api.RollbackRequest
	if err := h.decodeBody(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	scope, err := audit.RollbackScope(req.Key, req.Prefix, req.All)
	if err != nil {
		h.fail(w, r, apierror.WithKey(err, req.Key+req.Prefix))
		return
	}
	target := scope.Key
	if target == "" {
		target = scope.Prefix // "" with all:true: the whole keyspace
	}
	if !h.authorize(w, r, api.PermissionWrite, target) {
		return
	}
	reason := req.Reason
	if reason == "" {
		reason = r.Header.Get(api.HeaderReason)
	}
	rr := audit.RollbackRequest{
		Scope:     scope,
		To:        req.To,
		Actor:     authz.ActorFrom(r.Context()),
		Reason:    reason,
		Origin:    writeops.OriginAPI,
		ExpectRev: req.ExpectRev,
		DryRun:    req.DryRun,
	}
	if err := rr.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	cur := h.st.Rev()
	res, err := h.st.Rollback(r.Context(), rr)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := api.RollbackResponse{
		Rev:     res.Rev,
		Changed: len(res.Changes) > 0,
		DryRun:  req.DryRun,
		Changes: toAPIChanges(res.Changes),
	}
	if req.DryRun {
		// The revision the dry run was computed against: pass it as
		// expect_rev to commit exactly what was shown, or get a conflict.
		resp.Rev = cur
	}
	setRev(w, resp.Rev)
	apierror.WriteJSON(w, http.StatusOK, resp)
}
