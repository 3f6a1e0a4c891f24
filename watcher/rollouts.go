package watcher

import (
	"maps"
	"slices"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/rollout"
)

// Rollouts (docs/rollouts.md, package rollout). While a rollout runs, the
// store holds its keys' old values and its record the new ones; a watcher
// whose client is in the rollout's current step is shown the new values.
// The hub keeps every watcher's view ordered, gap-free and resumable as
// it is without rollouts:
//
//   - a revision that writes a rollout's record (start, promote, pause,
//     abort, complete) moves some clients into the step or out of it. The
//     record says the phase it left (From) and the one it is in, so the
//     hub tells from that revision alone, live or replayed from history,
//     which watchers join (they are sent the new values at that revision)
//     and which leave on an abort (they are sent the old values back);
//   - a watcher that starts from a snapshot while a rollout runs gets its
//     scope with the step's values in place, when its client is in it;
//   - any other revision is built once per scope and shared, as always:
//     a rollout costs the fan-out of unrelated writes nothing but a look
//     at each change's key.
//
// A client is who its watch says it is (WithIdentity): a client that
// declares false labels changes what it is sent, and nothing else.

// WithIdentity says which client the watch is for: rollouts send it the
// new values of their keys when it is in their current step.
func WithIdentity(id rollout.Identity) WatchOption { return func(w *Watcher) { w.id = id } }

// WithRollouts gives the hub the rollouts running at the revision it
// starts at (the records under keyspace.RolloutsPrefix); it follows them
// from the revisions it is published after that.
func WithRollouts(rs []*rollout.Rollout) Option {
	return func(h *Hub) {
		for _, r := range rs {
			if rollout.Running(r.State) {
				h.running[r.ID] = r
			}
		}
	}
}

// rolloutsOf returns the rollouts whose records r writes, decoded, or nil
// when it writes none (every revision but a rollout's action).
func rolloutsOf(r audit.Revision) []*rollout.Rollout {
	var out []*rollout.Rollout
	for _, c := range r.Changes {
		if !keyspace.IsRollout(c.Key) || c.New == nil {
			continue
		}
		ro, err := rollout.Decode(c.New.Value)
		if err != nil {
			continue // not a record the rollouts' Book wrote: moves no one
		}
		out = append(out, ro)
	}
	return out
}

// track keeps h.running up to date with the records r's revision wrote;
// called with mu held.
func (h *Hub) track(rs []*rollout.Rollout) {
	for _, r := range rs {
		if rollout.Running(r.State) {
			h.running[r.ID] = r
		} else {
			delete(h.running, r.ID)
		}
	}
}

// moves returns the events that the revision rev, which wrote the
// records rs, sends the client id under f beyond the revision's own
// changes: the new values of the keys of each rollout it joins, the old
// values of those of each rollout it leaves by an abort. A rollout that
// completes writes its new values to the store in the same revision, so
// its clients need nothing more.
func moves(rs []*rollout.Rollout, id rollout.Identity, f Filter, rev int64) []Event {
	var out []Event
	for _, r := range rs {
		in, was := r.In(id), r.WasIn(id)
		switch {
		case in && !was:
			for _, c := range r.Changes {
				if f.Match(c.Key) {
					out = append(out, newEvent(c, rev))
				}
			}
		case was && !in && r.State == rollout.StateAborted:
			for _, c := range r.Changes {
				if f.Match(c.Key) {
					out = append(out, oldEvent(c))
				}
			}
		}
	}
	return out
}

// newEvent is the event that shows c's new value, at revision rev.
func newEvent(c rollout.Change, rev int64) Event {
	if c.New == nil {
		return Event{Key: c.Key, Type: audit.OpDelete}
	}
	e := Event{Key: c.Key, Type: audit.OpPut, Value: c.New.Value, ContentType: c.New.ContentType, Secret: c.New.Secret,
		CreateRev: rev, ModRev: rev, Version: 1}
	if c.Old != nil {
		e.CreateRev, e.Version = c.Old.CreateRev, c.Old.Version+1
	}
	return e
}

// oldEvent is the event that shows c's old value again.
func oldEvent(c rollout.Change) Event {
	if c.Old == nil {
		return Event{Key: c.Key, Type: audit.OpDelete}
	}
	return Event{Key: c.Key, Type: audit.OpPut, Value: c.Old.Value, ContentType: c.Old.ContentType, Secret: c.Old.Secret,
		CreateRev: c.Old.CreateRev, ModRev: c.Old.ModRev, Version: c.Old.Version}
}

// batchForWatcher is batchFor(r, f) with the moves of w's client: when r
// writes rollouts' records (rs), w may get a batch of its own.
func batchForWatcher(r audit.Revision, rs []*rollout.Rollout, f Filter, w *Watcher) (Batch, bool) {
	b, ok := batchFor(r, f)
	if len(rs) == 0 {
		return b, ok
	}
	extra := moves(rs, w.id, f, r.Rev)
	if len(extra) == 0 {
		return b, ok
	}
	// The same batch as Hub.publishMoves sends live.
	return Batch{Kind: KindChanges, Rev: r.Rev, Actor: r.Actor, Origin: r.Origin, Time: r.Time,
		Events: slices.Concat(b.Events, extra)}, true
}

// inStep returns the running rollouts (of h.running) that show w's client
// under f new values; called with mu held.
func (h *Hub) inStep(f Filter, id rollout.Identity) []*rollout.Rollout {
	var out []*rollout.Rollout
	for _, r := range h.running {
		if !r.In(id) {
			continue
		}
		if slices.ContainsFunc(r.Changes, func(c rollout.Change) bool { return f.Match(c.Key) }) {
			out = append(out, r)
		}
	}
	return out
}

// overlay returns snap with the new values of rs's keys under f in place
// of the store's: the snapshot of a client in their steps.
func overlay(snap Batch, rs []*rollout.Rollout, f Filter) Batch {
	if len(rs) == 0 {
		return snap
	}
	set := map[string]*rollout.Change{}
	for _, r := range rs {
		for i := range r.Changes {
			if c := &r.Changes[i]; f.Match(c.Key) {
				set[c.Key] = c
			}
		}
	}
	events := make([]Event, 0, len(snap.Events)+len(set))
	for _, e := range snap.Events {
		c, ok := set[e.Key]
		if !ok {
			events = append(events, e)
			continue
		}
		delete(set, e.Key)
		if ne := newEvent(*c, snap.Rev); ne.Type == audit.OpPut {
			ne.CreateRev, ne.ModRev = e.CreateRev, snap.Rev
			events = append(events, ne)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(set)) { // keys the rollouts create
		if ne := newEvent(*set[k], snap.Rev); ne.Type == audit.OpPut {
			events = append(events, ne)
		}
	}
	return Batch{Kind: KindSnapshot, Rev: snap.Rev, Events: events}
}
