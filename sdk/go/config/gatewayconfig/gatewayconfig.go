// Package gatewayconfig keeps a gateway configured live from a configd prefix, through the Go
// SDK's watch: its routes and its policy change when their keys do, without a restart.
//
// Under the prefix (for example gateway/), each section is a key of its own, a JSON document:
//
//	gateway/routes   a list of gateway.Route        [{"method": "GET", "path": "/users/{id}", "service": "users", "endpoint": "Users.Get"}]
//	gateway/jwt      policy.JWT                     {"keys": [{"kid": "k1", "alg": "RS256", "pem": "-----BEGIN PUBLIC KEY-----..."}], "audience": "api"}
//	gateway/access   policy.Access                  {"default": "allow", "rules": [{"path": "/admin/", "action": "deny"}]}
//	gateway/limits   policy.Limits                  {"client": {"rate": 100, "burst": 200}, "routes": [{"path": "/search/", "rate": 50, "wait": "200ms"}]}
//
// A missing key is an empty section: no configured route, no authentication, no access rule,
// no rate limit. Members are matched exactly: a member the section does not have (a typo) makes
// the value bad. Keys of other names under the prefix are ignored.
//
// Routes and the policy are applied apart: routes through SetRoutes, the three policy
// sections together through Update, each only when one of its keys changed. A bad value (not
// JSON, not the section's shape, or refused by SetRoutes or Update) is refused with a log line
// naming the key and the revision, and the last good routes or policy stay in force.
package gatewayconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/configd/configd/sdk/go/config"
	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/gateway/policy"
)

// The keys under the prefix.
const (
	KeyRoutes = "routes"
	KeyJWT    = "jwt"
	KeyAccess = "access"
	KeyLimits = "limits"
)

// Routes is what takes the configured routes: a *gateway.Gateway.
type Routes interface {
	SetRoutes([]gateway.Route) error
}

// Policy is what takes the policy: a *policy.Policy.
type Policy interface {
	Update(policy.Config) error
}

// Source is where the configuration is read: a *config.Client.
type Source interface {
	Get(path ...string) config.Value
	Watch(path ...string) (*config.Watcher, error)
}

// Option configures a Live.
type Option func(*Live)

// WithRoutes applies the routes (KeyRoutes) to r.
func WithRoutes(r Routes) Option { return func(l *Live) { l.routes = r } }

// WithPolicy applies the policy (KeyJWT, KeyAccess, KeyLimits) to p.
func WithPolicy(p Policy) Option { return func(l *Live) { l.policy = p } }

// WithLogger sets the logger of applied and refused values; default slog.Default().
func WithLogger(log *slog.Logger) Option { return func(l *Live) { l.log = log } }

// Live keeps a gateway's routes and policy as a configd prefix says, until Close.
type Live struct {
	src    Source
	prefix string
	routes Routes
	policy Policy
	log    *slog.Logger
	w      *config.Watcher
	done   chan struct{}

	// Written by the one goroutine that applies; read by Status and WaitRev.
	mu       sync.Mutex
	seen     int64             // the last revision looked at
	applied  int64             // the last revision applied with nothing refused
	refused  error             // what the revision seen refused, nil when nothing
	lastRaw  map[string][]byte // the raw values of the keys last applied, by key
	progress chan struct{}     // closed and replaced at each revision seen
}

// Start applies what prefix holds in src now, then follows its changes until Close. prefix is
// a path of src ("gateway"; "" when src is a client of that prefix already). A bad value at
// start is refused as later ones are: the routes and policy of the options stay as they were.
// Start fails only when it cannot watch the prefix.
func Start(src Source, prefix string, opts ...Option) (*Live, error) {
	l := &Live{src: src, prefix: strings.Trim(prefix, "/"), log: slog.Default(), done: make(chan struct{}),
		lastRaw: map[string][]byte{}, progress: make(chan struct{})}
	for _, o := range opts {
		o(l)
	}
	w, err := src.Watch(l.prefix)
	if err != nil {
		return nil, fmt.Errorf("gatewayconfig: watch %q: %w", l.prefix, err)
	}
	l.w = w
	v := src.Get(l.prefix)
	l.apply(v.Rev(), v, true)
	go l.follow()
	return l, nil
}

// follow applies each update until the watcher ends.
func (l *Live) follow() {
	defer close(l.done)
	for {
		u, err := l.w.NextUpdate()
		if err != nil {
			if !errors.Is(err, config.ErrStopped) && !errors.Is(err, config.ErrClosed) {
				l.log.Error("gatewayconfig: the watch of the gateway's configuration ended", "prefix", l.prefix, "err", err)
			}
			return
		}
		l.apply(u.Rev, u.Value, false)
	}
}

