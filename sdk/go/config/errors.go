package config

import "errors"

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
)
