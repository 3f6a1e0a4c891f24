// Package rollout holds what every part of configd agrees on about a
// rollout (docs/rollouts.md): its record, its steps, and who is in them.
//
// A rollout sends a change of some keys (its Changes) to a subset of the
// clients first. The store's own values of those keys stay as they were
// (the old values) while the rollout goes on; the new values live in the
// rollout's record, a key of the store (keyspace.RolloutKey). A client in
// the current step sees the new values, every other client the old ones;
// both see every other change as usual. Promote widens the step, complete
// writes the new values to the store for everyone, abort puts the clients
// in the step back on the old values.
//
// Each action on a rollout is a revision that replaces its record, and
// each version of the record says which phase it left (From) as well as
// the one it is in: so the watch hub can tell, from that one revision,
// whether a client joins the step (it is sent the new values) or leaves it
// (it is sent the old ones), live or replaying history, without keeping
// any state of its own.
//
// Membership is a function of what a client declares (Identity): the
// labels a step selects, and a hash of its instance name that a
// percentage step compares. It is sticky (an instance is always in the
// same bucket) and only grows while the rollout goes on.
package rollout

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The states of a rollout.
const (
	// StateActive: clients in the current step see the new values; the
	// step advances after its bake time, or on promote.
	StateActive = "active"
	// StatePaused: as active, but the step does not advance by itself.
	StatePaused = "paused"
	// StateComplete: the new values were written to the store (everyone
	// sees them); the record is history.
	StateComplete = "complete"
	// StateAborted: every client is back on the old values.
	StateAborted = "aborted"
)

// Running reports whether state keeps clients in steps (active or paused).
func Running(state string) bool { return state == StateActive || state == StatePaused }

// Identity is what a client declares about itself on its watch: its
// instance name (stable across restarts, never an IP) and its labels.
type Identity struct {
	Instance string
	Labels   map[string]string
}

// Step is one step of a rollout: the clients whose labels match every
// one of Selector's, or the Percent (0 < Percent <= 100) of instances
// whose Bucket is below it. A step is one or the other.
type Step struct {
	Selector map[string]string `json:"selector,omitempty"`
	Percent  float64           `json:"percent,omitempty"`
}

// String is the step as ParseStep reads it: "zone=eu-1,tier=web" or
// "10%".
func (s Step) String() string {
	if len(s.Selector) == 0 {
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	}
	keys := slices.Sorted(maps.Keys(s.Selector))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + s.Selector[k]
	}
	return strings.Join(parts, ",")
}

// ParseStep reads a step: "10%" (a percentage of instances, above 0 and
// at most 100) or "key=value[,key=value...]" (a label selector).
func ParseStep(s string) (Step, error) {
	s = strings.TrimSpace(s)
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil {
			return Step{}, fmt.Errorf("step %q: not a percentage", s)
		}
		st := Step{Percent: p}
		return st, st.Check()
	}
	sel := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return Step{}, fmt.Errorf("step %q: want a percentage (10%%) or labels (key=value,key=value)", s)
		}
		sel[k] = v
	}
	st := Step{Selector: sel}
	return st, st.Check()
}

// Check reports what is wrong with s, or nil.
func (s Step) Check() error {
	switch {
	case len(s.Selector) > 0 && s.Percent != 0:
		return fmt.Errorf("step %s: a step selects by labels or by percentage, not both", s)
	case len(s.Selector) == 0 && (s.Percent <= 0 || s.Percent > 100 || s.Percent != s.Percent):
		return fmt.Errorf("step %s: a percentage must be above 0 and at most 100", s)
	}
	for k := range s.Selector {
		if k == "" {
			return fmt.Errorf("step %s: a label needs a name", s)
		}
	}
	return nil
}