// Close stops following the prefix; the routes and policy in force stay.
func (l *Live) Close() error {
	l.w.Stop()
	<-l.done
	return nil
}

// Status is what a Live has applied.
type Status struct {
	// Seen is the last revision of configd's store looked at.
	Seen int64
	// Applied is the last revision applied with nothing refused: the routes and the policy
	// in force are that revision's when Applied == Seen.
	Applied int64
	// Refused is why revision Seen was refused, in part or whole; nil when nothing was.
	Refused error
}

// Status returns what l has applied.
func (l *Live) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Status{Seen: l.seen, Applied: l.applied, Refused: l.refused}
}

// WaitRev waits until l has looked at revision rev or a later one (applied it, or refused it)
// and returns its Status then.
func (l *Live) WaitRev(ctx context.Context, rev int64) (Status, error) {
	for {
		l.mu.Lock()
		s, ch := Status{Seen: l.seen, Applied: l.applied, Refused: l.refused}, l.progress
		l.mu.Unlock()
		if s.Seen >= rev {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s, ctx.Err()
		case <-l.done:
			return s, config.ErrStopped
		}
	}
}

// apply applies the sections of v (the prefix at rev) whose keys changed since they were last
// applied (all of them when first).
func (l *Live) apply(rev int64, v config.Value, first bool) {
	raw := sections(v)
	var refused []error
	if l.routes != nil && (first || changed(l.lastRaw, raw, KeyRoutes)) {
		if err := l.applyRoutes(raw[KeyRoutes]); err != nil {
			refused = append(refused, err)
			l.log.Error("gatewayconfig: routes refused, the last good ones stay", "key", l.path(KeyRoutes), "rev", rev, "err", err)
		} else {
			l.lastRaw[KeyRoutes] = raw[KeyRoutes]
			l.log.Info("gatewayconfig: routes applied", "key", l.path(KeyRoutes), "rev", rev)
		}
	}
	if l.policy != nil && (first || changed(l.lastRaw, raw, KeyJWT, KeyAccess, KeyLimits)) {
		if err := l.applyPolicy(raw); err != nil {
			refused = append(refused, err)
			l.log.Error("gatewayconfig: policy refused, the last good one stays", "prefix", l.prefix, "rev", rev, "err", err)
		} else {
			for _, k := range []string{KeyJWT, KeyAccess, KeyLimits} {
				l.lastRaw[k] = raw[k]
			}
			l.log.Info("gatewayconfig: policy applied", "prefix", l.prefix, "rev", rev)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen, l.refused = rev, errors.Join(refused...)
	if l.refused == nil {
		l.applied = rev
	}
	close(l.progress)
	l.progress = make(chan struct{})
}

// path is key's path under the prefix.
func (l *Live) path(key string) string {
	if l.prefix == "" {
		return key
	}
	return l.prefix + "/" + key
}

// sections returns the raw values of the section keys right under the prefix's value v, at
// v's revision (nil for a missing key).
func sections(v config.Value) map[string][]byte {
	raw := map[string][]byte{}
	for _, k := range []string{KeyRoutes, KeyJWT, KeyAccess, KeyLimits} {
		raw[k] = v.Get(k).Bytes()
	}
	return raw
}

// changed reports whether any of keys has another value in now than in last.
func changed(last, now map[string][]byte, keys ...string) bool {
	for _, k := range keys {
		if !bytes.Equal(last[k], now[k]) || (last[k] == nil) != (now[k] == nil) { // a deleted key vs an empty one
			return true
		}
	}
	return false
}

func (l *Live) applyRoutes(b []byte) error {
	var routes []gateway.Route
	if err := policy.Decode(b, &routes); err != nil {
		return fmt.Errorf("%s: %w", l.path(KeyRoutes), err)
	}
	if err := l.routes.SetRoutes(routes); err != nil {
		return fmt.Errorf("%s: %w", l.path(KeyRoutes), err)
	}
	return nil
}

func (l *Live) applyPolicy(raw map[string][]byte) error {
	var c policy.Config
	var errs []error
	// Each section decoded and validated on its own, so that an error names its key.
	for _, s := range []struct {
		key     string
		dst     any
		section func() policy.Config
	}{
		{KeyJWT, &c.JWT, func() policy.Config { return policy.Config{JWT: c.JWT} }},
		{KeyAccess, &c.Access, func() policy.Config { return policy.Config{Access: c.Access} }},
		{KeyLimits, &c.Limits, func() policy.Config { return policy.Config{Limits: c.Limits} }},
	} {
		err := policy.Decode(raw[s.key], s.dst)
		if err == nil {
			err = s.section().Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.path(s.key), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return l.policy.Update(c)
}
