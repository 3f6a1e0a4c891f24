package httpapi

import (
	"net/http"
	"time"

	"github.com/configd/configd/server/authz"
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

// bodyDeadline applies the body read timeout (authz.BodyDeadline, the
// rule every HTTP door shares).
func (h *handler) bodyDeadline(next http.Handler) http.Handler {
	return authz.BodyDeadline(h.opts.bodyTimeout)(next)
}
