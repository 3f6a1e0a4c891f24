package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
)

// Limits of a rollback request from the page.
const (
	maxRollbackBody = 64 << 10
	maxReasonLen    = 4096
	maxActorLen     = 256
	// DefaultActor is the actor of a UI rollback whose page sent no name.
	DefaultActor = "web"
	// Origin is the origin recorded for rollbacks made through the UI: the
	// UI is a client of configd's API like any other.
	Origin = "api"
)

// ClaimedActor is the default ActorFunc: until authentication exists, the
// actor is whoever the page says it is (the name field of the rollback
// dialog), or DefaultActor. A name longer than 256 bytes, not UTF-8 or with
// control characters is refused.
func ClaimedActor(_ *http.Request, claimed string) (string, error) {
	a := strings.TrimSpace(claimed)
	switch {
	case a == "":
		return DefaultActor, nil
	case len(a) > maxActorLen:
		return "", badInput("the name is longer than %d bytes", maxActorLen)
	case !utf8.ValidString(a):
		return "", badInput("the name is not valid UTF-8")
	}
	for _, r := range a {
		if unicode.IsControl(r) {
			return "", badInput("the name contains a control character")
		}
	}
	return a, nil
}

// rollbackRequest is the JSON body of POST {base}/rollback.
type rollbackRequest struct {
	// Scope is "key", "prefix" or "all".
	Scope  string `json:"scope"`
	Key    string `json:"key,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	To     int64  `json:"to"`
	Reason string `json:"reason,omitempty"`
	// Actor is the name the page claims; see ActorFunc.
	Actor  string `json:"actor,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	// ExpectRev is the revision the page showed: the rollback fails with
	// 409 if the scope changed after it.
	ExpectRev int64 `json:"expect_rev"`
}

// rollbackResponse answers POST {base}/rollback, errors included.
type rollbackResponse struct {
	// Rev is, for a dry run or a conflict, the revision the diff was
	// computed against (send it as expect_rev to apply exactly that diff);
	// otherwise the revision the rollback created, or the current one when
	// it changed nothing.
	Rev     int64        `json:"rev"`
	Changed bool         `json:"changed"`
	DryRun  bool         `json:"dry_run,omitempty"`
	Changes []ChangeView `json:"changes"`
	// URL is the page of the new revision.
	URL string `json:"url,omitempty"`
	// Conflict says the scope changed after expect_rev: Changes is the new
	// diff, computed at Rev.
	Conflict bool       `json:"conflict,omitempty"`
	Error    *jsonError `json:"error,omitempty"`
}

// scope is the scope the page chose (audit.RollbackScope checks it).
func (req rollbackRequest) scope() (audit.Scope, error) {
	switch req.Scope {
	case "key":
		return audit.RollbackScope(req.Key, "", false)
	case "prefix":
		if req.Prefix == "" {
			return audit.Scope{}, badInput("an empty prefix is everything: choose \"everything\" instead")
		}
		return audit.RollbackScope("", req.Prefix, false)
	case "all":
		return audit.RollbackScope("", "", true)
	}
	return audit.Scope{}, badInput("scope %q: want key, prefix or all", req.Scope)
}

// POST {base}/rollback (behind the CSRF check)
func (u *ui) rollback(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code string, err error) {
		writeJSON(w, r, status, rollbackResponse{Changes: []ChangeView{}, Error: &jsonError{Code: code, Message: err.Error()}})
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		fail(http.StatusUnsupportedMediaType, "bad_content_type", errors.New("send the request as application/json"))
		return
	}
	var req rollbackRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRollbackBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(http.StatusBadRequest, "bad_request", fmt.Errorf("request body: %v", err))
		return
	}
	scope, err := req.scope()
	reason := strings.TrimSpace(req.Reason)
	if err == nil && !req.DryRun && reason == "" {
		err = badInput("say why: a rollback needs a reason")
	}
	if err == nil && len(reason) > maxReasonLen {
		err = badInput("the reason is longer than %d bytes", maxReasonLen)
	}
	var actor string
	if err == nil {
		if p := principal(r); p != nil {
			// Authenticated: the token is the actor, whatever the page says.
			actor = p.Name()
		} else {
			actor, err = u.opts.actor(r, req.Actor)
		}
	}
	// failErr answers err with the status and code of its class.
	failErr := func(err error) {
		c := u.classify(r, err)
		fail(c.Status, c.Code, errors.New(c.Message))
	}
	if err != nil {
		failErr(err)
		return
	}
	// A rollback, dry run included (it shows the values), needs write on
	// its whole scope.
	if target := scope.Key + scope.Prefix; !u.allows(r, api.PermissionWrite, target) {
		what := fmt.Sprintf("%q", target)
		if target == "" {
			what = "every key"
		}
		fail(http.StatusForbidden, "forbidden", fmt.Errorf("token %q may not roll back %s: that needs write on it", principal(r).Name(), what))
		return
	}

	ar := audit.RollbackRequest{Scope: scope, To: req.To, Actor: actor, Reason: reason, Origin: Origin,
		ExpectRev: req.ExpectRev, DryRun: req.DryRun}
	if err := ar.Validate(); err != nil {
		failErr(err)
		return
	}
	cur := u.st.Rev()
	res, err := u.st.Rollback(r.Context(), ar)
	if errors.Is(err, audit.ErrConflict) {
		// The scope changed since the page showed it: answer with the
		// diff as it is now, for the user to review again.
		ar.DryRun, ar.ExpectRev = true, 0
		now := u.st.Rev()
		fresh, ferr := u.st.Rollback(r.Context(), ar)
		if ferr != nil {
			err = ferr
		} else {
			writeJSON(w, r, http.StatusConflict, rollbackResponse{
				Rev: now, Changed: len(fresh.Changes) > 0, DryRun: req.DryRun, Conflict: true,
				Changes: u.views(fresh.Changes),
				Error: &jsonError{Code: "conflict", Message: fmt.Sprintf(
					"the configuration changed after revision %d, which this page showed; this is the diff as of revision %d — review it and confirm again", req.ExpectRev, now)},
			})
			return
		}
	}
	if err != nil {
		failErr(err)
		return
	}
	out := rollbackResponse{Rev: res.Rev, Changed: len(res.Changes) > 0, DryRun: req.DryRun, Changes: u.views(res.Changes)}
	if req.DryRun {
		out.Rev = cur
	} else if out.Changed {
		out.URL = u.opts.base + "/rev/" + strconv.FormatInt(res.Rev, 10)
		u.opts.logger.Info("web: rollback", "rev", res.Rev, "to", req.To, "scope", req.Scope,
			"key", scope.Key, "prefix", scope.Prefix, "actor", actor)
	}
	writeJSON(w, r, http.StatusOK, out)
}

// views renders the changes of one answer, within one diff budget.
func (u *ui) views(changes []audit.Change) []ChangeView {
	views := newChangeViews(u.opts.secret)
	out := make([]ChangeView, 0, len(changes))
	for _, c := range changes {
		out = append(out, views.view(c))
	}
	return out
}
