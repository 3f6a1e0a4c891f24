package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/configd/configd/api"
)

// Validate makes the client check each new value of key (a path relative
// to the client's prefix, as Get's) with fn before applying it. A value fn
// refuses (an error, or a panic) is not applied: Get, Scan and the
// Watchers keep the key's last good value (or no value, when it never had
// one), and the client reports the rejection to configd with the key, the
// value's revision and fn's message, where configctl clients and the
// metrics show it. The next value fn accepts, or the key's deletion, is
// applied as usual and clears the rejection. A value that does not parse
// the way the service needs is a rejection too: parse it in fn (for
// example with Value.Scan) and return the error.
//
// fn also checks the key's current value at once: a refusal is reported,
// but the value stays, as there is no better one to keep. fn runs on the
// client's stream goroutine, one value at a time, while the copy is being
// updated: it may read Get, but must not call the client's other methods,
// and it delays every update while it runs. Calling Validate again for
// key replaces fn; fn nil removes it.
func (c *Client) Validate(key string, fn func(Value) error) {
	k, err := watchPath([]string{key})
	if err != nil || k == "" {
		c.log.Error("config: Validate: not a key; nothing is checked", "key", key, "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fn == nil {
		delete(c.validators, k)
		return
	}
	if c.validators == nil {
		c.validators = map[string]func(Value) error{}
	}
	c.validators[k] = fn
	s := c.state.Load()
	if n := lookupKey(s.root, k); n != nil && n.e != nil {
		if err := check(fn, Value{n: n, rev: s.rev}); err != nil {
			c.reject(k, n.e.modRev, err)
		}
	}
}

// Validate calls Validate on the default client (see Init), or returns
// the error that kept it from being made.
func Validate(key string, fn func(Value) error) error {
	c, err := defaultClient()
	if c == nil {
		return err
	}
	c.Validate(key, fn)
	return nil
}

// check runs fn on v; a panic is a refusal.
func check(fn func(Value) error, v Value) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(v)
}

// validate reports whether e, the new value of key at rev, may be
// applied, recording or clearing its rejection; called with mu held.
func (c *Client) validate(key string, e *entry, rev int64) bool {
	fn := c.validators[key]
	if fn == nil {
		return true
	}
	if err := check(fn, Value{n: &node{e: e}, rev: rev}); err != nil {
		c.log.Warn("config: a value was rejected by its Validate function; keeping the last good one",
			"key", c.opts.prefix+key, "rev", rev, "err", err)
		c.reject(key, rev, err)
		return false
	}
	c.accept(key)
	return true
}

// reject records a rejection; called with mu held.
func (c *Client) reject(key string, rev int64, err error) {
	msg := err.Error()
	if len(msg) > api.MaxClientRejectError {
		msg = msg[:api.MaxClientRejectError]
	}
	if c.rejected == nil {
		c.rejected = map[string]api.ClientRejection{}
	}
	if _, ok := c.rejected[key]; !ok && len(c.rejected) >= api.MaxClientRejections {
		return // the report carries as many; the log has the others
	}
	c.rejected[key] = api.ClientRejection{Key: c.opts.prefix + key, Rev: rev, Error: msg}
	c.dirty()
}

// accept clears key's rejection; called with mu held.
func (c *Client) accept(key string) {
	if _, ok := c.rejected[key]; ok {
		delete(c.rejected, key)
		c.dirty()
	}
}

// Rejections returns the values the client refuses now (see Validate), by
// key: each key's newest rejected value's revision and error.
func (c *Client) Rejections() []Rejection {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Rejection, 0, len(c.rejected))
	for _, k := range slices.Sorted(maps.Keys(c.rejected)) {
		j := c.rejected[k]
		out = append(out, Rejection{Key: k, Rev: j.Rev, Err: j.Error})
	}
	return out
}

// Rejection is a value the client refuses (see Validate).
type Rejection struct {
	// Key is relative to the client's prefix; Rev is the value's revision.
	Key string
	Rev int64
	// Err is the message of the Validate function's error.
	Err string
}
