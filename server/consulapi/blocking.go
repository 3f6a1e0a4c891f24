package consulapi

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/watcher"
)

// Consul's blocking queries: the default and longest wait.
const (
	defaultBlockingWait = 5 * time.Minute
	maxBlockingWait     = 10 * time.Minute
)

// blockingParams parses ?index=N&wait=D: the index a blocking query waits
// past (0: none), and how long it waits, with Consul's jitter of up to
// wait/16 added (default 5 minutes, at most 10).
func blockingParams(q url.Values) (uint64, time.Duration, error) {
	var index uint64
	if q.Has("index") {
		n, set, err := uintParam(q, "index", "index")
		if err != nil || !set {
			return 0, 0, apierror.BadRequest("Invalid index: index=%q is not a whole number >= 0", apierror.OneLine(q.Get("index")))
		}
		index = n
	}
	wait := defaultBlockingWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, apierror.BadRequest("Invalid wait time: wait=%q is not a duration such as 30s or 5m", apierror.OneLine(v))
		}
		wait = d
	}
	wait = min(wait, maxBlockingWait)
	if j := int64(wait / 16); j > 0 {
		wait += time.Duration(rand.Int64N(j))
	}
	return index, wait, nil
}

// block waits, for a blocking query past index, until a revision after it
// touches key (or, for a prefix, a key under Consul's prefix key that the
// token may read), or until
// wait ends; the caller then answers the data as it is. An index of 0, or
// above the store's revision (a client that knew a revision this configd
// has not: it answers at once with the current index, lower, and the
// client starts over from it, as Consul's clients do when an index goes
// backwards), does not wait. A blocking query counts as a watch of its
// identity (the limits the doors share).
func (h *handler) block(r *http.Request, key string, prefix bool, index uint64, wait time.Duration) error {
	if index == 0 || int64(index) > h.st.Rev() {
		return nil
	}
	release, err := h.opts.limits.OpenWatch(r.Context())
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	f := watcher.Filter{Keys: []string{key}}
	if prefix {
		lp, err := listPrefix(key)
		if err != nil {
			return apierror.WithKey(err, key)
		}
		f = watcher.Filter{Prefixes: []string{lp}}
	}
	wt, err := h.hub.Watch(ctx, f, int64(index))
	if err != nil {
		// The hub closing (shutdown) or a revision it has not reached:
		// answer the data as it is.
		return nil
	}
	defer wt.Close()
	for {
		b, err := wt.Next(ctx)
		if err != nil || b.Kind != watcher.KindChanges {
			return nil // the wait ended, the hub closed, or the scope changed wholesale
		}
		for _, ev := range b.Events {
			// A key the token may not read wakes nobody: its listing
			// leaves it out.
			if (ev.Key == key || prefix && strings.HasPrefix(ev.Key, key)) && h.mayRead(r, ev.Key) {
				return nil
			}
		}
	}
}
