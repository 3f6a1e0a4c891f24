package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/requests"
)

// Requests is the book of change requests the UI shows and acts on
// (docs/requests.md). *requests.Book implements it: the rules of an
// action (states, the author's own approval, the policy's count,
// staleness) are the book's; the UI checks only the grants, as the HTTP
// API does.
type Requests interface {
	List(ctx context.Context) ([]requests.Request, error)
	Get(ctx context.Context, id int64) (requests.Request, int64, error)
	View(ctx context.Context, r requests.Request, diff bool) (requests.View, error)
	Approve(ctx context.Context, id int64, actor, text string) (requests.Request, error)
	Publish(ctx context.Context, id int64, actor, origin string) (requests.Request, audit.Revision, error)
	Close(ctx context.Context, id int64, actor, why string) (requests.Request, error)
}

var _ Requests = (*requests.Book)(nil)

// WithRequests serves the change requests' pages: {base}/requests, the
// list, and {base}/requests/{id}, a request with its diff against now and
// the Approve, Publish and Close buttons. Without it those pages are not
// found and the navigation does not link them.
func WithRequests(b Requests) Option { return func(o *options) { o.requests = b } }

// requestsView is the Data of the requests page.
type requestsView struct {
	Rows []requests.View
}

// requestView is the Data of a request's page.
type requestView struct {
	V       requests.View
	Changes []ChangeView
	// Error is the refusal of the action the page answers.
	Error string
	// Done says what the action just did.
	Done string
}

// GET {base}/requests: the requests whose scope the token may read.
func (u *ui) requestsPage(w http.ResponseWriter, r *http.Request) {
	all, err := u.opts.requests.List(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := requestsView{}
	for i := len(all) - 1; i >= 0; i-- { // newest first
		rq := all[i]
		if !u.allows(r, api.PermissionRead, rq.Scope) {
			continue
		}
		rv, err := u.opts.requests.View(r.Context(), rq, false)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		v.Rows = append(v.Rows, rv)
	}
	u.render(w, r, http.StatusOK, "requests", page{Title: "Change requests", Data: v})
}

// requestParam returns the request {id} of the route; one whose scope
// the token may not read is not found, as a revision it may not read.
func (u *ui) requestParam(r *http.Request) (requests.Request, error) {
	s := chi.URLParam(r, "id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return requests.Request{}, apierror.New(api.CodeNotFound, "%q is not a change request: requests are numbered from 1.", s)
	}
	rq, _, err := u.opts.requests.Get(r.Context(), id)
	if err == nil && !u.allows(r, api.PermissionRead, rq.Scope) {
		err = apierror.New(api.CodeNotFound, "request %d does not exist, or its scope is not one your token may read", id)
	}
	return rq, err
}

// GET {base}/requests/{id}
func (u *ui) requestPage(w http.ResponseWriter, r *http.Request) {
	rq, err := u.requestParam(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.showRequest(w, r, http.StatusOK, rq, requestView{Done: doneMessage(r.URL.Query().Get("done"))})
}

// showRequest renders rq's page as it stands now, with status and v's
// message.
func (u *ui) showRequest(w http.ResponseWriter, r *http.Request, status int, rq requests.Request, v requestView) {
	rev := u.st.Rev()
	rv, err := u.opts.requests.View(r.Context(), rq, true)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v.V, v.Changes = rv, u.views(rv.Diff)
	u.render(w, r, status, "request", page{Title: fmt.Sprintf("Request %d", rq.ID), Rev: rev, Data: v})
}

// mayAct is nil when the request's token may take action on rq as actor
// (requests.Needs, the grants every door checks).
func (u *ui) mayAct(r *http.Request, rq requests.Request, actor, action string) error {
	need := requests.Needs(rq, actor, action)
	for _, t := range need.Targets {
		if !u.allows(r, need.Perm, t) {
			return apierror.New(api.CodeForbidden, "token %q may not %s request %d: that needs %s on every key it changes, and it may not %s %q",
				principal(r).Name(), action, rq.ID, need.Perm, need.Perm, t)
		}
	}
	return nil
}

// The actions a request's page posts, and what the page says once done.
var requestActions = map[string]string{
	"approve": "You approved this request.",
	"publish": "Published.",
	"close":   "Closed.",
}

func doneMessage(action string) string { return requestActions[action] }

// actionForm reads the form of an action's button (a request's, a
// rollout's): its text, at most maxReasonLen bytes, and who acts: with
// authentication on, the token, whatever the page says; else the
// ActorFunc's reading of the page's name.
func (u *ui) actionForm(r *http.Request) (actor, text string, err error) {
	text = strings.TrimSpace(r.PostFormValue("text"))
	if len(text) > maxReasonLen {
		return "", "", badInput("the text is longer than %d bytes", maxReasonLen)
	}
	if p := principal(r); p != nil {
		return p.Name(), text, nil
	}
	actor, err = u.opts.actor(r, r.PostFormValue("actor"))
	return actor, text, err
}

// POST {base}/requests/{id}/{action} (behind the CSRF check): approve,
// publish or close, from the request page's forms. Done, it goes back to
// the request's page; refused, it shows the page with the refusal.
func (u *ui) requestAction(w http.ResponseWriter, r *http.Request) {
	rq, err := u.requestParam(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	action := chi.URLParam(r, "action")
	if _, ok := requestActions[action]; !ok {
		u.notFound(w, r, "There is no such action on a request: approve, publish or close.")
		return
	}
	actor, text, err := u.actionForm(r)
	if err == nil {
		err = u.mayAct(r, rq, actor, action)
	}
	if err == nil {
		ctx := r.Context()
		switch action {
		case "approve":
			_, err = u.opts.requests.Approve(ctx, rq.ID, actor, text)
		case "publish":
			var rev audit.Revision
			if _, rev, err = u.opts.requests.Publish(ctx, rq.ID, actor, Origin); err == nil {
				u.opts.logger.Info("web: request published", "request", rq.ID, "rev", rev.Rev, "actor", actor)
			}
		case "close":
			_, err = u.opts.requests.Close(ctx, rq.ID, actor, text)
		}
	}
	if err != nil {
		c := u.classify(r, err)
		if fresh, _, gerr := u.opts.requests.Get(r.Context(), rq.ID); gerr == nil {
			rq = fresh
		} else if !errors.Is(gerr, audit.ErrNotFound) {
			u.fail(w, r, gerr)
			return
		}
		u.showRequest(w, r, c.Status, rq, requestView{Error: c.Message})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("%s/requests/%d?done=%s", u.opts.base, rq.ID, action), http.StatusSeeOther)
}
