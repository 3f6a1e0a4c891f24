package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
)

// maxPageChanges caps the diffs one revision page renders.
const maxPageChanges = 500

// revisionView is the Data of a revision page.
type revisionView struct {
	R       audit.Revision
	Changes []ChangeView
	// Hidden counts changes left out past maxPageChanges.
	Hidden int
	// Prev and Next are the neighbouring revisions (0: none).
	Prev, Next int64
}

// GET {base}/rev/{rev}
func (u *ui) revision(w http.ResponseWriter, r *http.Request) {
	s := chi.URLParam(r, "rev")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		u.notFound(w, r, fmt.Sprintf("%q is not a revision: revisions are numbered from 1.", s))
		return
	}
	cur := u.st.Rev()
	rev, err := u.st.Revision(r.Context(), n)
	if err != nil {
		switch {
		case errors.Is(err, audit.ErrRevisionGone):
			err = apierror.New(api.CodeRevisionGone, "Revision %d does not exist, or is no longer kept (the newest revision is %d).", n, cur)
		case errors.Is(err, audit.ErrFutureRevision):
			err = apierror.New(api.CodeBadRevision, "Revision %d does not exist yet: the newest revision is %d.", n, cur)
		}
		u.fail(w, r, err)
		return
	}
	if may := u.readFilter(r, ""); may != nil {
		// Only the changes the user may read; a revision without any is,
		// for this user, no revision at all.
		if rev = visibleOnly(rev, may); len(rev.Changes) == 0 {
			u.notFound(w, r, fmt.Sprintf("Revision %d does not exist or changed no key your token may read.", n))
			return
		}
	}
	v := revisionView{R: rev}
	views := newChangeViews(u.opts.secret)
	for i, c := range rev.Changes {
		if i == maxPageChanges {
			v.Hidden = len(rev.Changes) - i
			break
		}
		v.Changes = append(v.Changes, views.view(c))
	}
	if n > 1 {
		v.Prev = n - 1
	}
	if n < cur {
		v.Next = n + 1
	}
	u.render(w, r, http.StatusOK, "revision", page{Title: fmt.Sprintf("Revision %d", n), Rev: cur, Data: v})
}
