package httpapi

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/apierror"
)

// DefaultBodyReadTimeout bounds how long reading a request's body may
// take (--body-read-timeout).
const DefaultBodyReadTimeout = time.Minute

// WithBodyReadTimeout bounds how long reading a request's body may take,
// from when the handler starts (default DefaultBodyReadTimeout; 0: no
// bound): a client that sends its body too slowly, or stops halfway, is
// answered 408 request_timeout and its connection closed, instead of
// holding a connection and a handler forever. Requests without a body,
// watches among them, are not bounded.
func WithBodyReadTimeout(d time.Duration) Option {
	return func(o *options) { o.bodyTimeout = d }
}

// errBodyTimeout answers a body that did not arrive in time.
func errBodyTimeout(d time.Duration) *apierror.Error {
	return apierror.New(api.CodeRequestTimeout,
		"the request body did not arrive within %s (--body-read-timeout); nothing was written", d)
}

// bodyDeadline sets a read deadline on the connection of a request that
// has a body, and lifts it once the body is read, so that the connection
// is not cut while the handler works on what it read.
func (h *handler) bodyDeadline(next http.Handler) http.Handler {
	d := h.opts.bodyTimeout
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, timeout: d, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts its connection's read deadline when the body ends,
// and turns the deadline's error into errBodyTimeout.
type deadlineBody struct {
	io.ReadCloser
	timeout time.Duration
	lift    func()
	once    sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.once.Do(b.lift)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline stays: the server's drain of the rest of the body
		// fails at once too, and the connection is closed.
		err = errBodyTimeout(b.timeout)
	}
	return n, err
}
