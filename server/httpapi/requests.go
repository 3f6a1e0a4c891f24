package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/writeops"
)

// The change requests' routes (docs/requests.md). Who may do what, with
// authentication on: reading, proposing and commenting need read on the
// request's scope; approving and publishing need write on every key the
// request changes (publishing is the ordinary write path); rebasing and
// closing are the author's, or a token's that may approve; the policies
// are set with admin on their prefix. Each action is the token's own: an
// X-Configd-Actor (configctl --as) naming someone else is refused.

// requestActor is who takes an action on a request.
func (h *handler) requestActor(r *http.Request) (string, error) {
	if h.opts.auth == nil {
		return authz.ActorFrom(r.Context()), nil
	}
	p := authz.PrincipalFrom(r.Context())
	if claim := r.Header.Get(api.HeaderActor); claim != "" && claim != p.Name {
		return "", apierror.New(api.CodeForbidden,
			"--as %q (header %s) is not the token's name %q: with authentication on, an action on a change request is the token's own", claim, api.HeaderActor, p.Name)
	}
	return p.Name, nil
}

// allowed reports whether the request's token has perm on every target
// (always, with authentication off).
func (h *handler) allowed(r *http.Request, perm string, targets ...string) error {
	if h.opts.auth == nil {
		return nil
	}
	for _, t := range targets {
		if err := h.opts.auth.Check(authz.PrincipalFrom(r.Context()), perm, t); err != nil {
			return err
		}
	}
	return nil
}

// POST /v1/requests
func (h *handler) propose(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	var body api.ProposeRequest
	if err := h.decodeBody(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	actor, err := h.requestActor(r)
	if err == nil {
		err = h.allowed(r, api.PermissionRead, scopeOf(body.Scope))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ops, err := h.txnOps(body.Ops)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	reason := body.Reason
	if reason == "" {
		reason = r.Header.Get(api.HeaderReason)
	}
	rq, err := h.book.Propose(r.Context(), requests.Draft{Scope: body.Scope, Author: actor, Reason: reason, Ops: ops})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.answerRequest(w, r, rq, true)
}

// scopeOf is the canonical form of scope, for a grant check; one that
// does not parse is checked as the whole keyspace (and refused later).
func scopeOf(scope string) string {
	p, err := keyspace.Prefix(scope)
	if err != nil {
		return ""
	}
	return p
}

// answerRequest answers with rq as it stands now, its diff if diff.
func (h *handler) answerRequest(w http.ResponseWriter, r *http.Request, rq requests.Request, diff bool) {
	rev := h.st.Rev()
	v, err := h.book.View(r.Context(), rq, diff)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setRev(w, rev)
	apierror.WriteJSON(w, http.StatusOK, toAPIRequest(v, rev))
}

func toAPIRequest(v requests.View, rev int64) api.ChangeRequest {
	out := api.ChangeRequest{
		ID: v.ID, Scope: v.Scope, Author: v.Author, Reason: v.Reason, Time: v.Time, Base: v.Base,
		State: v.State, Stale: len(v.StaleKeys) > 0, StaleKeys: v.StaleKeys, Keys: len(v.Ops),
		ApprovalsNeeded: v.Policy.Approvals, Approvals: toAPINotes(v.Approvals), Comments: toAPINotes(v.Comments),
		PublishedRev: v.PublishedRev, PublishedBy: v.PublishedBy, Rollout: v.Rollout, ClosedBy: v.ClosedBy, CloseReason: v.CloseReason,
		Rev: rev,
	}
	if v.Policy.Approvals > 0 {
		p := v.Policy.Prefix
		out.PolicyPrefix = &p
	}
	if v.Diff != nil {
		out.Diff = toAPIChanges(v.Diff)
	}
	return out
}

func toAPINotes(ns []requests.Note) []api.RequestNote {
	out := make([]api.RequestNote, len(ns))
	for i, n := range ns {
		out[i] = api.RequestNote{Actor: n.Actor, Time: n.Time, Text: n.Text}
	}
	return out
}

// GET /v1/requests[?state=S]: the requests whose scope the token may
// read, oldest first.
func (h *handler) listRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "state"); err != nil {
		h.fail(w, r, err)
		return
	}
	state := q.Get("state")
	switch state {
	case "", api.RequestOpen, api.RequestApproved, api.RequestPublished, api.RequestClosed:
	default:
		h.fail(w, r, apierror.BadRequest("state=%q: want open, approved, published or closed", state))
		return
	}
	rev := h.st.Rev()
	all, err := h.book.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := api.RequestsResponse{Requests: []api.ChangeRequest{}}
	for _, rq := range all {
		if h.allowed(r, api.PermissionRead, rq.Scope) != nil {
			continue
		}
		v, err := h.book.View(r.Context(), rq, false)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		// An approved request is open too: ?state=open lists both.
		if state != "" && v.State != state && !(state == api.RequestOpen && v.State == api.RequestApproved) {
			continue
		}
		out.Requests = append(out.Requests, toAPIRequest(v, rev))
	}
	setRev(w, rev)
	apierror.WriteJSON(w, http.StatusOK, out)
}

