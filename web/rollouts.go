package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/rollouts"
)

// Rollouts is the book of rollouts the UI shows and acts on
// (docs/rollouts.md). *rollouts.Book implements it: the rules of an
// action (which state allows it, what it writes) are the book's; the UI
// checks only the grants, as the HTTP API does.
type Rollouts interface {
	List(ctx context.Context) ([]rollouts.Record, error)
	Get(ctx context.Context, id int64) (rollouts.Record, error)
	// Changes returns a rollout's changes, old → new, secrets withheld.
	Changes(r *rollout.Rollout) ([]audit.Change, error)
	// Act takes action on rollout id, on its version at revision at
	// only (the one the page showed), by actor with text for its log.
	Act(ctx context.Context, id, at int64, action, actor, text string) (rollouts.Record, error)
}

var _ Rollouts = (*rollouts.Book)(nil)

// WithRollouts serves the rollouts' pages: {base}/rollouts, the list, and
// {base}/rollouts/{id}, a rollout with its steps, its convergence (live),
// its changes, its log and the Promote, Pause, Resume and Abort buttons.
// The convergence needs WithClients too. Without it those pages are not
// found and the navigation does not link them.
func WithRollouts(b Rollouts) Option { return func(o *options) { o.rollouts = b } }

// rolloutActions are the actions a rollout's page posts, and what the
// page says once done.
var rolloutActions = map[string]string{
	"promote": "Promoted.",
	"pause":   "Paused: the step stays until you resume.",
	"resume":  "Resumed.",
	"abort":   "Aborted: every client is back on the old values.",
}

// rolloutsView is the Data of the rollouts page.
type rolloutsView struct {
	Rows []rolloutRow
}

// rolloutRow is one rollout of the list.
type rolloutRow struct {
	R      rollouts.Record
	Status rolloutStatus
}

// rolloutView is the Data of a rollout's page.
type rolloutView struct {
	R       rollouts.Record
	Status  rolloutStatus
	Changes []ChangeView
	// MayAct: the token may take the page's actions (write on the scope).
	MayAct bool
	// Error is the refusal of the action the page answers.
	Error string
	// Done says what the action just did.
	Done string
}

// rolloutStatus is the part of a rollout's page that refreshes itself
// (GET {base}/rollouts/{id}/status.json answers it): where the rollout
// stands and how far each step has converged.
type rolloutStatus struct {
	ID    int64  `json:"id"`
	State string `json:"state"`
	// Step is the current step, from 1, of Steps.
	Step  int `json:"step"`
	Steps int `json:"steps"`
	// Selector is the current step's selector.
	Selector string `json:"selector"`
	// Bake says when the step advances: "3m10s left", "advances on
	// promote", "paused", or "" for a finished rollout.
	Bake string `json:"bake"`
	// Running: clients are in steps (active or paused); the page keeps
	// refreshing.
	Running bool `json:"running"`
	// InStep, Applied and Rejected are the current step's counts (its
	// clients are those of every step up to it).
	InStep   int `json:"in_step"`
	Applied  int `json:"applied"`
	Rejected int `json:"rejected"`
	Behind   int `json:"behind"`
	// StepRows is each step's own convergence.
	StepRows []stepRow `json:"step_rows"`
	// Clients are the clients in the current step.
	Clients []stepClient `json:"clients"`
	// Unknown says the clients could not be listed (no delivery table).
	Unknown bool `json:"unknown,omitempty"`
	// Rev is the store's revision the status was read at.
	Rev int64 `json:"rev"`
}

// stepRow is one step's convergence.
type stepRow struct {
	N        int    `json:"n"` // from 1
	Selector string `json:"selector"`
	// Place is "done", "current" or "next".
	Place    string `json:"place"`
	InStep   int    `json:"in_step"`
	Applied  int    `json:"applied"`
	Rejected int    `json:"rejected"`
	Behind   int    `json:"behind"`
}

// stepClient is one client in the current step.
type stepClient struct {
	Instance string `json:"instance"`
	Labels   string `json:"labels"`
	// Step is the first step that took it in, from 1.
	Step int   `json:"step"`
	Rev  int64 `json:"rev"`
	// State is "applied", "rejected" or "behind".
	State string `json:"state"`
	// Rejection is the client's own message, when it rejected a key.
	Rejection string `json:"rejection,omitempty"`
}

