package config

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
)

// Reconnecting: after a failed connection or a broken stream the client
// waits a jittered, exponentially growing delay (half to all of
// backoffMin·2ⁿ, at most backoffMax) and tries the next address. A stream
// that lived healthyAfter resets the delay, so a configd restart is followed
// by a retry within backoffMin.
const (
	backoffMin   = 50 * time.Millisecond
	backoffMax   = 2 * time.Second
	healthyAfter = time.Second
	// keepaliveTime is how long a silent connection waits before it is
	// probed; configd accepts pings every 10 s or more
	// (keepalive.EnforcementPolicy), so a cut network is noticed within
	// keepaliveTime+keepaliveTimeout.
	keepaliveTime    = 30 * time.Second
	keepaliveTimeout = 10 * time.Second
	// maxGroup bounds how many received messages are applied together,
	// with one write of the snapshot file.
	maxGroup = 256
)

// backoff returns the delay before the attempt that follows n failures.
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 16 {
		d = min(backoffMin<<n, backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// run keeps one watch stream open, moving between addresses, until Close
// or a refusal (see isRefusal), which no other address or later attempt
// would answer otherwise.
func (c *Client) run() {
	defer close(c.done)
	failures := 0
	for i := 0; ; i = (i + 1) % len(c.opts.addrs) {
		addr := c.opts.addrs[i]
		began := time.Now()
		created, err := c.connect(addr) // c.session(addr), or through the registry (discovery.go)
		if c.ctx.Err() != nil {
			return
		}
		if isRefusal(err) {
			c.halt(addr, err)
			return
		}
		if created && time.Since(began) >= healthyAfter {
			failures = 0
		}
		c.noteFailure(addr, created, failures, err)
		t := time.NewTimer(backoff(failures))
		failures++
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return
		}
	}
}

func (c *Client) noteFailure(addr string, created bool, failures int, err error) {
	c.mu.Lock()
	c.lastErr = fmt.Errorf("%s: %w", addr, err)
	if !c.synced {
		c.failed[addr] = true
		if len(c.failed) == len(c.opts.addrs) {
			c.once.unreachable.Do(func() { close(c.unreachable) })
		}
	}
	rev := c.Rev()
	c.mu.Unlock()
	switch {
	case created:
		c.log.Warn("watch stream to configd ended; reconnecting", "addr", addr, "rev", rev, "err", err)
	case failures == 0:
		c.log.Warn("cannot reach configd; retrying", "addr", addr, "rev", rev, "err", err)
	default:
		c.log.Debug("cannot reach configd; retrying", "addr", addr, "rev", rev, "err", err)
	}
}

// session is one connection to a configd: the watch streams opened on it
// one after another (a new one after RESYNC).
type session struct {
	c    *Client
	addr string
	// created is set once configd has acknowledged a watch.
	created bool
}

// session connects to addr and applies what its watch streams bring until
// one breaks or the client closes. created reports whether configd
// accepted a watch.
func (c *Client) session(addr string) (created bool, err error) {
	tr, err := c.newTransport(addr)
	if err != nil {
		return false, err
	}
	defer tr.close()
	s := &session{c: c, addr: addr}
	fresh := false
	for {
		// A copy at revision 0 (configd's store was empty) also asks for
		// a snapshot, as the protocol has no other way to say "after
		// revision 0": the changes it missed then come as one update.
		var since int64
		if !fresh {
			since = c.Rev()
		}
		st, err := tr.open(c.ctx, since)
		if err != nil {
			return s.created, err
		}
		act, err := s.pump(st)
		st.Close()
		if err != nil {
			return s.created, err
		}
		fresh = act.fresh
	}
}

// pump applies what st brings, in groups of what has already arrived,
// until the watch must be created again or the stream breaks.
func (s *session) pump(st watchStream) (action, error) {
	for {
		m, err := st.Recv()
		if err != nil {
			return action{}, err
		}
		group := []*configdpb.WatchResponse{m}
		// Take what else has arrived, up to maxGroup; after an error,
		// apply what came before it.
		var streamErr error
		for len(group) < maxGroup && st.Buffered() {
			m, err := st.Recv()
			if err != nil {
				streamErr = err
				break
			}
			group = append(group, m)
		}
		act, err := s.process(group)
		if err != nil {
			return act, err
		}
		if act.recreate {
			return act, nil
		}
		if streamErr != nil {
			return act, streamErr
		}
	}
}

// action is what the session must do after applying a group.
type action struct {
	recreate bool // create the watch again
	fresh    bool // ... from a snapshot
}

// process applies a group of messages: every change in it, then one write
// of the snapshot file, then the new copy is published, then the watchers
// get their updates. Only then does the revision the client resumes from
// move.
func (s *session) process(group []*configdpb.WatchResponse) (act action, err error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.begin()
	for _, m := range group {
		switch m.GetKind() {
		case configdpb.WatchResponse_CREATED:
			s.created = true
			c.watched.Store(&s.addr)
			c.dirty() // report to this configd at once
			c.log.Info("watching configd", "addr", s.addr, "since", p.rev, "configd_rev", m.GetRev())
		case configdpb.WatchResponse_SNAPSHOT:
			c.applySnapshot(p, m)
		case configdpb.WatchResponse_CHANGES:
			c.applyChanges(p, m)
		case configdpb.WatchResponse_PROGRESS:
			p.rev = max(p.rev, m.GetRev())
		case configdpb.WatchResponse_RESYNC:
			c.log.Info("configd cut the watch off for falling behind; resuming", "addr", s.addr, "rev", p.rev)
			act.recreate = true
		case configdpb.WatchResponse_CANCELED:
			switch m.GetCode() {
			case api.CodeBadRevision, api.CodeRevisionGone:
				// configd does not know our revision (another store, or
				// one restored from backup): start over from its state.
				c.log.Warn("configd can't resume the watch from our revision; taking a fresh snapshot",
					"addr", s.addr, "rev", p.rev, "configd_rev", m.GetRev(), "reason", m.GetError())
				act = action{recreate: true, fresh: true}
			default:
				if err = refusal(m.GetCode(), m.GetError()); err == nil {
					err = fmt.Errorf("configd canceled the watch: %s (%s)", m.GetError(), m.GetCode())
				}
			}
		}
		if act.recreate || err != nil {
			// The watch is gone: nothing more of it will come.
			break
		}
	}
	c.commit(p)
	return act, err
}

// pending is a group of changes being applied to a copy of the trie.
type pending struct {
	b        builder
	rev      int64
	revs     []appliedRev
	changed  bool // the content changed (not only the revision)
	snapshot bool // a snapshot from configd was applied
}

// appliedRev is one revision (or snapshot) applied, for the watchers.
type appliedRev struct {
	rev           int64
	actor, origin string
	root          *node // the trie right after it
	changes       []keyChange
}

// begin starts a group on the current copy; called with mu held.
func (c *Client) begin() *pending {
	s := c.state.Load()
	return &pending{b: builder{root: s.root}, rev: s.rev}
}

// nextGen starts a revision: nodes of earlier ones are copied, not changed.
func (c *Client) nextGen(p *pending) {
	c.gen++
	p.b.gen = c.gen
}

// relative is key without the client's prefix; ok is false for a key
// outside the client's scope.
func (c *Client) relative(key string) (string, bool) {
	rel, ok := strings.CutPrefix(key, c.opts.prefix)
	if c.opts.keys != nil {
		_, ok = slices.BinarySearch(c.opts.keys, key)
	}
	return rel, ok && rel != ""
}

func (c *Client) applyChanges(p *pending, m *configdpb.WatchResponse) {
	if m.GetRev() <= p.rev {
		c.log.Debug("skipping a revision already applied", "rev", m.GetRev(), "at", p.rev)
		return
	}
	c.nextGen(p)
	changes := make([]keyChange, 0, len(m.GetEvents()))
	for _, ev := range m.GetEvents() {
		kv := ev.GetKv()
		key, ok := c.relative(kv.GetKey())
		if !ok {
			continue
		}
		if ev.GetType() == configdpb.Event_DELETE {
			c.accept(key)
			p.b.del(key)
			changes = append(changes, keyChange{key: key, deleted: true})
			continue
		}
		e := newEntry(kv.GetValue(), kv.GetContentType(), kv.GetCreateRev(), kv.GetModRev(), kv.GetVersion())
		if !c.validate(key, e, m.GetRev()) {
			continue // the key keeps its last good value
		}
		p.b.put(key, e)
		changes = append(changes, keyChange{key: key})
	}
	p.rev, p.changed = m.GetRev(), true
	p.revs = append(p.revs, appliedRev{rev: m.GetRev(), actor: m.GetActor(), origin: m.GetOrigin(), root: p.b.root, changes: changes})
}

// applySnapshot replaces the whole copy; the watchers hear of the keys
// whose values differ.
func (c *Client) applySnapshot(p *pending, m *configdpb.WatchResponse) {
	c.nextGen(p)
	nb := builder{root: &node{gen: c.gen}, gen: c.gen}
	seen := map[string]bool{}
	for _, ev := range m.GetEvents() {
		kv := ev.GetKv()
		key, ok := c.relative(kv.GetKey())
		if !ok || ev.GetType() == configdpb.Event_DELETE {
			continue
		}
		seen[key] = true
		e := newEntry(kv.GetValue(), kv.GetContentType(), kv.GetCreateRev(), kv.GetModRev(), kv.GetVersion())
		if !c.validate(key, e, kv.GetModRev()) {
			// Keep the last good value, if the key had one.
			if old := lookupKey(p.b.root, key); old != nil && old.e != nil {
				nb.put(key, old.e)
			}
			continue
		}
		nb.put(key, e)
	}
	for key := range c.rejected {
		if !seen[key] {
			c.accept(key) // deleted meanwhile
		}
	}
	changes := diff(p.b.root, nb.root)
	p.b = nb
	p.rev, p.changed, p.snapshot = m.GetRev(), true, true
	p.revs = append(p.revs, appliedRev{rev: m.GetRev(), root: nb.root, changes: changes})
}

// commit publishes a group; called with mu held.
func (c *Client) commit(p *pending) {
	if !p.changed && p.rev == c.state.Load().rev {
		return
	}
	if p.changed && c.opts.snapshot != "" {
		data, err := encodeSnapshot(c.opts.prefix, c.opts.keys, p.rev, p.b.root, time.Now())
		if err == nil {
			err = writeFileAtomic(c.opts.snapshot, data)
		}
		if err != nil {
			// The file keeps an older, consistent copy; the next change
			// tries again.
			c.log.Error("cannot write the snapshot file", "path", c.opts.snapshot, "rev", p.rev, "err", err)
		}
	}
	if p.changed {
		c.dirty() // report the applied revision
	}
	old := c.state.Swap(newState(p.rev, p.b.root))
	for _, r := range p.revs {
		c.deliver(r)
	}
	// WaitRev returns once the watchers have their updates.
	close(old.next)
	if p.snapshot && !c.synced {
		c.synced = true
		c.once.ready.Do(func() { close(c.ready) })
	}
}

// deliver queues r for the watchers whose path it touched.
func (c *Client) deliver(r appliedRev) {
	if len(r.changes) == 0 {
		return
	}
	for w := range c.watchers {
		var chs []Change
		for _, kc := range r.changes {
			if !w.matches(kc.key) {
				continue
			}
			ch := Change{Key: kc.key, Deleted: kc.deleted, Value: Value{rev: r.rev}}
			if !kc.deleted {
				ch.Value.n = lookupKey(r.root, kc.key)
			}
			chs = append(chs, ch)
		}
		if len(chs) > 0 {
			w.push(Update{Rev: r.rev, Actor: r.actor, Origin: r.origin, Changes: chs,
				Value: Value{n: lookup(r.root, w.segs), rev: r.rev}})
		}
	}
}