// requestParam returns the request {id} of the route, after checking
// that the token may read its scope.
func (h *handler) requestParam(r *http.Request) (requests.Request, error) {
	s := chi.URLParam(r, "id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return requests.Request{}, apierror.BadRequest("request id %q is not a number from 1", s)
	}
	rq, _, err := h.book.Get(r.Context(), id)
	if err != nil {
		return requests.Request{}, err
	}
	return rq, h.allowed(r, api.PermissionRead, rq.Scope)
}

// GET /v1/requests/{id}
func (h *handler) getRequest(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	rq, err := h.requestParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.answerRequest(w, r, rq, true)
}

// POST /v1/requests/{id}/{action}: comment, approve, rebase, publish or
// close, with an optional api.RequestActionBody (the comment's text, the
// approval's note, the close's reason).
func (h *handler) requestAction(w http.ResponseWriter, r *http.Request) {
	text, err := h.actionText(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rq, err := h.requestParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	actor, err := h.requestActor(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx := r.Context()
	action := chi.URLParam(r, "action")
	need := requests.Needs(rq, actor, action)
	if err := h.allowed(r, need.Perm, need.Targets...); err != nil {
		h.fail(w, r, err)
		return
	}
	switch action {
	case "comment":
		rq, err = h.book.Comment(ctx, rq.ID, actor, text)
	case "approve":
		rq, err = h.book.Approve(ctx, rq.ID, actor, text)
	case "publish":
		rq, _, err = h.book.Publish(ctx, rq.ID, actor, writeops.OriginAPI)
	case "rebase":
		rq, err = h.book.Rebase(ctx, rq.ID, actor)
	case "close":
		rq, err = h.book.Close(ctx, rq.ID, actor, text)
	default:
		err = &apierror.Error{Code: api.CodeNotFound,
			Message: "no such action on a request: " + apierror.OneLine(action) + " (comment, approve, rebase, publish or close)"}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.answerRequest(w, r, rq, false)
}

// actionText reads the optional body of an action on a request or a
// rollout (api.RequestActionBody): its text.
func (h *handler) actionText(w http.ResponseWriter, r *http.Request) (string, error) {
	var body api.RequestActionBody
	err := h.actionBody(w, r, &body)
	return body.Text, err
}

// actionBody decodes the optional JSON body of an action's POST (a
// request's, a rollout's) into body, after checking that the route has
// no query parameters.
func (h *handler) actionBody(w http.ResponseWriter, r *http.Request, body any) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	if r.ContentLength != 0 {
		return h.decodeBody(w, r, body)
	}
	return nil
}

// GET /v1/policies
func (h *handler) listPolicies(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	ps, err := h.book.Policies(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := api.PoliciesResponse{Policies: make([]api.RequestPolicy, len(ps))}
	for i, p := range ps {
		out.Policies[i] = api.RequestPolicy{Prefix: p.Prefix, Approvals: p.Approvals, Require: p.Require}
	}
	apierror.WriteJSON(w, http.StatusOK, out)
}

// PUT /v1/policies: set one prefix's policy (approvals 0 removes it).
func (h *handler) setPolicy(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	var body api.RequestPolicy
	if err := h.decodeBody(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.allowed(r, api.PermissionAdmin, scopeOf(body.Prefix)); err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.book.SetPolicy(r.Context(), requests.Policy{Prefix: body.Prefix, Approvals: body.Approvals, Require: body.Require},
		authz.ActorFrom(r.Context()), r.Header.Get(api.HeaderReason))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	apierror.WriteJSON(w, http.StatusOK, api.RequestPolicy{Prefix: p.Prefix, Approvals: p.Approvals, Require: p.Require})
}

// directWrites is the store as the doors write it: a write or a rollback
// that reaches a prefix whose policy takes changes only through change
// requests is refused (requests.Direct); a request's publish goes to the
// store itself.
type directWrites struct {
	Store
	check *requests.Direct
}

func (d directWrites) Commit(ctx context.Context, txn audit.Txn) (audit.Revision, error) {
	return d.check.Commit(ctx, d.Store, txn)
}

func (d directWrites) Rollback(ctx context.Context, req audit.RollbackRequest) (audit.Revision, error) {
	if err := d.check.CheckRollback(ctx, req); err != nil {
		return audit.Revision{}, err
	}
	return d.Store.Rollback(ctx, req)
}
