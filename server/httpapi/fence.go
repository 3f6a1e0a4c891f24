package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/core"
)

// fenceParams are the query parameters of a read's fence (readFence).
var fenceParams = []string{api.ParamMinRev, api.ParamConsistent}

// WithReadWait bounds how long a read that names a revision (min_rev=,
// X-Configd-Rev) or asks for consistent=true waits for the store to catch
// up (default core.DefaultReadWait).
func WithReadWait(d time.Duration) Option { return func(o *options) { o.readWait = d } }

// readFence is what r asks of the revision it reads at: min_rev= or the
// X-Configd-Rev request header (the newer of both), and consistent=true.
func readFence(r *http.Request) (core.ReadFence, error) {
	q := r.URL.Query()
	var f core.ReadFence
	var err error
	if f.MinRev, err = revParam(q, api.ParamMinRev); err != nil {
		return f, err
	}
	if h := r.Header.Get(api.HeaderRev); h != "" {
		n, err := strconv.ParseInt(h, 10, 64)
		if err != nil || n < 0 {
			return f, apierror.BadRequest("header %s: %q is not a revision (a whole number >= 0)", api.HeaderRev, apierror.OneLine(h))
		}
		f.MinRev = max(f.MinRev, n)
	}
	f.Consistent, err = boolParam(q, api.ParamConsistent)
	return f, err
}

// awaitFence waits until the store is as new as r asks (readFence).
func (h *handler) awaitFence(r *http.Request) error {
	f, err := readFence(r)
	if err != nil {
		return err
	}
	return f.Await(r.Context(), h.st, h.opts.readWait)
}