// Match reports whether a client with identity id is in step s.
func (s Step) Match(id Identity) bool {
	if len(s.Selector) > 0 {
		for k, v := range s.Selector {
			if got, ok := id.Labels[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
	if s.Percent >= 100 {
		return true
	}
	return id.Instance != "" && Bucket(id.Instance) < s.Percent
}

// Bucket places an instance name in [0, 100): a percentage step of p
// holds the instances whose bucket is below p. It is FNV-1a of the name,
// so that an instance is in the same bucket in every rollout, on every
// replica and after every restart: the 10% of one rollout are the first
// of the 50% of the next.
func Bucket(instance string) float64 {
	h := fnv.New64a()
	h.Write([]byte(instance))
	return float64(h.Sum64()%10000) / 100
}

// Value is a key's value on one side of a rollout.
type Value struct {
	Value       []byte `json:"value,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Secret      bool   `json:"secret,omitempty"`
	CreateRev   int64  `json:"create_rev,omitempty"`
	ModRev      int64  `json:"mod_rev,omitempty"`
	Version     int64  `json:"version,omitempty"`
}

// Change is one key a rollout changes: its value before (Old, nil when
// the key did not exist) and after (New, nil when the rollout deletes
// it).
type Change struct {
	Key string `json:"key"`
	Old *Value `json:"old,omitempty"`
	New *Value `json:"new,omitempty"`
}

// Phase is where a rollout stands: its state and its current step (an
// index into Steps).
type Phase struct {
	State string `json:"state"`
	Step  int    `json:"step"`
}

// Note is one action on a rollout, in its log.
type Note struct {
	Actor  string    `json:"actor"`
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Text   string    `json:"text,omitempty"`
	Rev    int64     `json:"rev,omitempty"`
}

// Rollout is a rollout's record, as stored at keyspace.RolloutKey(ID).
type Rollout struct {
	ID int64 `json:"id"`
	// Scope is the canonical prefix every changed key is under.
	Scope  string    `json:"scope"`
	Author string    `json:"author"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
	// Request is the change request the rollout publishes (0: none).
	Request int64 `json:"request,omitempty"`
	// Base is the revision the old values were read at.
	Base    int64    `json:"base"`
	Changes []Change `json:"changes"`
	Steps   []Step   `json:"steps"`
	// Bake is how long a step runs before it advances by itself; 0: only
	// promote advances it.
	Bake time.Duration `json:"bake,omitempty"`
	// MaxErrors is the percentage of the step's clients that may reject
	// the new values for the step to advance (0: none may).
	MaxErrors float64 `json:"max_errors,omitempty"`
	// AbortOnErrors, when above 0, aborts the rollout when more than this
	// percentage of the step's clients reject the new values.
	AbortOnErrors float64 `json:"abort_on_errors,omitempty"`
	// AbortQuery, when set, is a PromQL expression: the rollout aborts
	// when it returns a result (a non-empty vector, or a true scalar) from
	// the Prometheus at Prometheus.
	AbortQuery string `json:"abort_query,omitempty"`
	Prometheus string `json:"prometheus,omitempty"`

	Phase
	// StepStarted is when the current step began (its bake runs from it).
	StepStarted time.Time `json:"step_started"`
	// StepRevs are the revisions that began the steps before the current
	// one and, once an action followed it, the current one's (StepRev).
	// An action cannot know its own revision before it commits: the next
	// action records it.
	StepRevs []int64 `json:"step_revs,omitempty"`
	// From is the phase this version of the record left: the action that
	// wrote it moved the rollout from From to Phase. A new rollout's From
	// has no state.
	From Phase  `json:"from"`
	Log  []Note `json:"log,omitempty"`
}

// In reports whether a client with identity id sees the new values now.
func (r *Rollout) In(id Identity) bool { return r.in(r.Phase, id) }

// WasIn reports whether a client with identity id saw the new values
// before the action that wrote this version of the record.
func (r *Rollout) WasIn(id Identity) bool { return r.in(r.From, id) }

func (r *Rollout) in(p Phase, id Identity) bool {
	if !Running(p.State) {
		return false
	}
	for i := 0; i <= p.Step && i < len(r.Steps); i++ {
		if r.Steps[i].Match(id) {
			return true
		}
	}
	return false
}

// StepRev returns the revision that began step i (at most the current
// one) of this version of the record, whose mod_rev is modRev.
func (r *Rollout) StepRev(i int, modRev int64) int64 {
	if i < len(r.StepRevs) {
		return r.StepRevs[i]
	}
	return modRev
}

// Joined returns the first step (up to the current one) that holds a
// client with identity id, and false when none does.
func (r *Rollout) Joined(id Identity) (int, bool) {
	for i := 0; i <= r.Step && i < len(r.Steps); i++ {
		if r.Steps[i].Match(id) {
			return i, true
		}
	}
	return 0, false
}

// Keys returns the keys the rollout changes.
func (r *Rollout) Keys() []string {
	keys := make([]string, len(r.Changes))
	for i, c := range r.Changes {
		keys[i] = c.Key
	}
	return keys
}

// Check reports what is wrong with r's definition, or nil: steps, limits
// and changes (not the keys' own rules, which the door checks).
func (r *Rollout) Check() error {
	if len(r.Steps) == 0 {
		return fmt.Errorf("a rollout needs at least one step")
	}
	for _, s := range r.Steps {
		if err := s.Check(); err != nil {
			return err
		}
	}
	if len(r.Changes) == 0 {
		return fmt.Errorf("a rollout needs at least one change")
	}
	seen := map[string]bool{}
	for _, c := range r.Changes {
		if seen[c.Key] {
			return fmt.Errorf("key %q is changed twice", c.Key)
		}
		seen[c.Key] = true
	}
	for name, p := range map[string]float64{"max errors": r.MaxErrors, "abort on errors": r.AbortOnErrors} {
		if p < 0 || p > 100 || p != p {
			return fmt.Errorf("%s: %v%% is not a percentage from 0 to 100", name, p)
		}
	}
	if r.Bake < 0 {
		return fmt.Errorf("bake: %s is negative", r.Bake)
	}
	if (r.AbortQuery == "") != (r.Prometheus == "") {
		return fmt.Errorf("an abort query needs a Prometheus address, and one without the other means nothing")
	}
	return nil
}

// Decode reads a rollout's record.
func Decode(b []byte) (*Rollout, error) {
	var r Rollout
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("rollout record: %w", err)
	}
	return &r, nil
}

// Encode writes r as its record.
func (r *Rollout) Encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("rollout: encode: %v", err)) // plain types only: cannot fail
	}
	return b
}