// GET {base}/rollouts: the rollouts whose scope the token may read,
// newest first.
func (u *ui) rolloutsPage(w http.ResponseWriter, r *http.Request) {
	all, err := u.opts.rollouts.List(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	clients, err := u.clientsNow(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := rolloutsView{}
	for i := len(all) - 1; i >= 0; i-- {
		ro := all[i]
		if u.mayOnRollout(r, ro, "") == nil {
			v.Rows = append(v.Rows, rolloutRow{R: ro, Status: u.statusWith(ro, clients)})
		}
	}
	u.render(w, r, http.StatusOK, "rollouts", page{Title: "Rollouts", Data: v})
}

// rolloutParam returns the rollout {id} of the route; one whose scope the
// token may not read is not found.
func (u *ui) rolloutParam(r *http.Request) (rollouts.Record, error) {
	s := chi.URLParam(r, "id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return rollouts.Record{}, apierror.New(api.CodeNotFound, "%q is not a rollout: rollouts are numbered from 1.", s)
	}
	ro, err := u.opts.rollouts.Get(r.Context(), id)
	if err == nil && u.mayOnRollout(r, ro, "") != nil {
		err = apierror.New(api.CodeNotFound, "rollout %d does not exist, or its scope is not one your token may read", id)
	}
	return ro, err
}

// GET {base}/rollouts/{id}
func (u *ui) rolloutPage(w http.ResponseWriter, r *http.Request) {
	ro, err := u.rolloutParam(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.showRollout(w, r, http.StatusOK, ro, rolloutView{Done: rolloutActions[r.URL.Query().Get("done")]})
}

// GET {base}/rollouts/{id}/status.json: the part of the page that
// refreshes itself.
func (u *ui) rolloutStatusJSON(w http.ResponseWriter, r *http.Request) {
	ro, err := u.rolloutParam(r)
	if err == nil {
		var st rolloutStatus
		if st, err = u.rolloutStatus(r.Context(), ro); err == nil {
			writeJSON(w, r, http.StatusOK, st)
			return
		}
	}
	c := u.classify(r, err)
	writeJSON(w, r, c.Status, map[string]jsonError{"error": {Code: c.Code, Message: c.Message}})
}

// showRollout renders ro's page with status and v's message.
func (u *ui) showRollout(w http.ResponseWriter, r *http.Request, status int, ro rollouts.Record, v rolloutView) {
	st, err := u.rolloutStatus(r.Context(), ro)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	changes, err := u.opts.rollouts.Changes(ro.Rollout)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v.R, v.Status, v.MayAct = ro, st, u.mayOnRollout(r, ro, rollouts.ActionPromote) == nil
	views := newChangeViews(u.opts.secret)
	for _, c := range changes {
		v.Changes = append(v.Changes, views.view(c))
	}
	u.render(w, r, status, "rollout", page{Title: fmt.Sprintf("Rollout %d", ro.ID), Rev: st.Rev, Data: v})
}

// mayOnRollout is nil when the request's token may take action on ro,
// or see it (action ""): rollouts.Needs, as the API's routes ask.
func (u *ui) mayOnRollout(r *http.Request, ro rollouts.Record, action string) error {
	need := rollouts.Needs(ro.Scope, action)
	for _, t := range need.Targets {
		if !u.allows(r, need.Perm, t) {
			return apierror.New(api.CodeForbidden, "token %q may not %s rollout %d: that needs %s on its scope %s",
				principal(r).Name(), cmp.Or(action, "see"), ro.ID, need.Perm, displayScope(ro.Scope))
		}
	}
	return nil
}

func displayScope(scope string) string {
	if scope == "" {
		return "/ (every key)"
	}
	return strconv.Quote(scope)
}

// POST {base}/rollouts/{id}/{action} (behind the CSRF check): promote,
// pause, resume or abort, from the rollout page's forms. Done, it goes
// back to the rollout's page; refused, it shows the page with the
// refusal.
func (u *ui) rolloutAction(w http.ResponseWriter, r *http.Request) {
	ro, err := u.rolloutParam(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	action := chi.URLParam(r, "action")
	if _, ok := rolloutActions[action]; !ok {
		u.notFound(w, r, "There is no such action on a rollout: promote, pause, resume or abort.")
		return
	}
	actor, text, err := u.actionForm(r)
	var at int64
	if err == nil {
		at, err = formRev(r)
	}
	if err == nil {
		err = u.mayOnRollout(r, ro, action)
	}
	if err == nil {
		// On the version the page showed: two people who press
		// promote on the same page promote once.
		_, err = u.opts.rollouts.Act(r.Context(), ro.ID, at, action, actor, text)
		if err == nil {
			u.opts.logger.Info("web: rollout "+action, "rollout", ro.ID, "actor", actor)
		}
	}
	if err != nil {
		c := u.classify(r, err)
		if fresh, gerr := u.opts.rollouts.Get(r.Context(), ro.ID); gerr == nil {
			ro = fresh
		} else if !errors.Is(gerr, audit.ErrNotFound) {
			u.fail(w, r, gerr)
			return
		}
		u.showRollout(w, r, c.Status, ro, rolloutView{Error: c.Message})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("%s/rollouts/%d?done=%s", u.opts.base, ro.ID, action), http.StatusSeeOther)
}

// formRev is the form's rev: the version of the rollout its page showed
// (0: none sent, act on the newest).
func formRev(r *http.Request) (int64, error) {
	s := r.PostFormValue("rev")
	if s == "" {
		return 0, nil
	}
	rev, err := strconv.ParseInt(s, 10, 64)
	if err != nil || rev < 1 {
		return 0, badInput("rev %q is not a revision", s)
	}
	return rev, nil
}

// bakeText says when ro's current step advances, at now, with st its
// status.
func bakeText(ro *rollout.Rollout, st api.RolloutStatus, now time.Time) string {
	switch {
	case ro.State == rollout.StatePaused:
		return "Paused: the step advances on resume or promote."
	case ro.State != rollout.StateActive:
		return ""
	case ro.Bake <= 0:
		return "No bake time: the step advances on promote."
	}
	next := fmt.Sprintf("step %d", ro.Step+2)
	if ro.Step+1 >= len(ro.Steps) {
		next = "complete"
	}
	if left := ro.StepStarted.Add(ro.Bake).Sub(now); left > 0 {
		return fmt.Sprintf("Bake: %s left, then %s.", left.Round(time.Second), next)
	}
	return fmt.Sprintf("Baked: %s once at most %s%% of the step's clients reject (now %s%%).",
		next, strconv.FormatFloat(ro.MaxErrors, 'f', -1, 64), strconv.FormatFloat(st.RejectedPercent, 'f', 1, 64))
}

// clientsNow lists every client (of every replica), as the API's status
// reads them; nil without a delivery table.
func (u *ui) clientsNow(ctx context.Context) ([]api.ClientStatus, error) {
	if u.opts.clients == nil {
		return nil, nil
	}
	return u.opts.clients.List(ctx, "")
}

// rolloutStatus reads where ro stands now.
func (u *ui) rolloutStatus(ctx context.Context, ro rollouts.Record) (rolloutStatus, error) {
	clients, err := u.clientsNow(ctx)
	if err != nil {
		return rolloutStatus{}, err
	}
	return u.statusWith(ro, clients), nil
}

// statusWith is where ro stands with clients (rollouts.Status, the
// driver's and the API's reading).
func (u *ui) statusWith(ro rollouts.Record, clients []api.ClientStatus) rolloutStatus {
	v := rolloutStatus{ID: ro.ID, State: ro.State, Step: ro.Step + 1, Steps: len(ro.Steps), Running: rollout.Running(ro.State),
		Rev: u.st.Rev(), StepRows: []stepRow{}, Clients: []stepClient{}, Unknown: u.opts.clients == nil}
	if ro.Step < len(ro.Steps) {
		v.Selector = ro.Steps[ro.Step].String()
	}
	st := rollouts.Status(ro, clients)
	v.Bake = bakeText(ro.Rollout, st, time.Now())
	v.InStep, v.Applied, v.Rejected, v.Behind = st.InStep, st.Applied, st.Rejected, st.InStep-st.Applied
	for i, s := range ro.Steps {
		row := stepRow{N: i + 1, Selector: s.String(), Place: "next"}
		switch {
		case ro.State == rollout.StateComplete || i < ro.Step:
			row.Place = "done"
		case i == ro.Step && v.Running:
			row.Place = "current"
		}
		if v.Running && i < len(st.Steps) {
			c := st.Steps[i]
			row.InStep, row.Applied, row.Rejected, row.Behind = c.InStep, c.Applied, c.Rejected, c.InStep-c.Applied
		}
		v.StepRows = append(v.StepRows, row)
	}
	byInstance := make(map[string]api.ClientStatus, len(clients))
	for _, c := range clients {
		byInstance[c.Instance] = c
	}
	keys := ro.Keys()
	for _, m := range st.Members {
		if !m.InStep {
			continue
		}
		c := byInstance[m.Instance]
		sc := stepClient{Instance: m.Instance, Labels: labelText(c.Labels), Step: m.Step + 1, Rev: c.Rev, State: "behind"}
		switch {
		case m.Rejected:
			sc.State = "rejected"
			var newest int64 = -1
			for _, j := range c.Rejections { // the newest rejection of one of the rollout's keys
				if slices.Contains(keys, j.Key) && j.Rev > newest {
					newest, sc.Rejection = j.Rev, j.Key+": "+j.Error
				}
			}
		case m.Applied:
			sc.State = "applied"
		}
		v.Clients = append(v.Clients, sc)
	}
	sort.Slice(v.Clients, func(i, j int) bool { return v.Clients[i].Instance < v.Clients[j].Instance })
	return v
}

// labelText is a client's labels as the pages show them: k=v, sorted.
func labelText(labels map[string]string) string {
	out := make([]string, 0, len(labels))
	for k, val := range labels {
		out = append(out, k+"="+val)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
