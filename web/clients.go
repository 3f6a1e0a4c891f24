package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
)

// Clients is what configd knows of its SDK clients (docs/delivery.md):
// *delivery.Table implements it.
type Clients interface {
	// List returns the clients of every replica that watch under the
	// canonical prefix, with how far behind each is.
	List(ctx context.Context, prefix string) ([]api.ClientStatus, error)
}

// WithClients serves the delivery table at {base}/clients?prefix=: which
// instance holds which revision. Without it that page is not found and
// the navigation does not link it.
func WithClients(c Clients) Option { return func(o *options) { o.clients = c } }

// clientsView is the Data of the clients page.
type clientsView struct {
	Prefix  string // as typed
	Clients []clientRow
	// Ask: no prefix was given and the token may not read every key, so
	// the page asks for one.
	Ask bool
}

type clientRow struct {
	api.ClientStatus
	Labels string // k=v, sorted
}

// GET {base}/clients?prefix=P: the clients of P, for a token that may
// read P (without prefix=, every client for a token that may read every
// key, else a form that asks for a prefix).
func (u *ui) clientsPage(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimSpace(r.URL.Query().Get("prefix"))
	if _, given := r.URL.Query()["prefix"]; !given && !u.allows(r, api.PermissionRead, "") {
		// The navigation's link: a token that may not read every key
		// chooses a prefix first.
		u.render(w, r, http.StatusOK, "clients", page{Title: "Clients", Data: clientsView{Ask: true}})
		return
	}
	prefix, err := keyspace.Prefix(raw)
	if err == nil && !u.allows(r, api.PermissionRead, prefix) {
		what := fmt.Sprintf("%q", prefix)
		if prefix == "" {
			what = "every key"
		}
		err = apierror.New(api.CodeForbidden, "token %q may not see the clients of %s: that needs read on it; choose a prefix your token may read",
			principal(r).Name(), what)
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	rev := u.st.Rev()
	list, err := u.opts.clients.List(r.Context(), prefix)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	v := clientsView{Prefix: raw, Clients: make([]clientRow, 0, len(list))}
	for _, c := range list {
		v.Clients = append(v.Clients, clientRow{ClientStatus: c, Labels: labelText(c.Labels)})
	}
	u.render(w, r, http.StatusOK, "clients", page{Title: "Clients", Rev: rev, Data: v})
}
