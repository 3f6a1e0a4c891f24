// Package follow hands the adapters the changes to an SDK client's scope
// after a revision they have already read, through the SDK's watch.
package follow

import (
	"errors"

	"github.com/configd/configd/sdk/go/config"
)

// Watcher follows a client's scope from a revision.
type Watcher struct {
	c       *config.Client
	w       *config.Watcher
	rev     int64 // the revision last returned (or read before)
	started bool  // Next has checked for a change made before the watch
}

// New follows c's scope through w, one of c's watchers of its whole scope,
// from rev, the revision the adapter last read.
func New(c *config.Client, w *config.Watcher, rev int64) *Watcher {
	return &Watcher{c: c, w: w, rev: rev}
}

// Next blocks until the scope is past the last revision returned and
// returns its update. The first call returns at once the client's value
// when it changed after rev: the SDK watcher, started after that change,
// never reports it. The error is the SDK watcher's; Ended tells its end.
func (w *Watcher) Next() (config.Update, error) {
	if !w.started {
		w.started = true
		if v := w.c.Get(); v.Rev() > w.rev {
			w.rev = v.Rev()
			return config.Update{Rev: v.Rev(), Value: v}, nil
		}
	}
	for {
		u, err := w.w.NextUpdate()
		if err != nil {
			return u, err
		}
		if u.Rev <= w.rev {
			continue // already returned with the catch-up read
		}
		w.rev = u.Rev
		return u, nil
	}
}

// Stop ends the SDK watcher: Next returns an error for which Ended is true.
func (w *Watcher) Stop() { w.w.Stop() }

// Ended reports whether err is the end of the watch (Stop, or the client's
// Close) rather than a failure.
func Ended(err error) bool {
	return errors.Is(err, config.ErrStopped) || errors.Is(err, config.ErrClosed)
}
