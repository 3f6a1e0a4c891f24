package authz

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

// BodyDeadline bounds how long reading a request's body may take, from
// when the handler starts (--body-read-timeout; d <= 0: no bound), for
// every HTTP door: a client that sends its body too slowly, or stops
// halfway, gets an *apierror.Error from its body's Read (408
// request_timeout, for the handler to answer) and its connection closed, instead of
// holding a connection and a handler forever. Requests without a body,
// watches and blocking queries among them, are not bounded, and the
// deadline is lifted once the body is read, so that the connection is not
// cut while the handler works on what it read.
func BodyDeadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
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
}

// errBodyTimeout answers a body that did not arrive in time.
func errBodyTimeout(d time.Duration) *apierror.Error {
	return apierror.New(api.CodeRequestTimeout,
		"the request body did not arrive within %s (--body-read-timeout); nothing was written", d)
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
