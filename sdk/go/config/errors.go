package config

import (
	"errors"
	"fmt"

	"github.com/configd/configd/api"
)

// Errors of the package, checked with errors.Is.
var (
	// ErrStopped is returned by a Watcher's Next and NextUpdate once Stop
	// was called.
	ErrStopped = errors.New("config: watcher stopped")
	// ErrClosed is returned by Watch, and by the Next of its watchers, once
	// the Client is closed.
	ErrClosed = errors.New("config: client closed")
	// ErrUnavailable is wrapped by the error of New when no configd could
	// be reached before the timeout and no snapshot file could stand in.
	ErrUnavailable = errors.New("config: configd unavailable")
	// ErrBadSnapshot is wrapped by the error about a snapshot file that was
	// refused: corrupt (checksum mismatch), of an unknown format, or written
	// by a client that mirrors another prefix.
	ErrBadSnapshot = errors.New("config: snapshot file refused")
	// ErrNotFound is returned by Value.Scan when the path holds no key and
	// no key lies under it.
	ErrNotFound = errors.New("config: no value at this path")
	// ErrUnauthenticated is wrapped by the error of a client that configd
	// refused for its token: none was sent (WithToken, CONFIGD_TOKEN), or
	// configd does not know it or has revoked it. It also wraps the
	// client's own refusal to send a token in clear text to another host.
	// A refusal is not retried: see Client.Err.
	ErrUnauthenticated = errors.New("config: unauthenticated")
	// ErrForbidden is wrapped by the error of a client whose token may not
	// read the client's scope (WithPrefix, WithKeys). A refusal is not
	// retried: see Client.Err.
	ErrForbidden = errors.New("config: forbidden")
)

// refusedError is a refusal of the client's watch that would be the same
// on every retry: configd's answer to the token (unauthenticated,
// forbidden), or the client's refusal to send the token in clear. It
// wraps ErrUnauthenticated or ErrForbidden.
type refusedError struct {
	kind error
	msg  string
}

func (e *refusedError) Error() string { return e.msg }
func (e *refusedError) Unwrap() error { return e.kind }

// refusal is configd's refusal of a watch with the api error code and its
// message, or nil when the code is not a refusal of the token (the watch
// is then retried).
func refusal(code, msg string) error {
	var kind error
	switch code {
	case api.CodeUnauthenticated:
		kind = ErrUnauthenticated
	case api.CodeForbidden:
		kind = ErrForbidden
	default:
		return nil
	}
	return &refusedError{kind: kind, msg: "configd refused the watch: " + msg}
}

// isRefusal reports whether err ends the client rather than being retried.
func isRefusal(err error) bool {
	return errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrForbidden)
}

// plainTokenError is the client's refusal to send its token in clear
// text to host.
func plainTokenError(host string) error {
	return &refusedError{kind: ErrUnauthenticated,
		msg: fmt.Sprintf("config: not sending the token over a plaintext connection to %q: use TLS (WithTLS) or a loopback address", host)}
}
