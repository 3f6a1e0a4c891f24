package config

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// The default client serves the package-level Get and Watch.
var std struct {
	c  atomic.Pointer[Client]
	mu sync.Mutex // serializes its creation
	// err is why it could not be created (a bad option), until Init is
	// called again.
	err error
}

// Init configures the default client, which the package-level Get and
// Watch use, and waits for its first copy of the configuration as New does.
// Call it once, early, before the package-level functions; without it the
// default client is made on first use with no options (CONFIGD_ADDR, the
// whole keyspace, no snapshot file). Calling Init again closes the previous
// default client and ends its watchers.
//
// Unlike New, Init keeps a default client whose configd was unreachable:
// it returns the error (wrapping ErrUnavailable) but the client goes on
// trying in the background, answering Get with values that don't exist
// (so the typed getters return their defaults) until configd answers, and
// its watchers then see the keys appear. Only a bad option leaves no
// default client.
func Init(opts ...Option) error {
	std.mu.Lock()
	defer std.mu.Unlock()
	if old := std.c.Swap(nil); old != nil {
		old.Close()
	}
	_, err := initDefault(opts)
	return err
}

// initDefault makes the default client; called with std.mu held.
func initDefault(opts []Option) (*Client, error) {
	o, err := buildOptions(opts)
	if err != nil {
		std.err = err
		return nil, err
	}
	std.err = nil
	c := newClient(o)
	err = c.start(context.Background())
	if err != nil && !errors.Is(err, ErrUnavailable) {
		c.Close()
		std.err = err
		return nil, err
	}
	std.c.Store(c)
	return c, err
}

// defaultClient returns the default client, making it on first use.
func defaultClient() (*Client, error) {
	if c := std.c.Load(); c != nil {
		return c, nil
	}
	std.mu.Lock()
	defer std.mu.Unlock()
	if c := std.c.Load(); c != nil {
		return c, nil
	}
	if std.err != nil {
		return nil, std.err
	}
	c, err := initDefault(nil)
	if err != nil {
		if c != nil {
			c.log.Warn("the default configd client starts without configuration; it keeps trying", "err", err)
		} else {
			// Nothing to log with but the default logger.
			o, _ := buildOptions(nil)
			o.logger.Error("the default configd client can't be made", "err", err)
		}
	}
	return c, err
}

// Get returns the value at path from the default client (see Client.Get
// and Init). When the default client can't be made, Get returns a Value
// that does not exist, so the typed getters return their defaults. The
// first call waits for the default client's first copy of the
// configuration, at most its timeout.
func Get(path ...string) Value {
	c := std.c.Load()
	if c == nil {
		if c, _ = defaultClient(); c == nil {
			return Value{}
		}
	}
	return c.Get(path...)
}

// Watch returns a Watcher of the key or prefix at path on the default
// client (see Client.Watch and Init), or the error that kept the default
// client from being made.
func Watch(path ...string) (*Watcher, error) {
	c, err := defaultClient()
	if c == nil {
		return nil, err
	}
	return c.Watch(path...)
}
