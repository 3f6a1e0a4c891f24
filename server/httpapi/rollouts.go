package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
	"github.com/configd/configd/server/writeops"
)

// The rollouts' routes (docs/rollouts.md). Who may do what, with
// authentication on: starting a rollout needs what publishing its request
// needs (write on every key it changes); the actions on a rollout need
// write on its scope; reading one needs read on its scope. Each action is
// the token's own, as a request's.

// clientsNow lists the connected clients of every replica (none without
// delivery tracking).
func (h *handler) clientsNow(r *http.Request) ([]api.ClientStatus, error) {
	if h.opts.clients == nil {
		return nil, nil
	}
	return h.opts.clients.List(r.Context(), "")
}

// POST /v1/rollouts
func (h *handler) startRollout(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	var body api.StartRollout
	if err := h.decodeBody(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	p := rollouts.Plan{Request: body.Request, MaxErrors: body.MaxErrors, AbortOnErrors: body.AbortOnErrors,
		AbortQuery: body.AbortQuery, Prometheus: body.Prometheus, AllowEmpty: body.AllowEmpty, Reason: body.Reason, Origin: writeops.OriginAPI}
	for _, s := range body.Steps {
		st, err := rollout.ParseStep(s)
		if err != nil {
			h.fail(w, r, apierror.BadRequest("%v", err))
			return
		}
		p.Steps = append(p.Steps, st)
	}
	if body.Bake != "" {
		d, err := time.ParseDuration(body.Bake)
		if err != nil {
			h.fail(w, r, apierror.BadRequest("bake %q: want a duration (10m, 1h30m)", body.Bake))
			return
		}
		p.Bake = d
	}
	if p.Reason == "" {
		p.Reason = r.Header.Get(api.HeaderReason)
	}
	actor, err := h.requestActor(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p.Actor = actor
	rq, _, err := h.book.Get(r.Context(), body.Request)
	if err == nil {
		need := requests.Needs(rq, actor, "publish")
		err = h.allowed(r, need.Perm, need.Targets...)
	}
	if err == nil {
		p.Clients, err = h.clientsNow(r)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rec, err := h.rollouts.Start(r.Context(), p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.answerRollout(w, r, rec)
}

// answerRollout answers with rec and, for a running rollout, its status
// with the clients connected now.
func (h *handler) answerRollout(w http.ResponseWriter, r *http.Request, rec rollouts.Record) {
	out, err := h.toAPIRollout(rec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if rollout.Running(rec.State) {
		clients, err := h.clientsNow(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		st := rollouts.Status(rec, clients)
		out.Status = &st
	}
	setRev(w, h.st.Rev())
	apierror.WriteJSON(w, http.StatusOK, out)
}

func (h *handler) toAPIRollout(rec rollouts.Record) (api.Rollout, error) {
	changes, err := h.rollouts.Changes(rec.Rollout)
	if err != nil {
		return api.Rollout{}, err
	}
	out := api.Rollout{ID: rec.ID, Scope: rec.Scope, Author: rec.Author, Reason: rec.Reason, Time: rec.Time,
		Request: rec.Request, Base: rec.Base, Changes: toAPIChanges(changes), MaxErrors: rec.MaxErrors,
		AbortOnErrors: rec.AbortOnErrors, AbortQuery: rec.AbortQuery, Prometheus: rec.Prometheus,
		State: rec.State, Step: rec.Step, StepStarted: rec.StepStarted, Rev: rec.Rev, Log: make([]api.RolloutNote, len(rec.Log))}
	if rec.Bake > 0 {
		out.Bake = rec.Bake.String()
	}
	for _, s := range rec.Steps {
		out.Steps = append(out.Steps, s.String())
	}
	for i, n := range rec.Log {
		out.Log[i] = api.RolloutNote{Actor: n.Actor, Time: n.Time, Action: n.Action, Text: n.Text}
	}
	return out, nil
}

// GET /v1/rollouts: the rollouts whose scope the token may read, oldest
// first, without their status.
func (h *handler) listRollouts(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	rev := h.st.Rev()
	all, err := h.rollouts.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := api.RolloutsResponse{Rollouts: []api.Rollout{}}
	for _, rec := range all {
		if need := rollouts.Needs(rec.Scope, ""); h.allowed(r, need.Perm, need.Targets...) != nil {
			continue
		}
		a, err := h.toAPIRollout(rec)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out.Rollouts = append(out.Rollouts, a)
	}
	setRev(w, rev)
	apierror.WriteJSON(w, http.StatusOK, out)
}

// rolloutParam returns the rollout {id} of the route, after checking that
// the token may take action on it (rollouts.Needs; "": see it).
func (h *handler) rolloutParam(r *http.Request, action string) (rollouts.Record, error) {
	s := chi.URLParam(r, "id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return rollouts.Record{}, apierror.BadRequest("rollout id %q is not a number from 1", s)
	}
	rec, err := h.rollouts.Get(r.Context(), id)
	if err != nil {
		return rollouts.Record{}, err
	}
	need := rollouts.Needs(rec.Scope, action)
	return rec, h.allowed(r, need.Perm, need.Targets...)
}

// GET /v1/rollouts/{id}: the rollout and, while it runs, its status.
func (h *handler) getRollout(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	rec, err := h.rolloutParam(r, "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.answerRollout(w, r, rec)
}

// POST /v1/rollouts/{id}/{action}: promote, pause, resume, abort or
// complete, with an optional api.RolloutActionBody (a note for the log,
// and the version the action was decided on).
func (h *handler) rolloutAction(w http.ResponseWriter, r *http.Request) {
	var body api.RolloutActionBody
	if err := h.actionBody(w, r, &body); err != nil {
		h.fail(w, r, err)
		return
	}
	if body.Rev < 0 {
		h.fail(w, r, apierror.BadRequest("rev %d is not a revision", body.Rev))
		return
	}
	action := chi.URLParam(r, "action")
	rec, err := h.rolloutParam(r, action)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	actor, err := h.requestActor(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rec, err = h.rollouts.Act(r.Context(), rec.ID, body.Rev, action, actor, body.Text)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.answerRollout(w, r, rec)
}
