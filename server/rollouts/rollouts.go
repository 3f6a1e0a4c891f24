// Package rollouts is configd's rollouts (docs/rollouts.md): a change
// request published to a subset of the clients first, in steps (by the
// labels clients declare, or a sticky percentage of their instances),
// promoted, paused, aborted or completed, by hand or by Driver.
//
// A rollout is a key of the store (keyspace.RolloutKey), its record
// (rollout.Rollout), which each action replaces with a compare-and-set:
// every action is one revision, with its actor and reason, replicated and
// backed up as every key is, and two actions racing on one rollout (two
// replicas' drivers, a person and a driver) never lose one another. The
// store's values of the rollout's keys stay the old ones while it runs;
// complete writes the new ones, with the record, in one revision.
//
// The keys of the running rollouts are indexed in one key
// (keyspace.RolloutsActiveKey), which start, complete and abort update
// with a compare-and-set too: so two rollouts never hold one key, and
// Guard refuses a direct write of one.
//
// Who may do what (grants) is the door's to check; Book checks the rules
// that hold whoever asks.
package rollouts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/server/requests"
)

// The errors of the rules Book and Guard check. Each error they return
// wraps one of these, or one of requests' (ErrStale) or audit's
// (ErrNotFound: no such rollout; ErrBadRequest: a bad plan; ErrConflict:
// an action on a finished rollout; ErrOwned: a key a source above the
// store defines).
var (
	// ErrRolloutConflict: another running rollout changes a key of the
	// new one.
	ErrRolloutConflict = errors.New("another rollout changes the key")
	// ErrEmptySelection: the first step holds none of the connected
	// clients that watch the rollout's keys.
	ErrEmptySelection = errors.New("the first step selects no client")
	// ErrRolloutActive: a direct write or rollback changes a key of a
	// running rollout.
	ErrRolloutActive = errors.New("the key is in a running rollout")
)

// Origin is the origin of a rollout's revisions.
const Origin = "rollout"

// Store is what Book needs of the store: audit.Store.
type Store interface {
	requests.Store
	// Stack and Layers tell a key that a source above the store defines
	// (the store refuses to change it).
	Stack(ctx context.Context, key string) ([]audit.LayerEntry, error)
	Layers() []string
}

var _ Store = (*audit.Store)(nil)

// Requests is what Book needs of the change requests: requests.Book.
type Requests interface {
	Ready(ctx context.Context, id int64) (requests.View, error)
	StaleOr(r requests.Request, err error) error
	Published(ctx context.Context, id int64, actor string, rev, rollout int64) (requests.Request, error)
}

var _ Requests = (*requests.Book)(nil)

// Record is a rollout's record and its mod_rev: the revision of its last
// action.
type Record struct {
	*rollout.Rollout
	Rev int64
}

// Book keeps the rollouts of a store.
type Book struct {
	st   Store
	reqs Requests
	now  func() time.Time
}

// Option configures New.
type Option func(*Book)

// WithClock sets the clock of the log's notes and of the steps' start
// (default time.Now).
func WithClock(now func() time.Time) Option { return func(b *Book) { b.now = now } }

// New returns the book of st's rollouts, which publish reqs' requests.
func New(st Store, reqs Requests, opts ...Option) *Book {
	b := &Book{st: st, reqs: reqs, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	return b
}

// maxRetries bounds the compare-and-set loop of an action that keeps
// losing to other actions on the same record or the index.
const maxRetries = 8

// own is ctx for the writes of the book: the door checked the caller's
// grants for the action (Driver has no caller), so a replica's commit
// must not check them again against configd's own keys.
func own(ctx context.Context) context.Context { return audit.WithAuthorization(ctx, nil) }

// Plan is what a rollout is started with.
type Plan struct {
	// Request is the change request the rollout publishes: it must be
	// publishable (requests.Book.Ready).
	Request int64
	// Steps are the steps, the first one first.
	Steps         []rollout.Step
	Bake          time.Duration
	MaxErrors     float64
	AbortOnErrors float64
	AbortQuery    string
	Prometheus    string
	// AllowEmpty starts the rollout even when its first step holds none of
	// Clients.
	AllowEmpty bool
	Actor      string
	// Origin is the origin of the start's revision (default Origin).
	Origin string
	Reason string
	// Clients are the clients connected now (every replica's).
	Clients []api.ClientStatus
}

// Start starts the rollout of p.Request in one revision: its record, the
// index of the running rollouts, and conditions on the keys it changes
// (a key written since the request's base refuses it as stale, and one
// that a source above the store defines as owned); then marks the request
// published by that revision.
func (b *Book) Start(ctx context.Context, p Plan) (Record, error) {
	r := &rollout.Rollout{Author: p.Actor, Reason: p.Reason, Steps: p.Steps, Bake: p.Bake,
		MaxErrors: p.MaxErrors, AbortOnErrors: p.AbortOnErrors, AbortQuery: p.AbortQuery, Prometheus: p.Prometheus,
		Request: p.Request, Phase: rollout.Phase{State: rollout.StateActive}}
	r.Changes = []rollout.Change{{Key: "-"}} // checked below, with the request's
	if err := r.Check(); err != nil {
		return Record{}, requests.Refuse(audit.ErrBadRequest, "rollout: %v", err)
	}
	v, err := b.reqs.Ready(ctx, p.Request)
	if err != nil {
		return Record{}, err
	}
	rq := v.Request
	r.Scope = rq.Scope
	if r.Reason == "" {
		r.Reason = rq.Reason
	}
	r.Base = b.st.Rev()
	r.Changes = r.Changes[:0]
	var conds []audit.Op
	for _, o := range rq.Ops {
		c := rollout.Change{Key: o.Key}
		if !o.Delete {
			c.New = &rollout.Value{Value: o.Value, ContentType: o.ContentType, Secret: o.Secret}
		}
		cur, err := b.st.Get(ctx, o.Key)
		switch {
		case errors.Is(err, audit.ErrNotFound):
		case err != nil:
			return Record{}, err
		default:
			c.Old = &rollout.Value{Value: cur.Value, ContentType: cur.ContentType, Secret: cur.Secret,
				CreateRev: cur.CreateRev, ModRev: cur.ModRev, Version: cur.Version}
		}
		if modRev(c.Old) != v.ModRev(o.Key) {
			return Record{}, b.reqs.StaleOr(rq, &audit.ConflictError{Key: o.Key})
		}
		cond, err := b.condition(ctx, c.Old, o.Key)
		if err != nil {
			return Record{}, err
		}
		if cond != nil {
			conds = append(conds, *cond)
		}
		r.Changes = append(r.Changes, c)
	}
	if err := r.Check(); err != nil {
		return Record{}, requests.Refuse(audit.ErrBadRequest, "rollout: %v", err)
	}
	if !p.AllowEmpty {
		if err := selects(r, p.Clients); err != nil {
			return Record{}, err
		}
	}
	for try := 0; ; try++ {
		idx, idxRev, err := b.index(ctx)
		if err != nil {
			return Record{}, err
		}
		for _, k := range r.Keys() {
			if other, ok := idx[k]; ok {
				return Record{}, requests.Refuse(ErrRolloutConflict, "key %s is in running rollout %d: "+
					"complete or abort it first (configctl rollout show %d)", k, other, other)
			}
		}
		ids, err := b.ids(ctx)
		if err != nil {
			return Record{}, err
		}
		r.ID = 1
		if len(ids) > 0 {
			r.ID = slices.Max(ids) + 1
		}
		now := b.now().UTC()
		r.Time, r.StepStarted = now, now
		r.Log = []rollout.Note{{Actor: p.Actor, Time: now, Action: "start",
			Text: fmt.Sprintf("request %d to %s, then %s", rq.ID, r.Steps[0], strings.Join(stepNames(r.Steps[1:]), ", "))}}
		if len(r.Steps) == 1 {
			r.Log[0].Text = fmt.Sprintf("request %d to %s", rq.ID, r.Steps[0])
		}
		for _, k := range r.Keys() {
			idx[k] = r.ID
		}
		origin := p.Origin
		if origin == "" {
			origin = Origin
		}
		txn := audit.Txn{Actor: p.Actor, Origin: origin, Reason: fmt.Sprintf("rollout %d: start request %d", r.ID, rq.ID),
			Ops: append([]audit.Op{recordOp(r, 0), indexOp(idx, idxRev)}, conds...)}
		if r.Reason != "" {
			txn.Reason += ": " + r.Reason
		}
		rev, err := b.st.Commit(own(ctx), txn)
		var ce *audit.ConflictError
		if errors.As(err, &ce) && (ce.Key == keyspace.RolloutsActiveKey || keyspace.IsRollout(ce.Key)) && try < maxRetries {
			continue // another rollout started, or finished, meanwhile
		}
		if err != nil {
			return Record{}, b.reqs.StaleOr(rq, err)
		}
		if _, err := b.reqs.Published(ctx, rq.ID, p.Actor, rev.Rev, r.ID); err != nil {
			return Record{}, fmt.Errorf("rollout %d started, but request %d could not be marked published: %w", r.ID, rq.ID, err)
		}
		return Record{Rollout: r, Rev: rev.Rev}, nil
	}
}

func stepNames(steps []rollout.Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.String()
	}
	return out
}

func modRev(v *rollout.Value) int64 {
	if v == nil {
		return 0
	}
	return v.ModRev
}

// condition returns an op that changes nothing but fails the start's
// commit when key moved from old (or, for a key a source above the store
// defines, makes the store refuse it as owned); nil for a key whose value
// a source below the store gives, which the store layer must not copy.
func (b *Book) condition(ctx context.Context, old *rollout.Value, key string) (*audit.Op, error) {
	if old == nil {
		op := audit.Delete(key).WithModRev(0)
		return &op, nil
	}
	stack, err := b.st.Stack(ctx, key)
	if err != nil {
		return nil, err
	}
	layers := b.st.Layers()
	store := slices.Index(layers, audit.StoreLayer)
	for _, e := range stack {
		if e.Effective && slices.Index(layers, e.Layer) < store {
			return nil, nil
		}
	}
	op := audit.Put(key, old.Value, old.ContentType).WithModRev(old.ModRev)
	op.Secret = old.Secret
	return &op, nil
}

// selects refuses (ErrEmptySelection) a rollout whose first step holds
// none of the clients that watch one of its keys.
func selects(r *rollout.Rollout, clients []api.ClientStatus) error {
	watching := Watching(r, clients)
	for _, c := range watching {
		if r.Steps[0].Match(identity(c)) {
			return nil
		}
	}
	return requests.Refuse(ErrEmptySelection, "the first step (%s) selects none of the %d connected client(s) that watch a key the rollout changes: "+
		"check the step, or start it anyway with --allow-empty (clients that connect later join it)", r.Steps[0], len(watching))
}

// Watching returns the clients that watch a key r changes.
func Watching(r *rollout.Rollout, clients []api.ClientStatus) []api.ClientStatus {
	var out []api.ClientStatus
	for _, c := range clients {
		if slices.ContainsFunc(c.Prefixes, func(w string) bool {
			return slices.ContainsFunc(r.Changes, func(ch rollout.Change) bool { return keyspace.Overlaps(w, ch.Key) })
		}) {
			out = append(out, c)
		}
	}
	return out
}

func identity(c api.ClientStatus) rollout.Identity {
	return rollout.Identity{Instance: c.Instance, Labels: c.Labels}
}

// recordOp writes r's record if its mod_rev is ifModRev (0: a new one).
// A record that holds a secret's value is a secret.
func recordOp(r *rollout.Rollout, ifModRev int64) audit.Op {
	op := audit.Put(keyspace.RolloutKey(r.ID), r.Encode(), "application/json").WithModRev(ifModRev)
	for _, c := range r.Changes {
		op.Secret = op.Secret || c.Old != nil && c.Old.Secret || c.New != nil && c.New.Secret
	}
	return op
}

// index returns the index of the running rollouts (key → rollout id) and
// its mod_rev (0: none).
func (b *Book) index(ctx context.Context) (map[string]int64, int64, error) {
	return readIndex(ctx, b.st)
}

func readIndex(ctx context.Context, st requests.Getter) (map[string]int64, int64, error) {
	kv, err := st.Get(ctx, keyspace.RolloutsActiveKey)
	if errors.Is(err, audit.ErrNotFound) {
		return map[string]int64{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	idx, err := parseIndex(kv.Value)
	return idx, kv.ModRev, err
}

func parseIndex(doc []byte) (map[string]int64, error) {
	idx := map[string]int64{}
	if err := json.Unmarshal(doc, &idx); err != nil {
		return nil, fmt.Errorf("%s: the index of running rollouts does not parse: %w", keyspace.RolloutsActiveKey, err)
	}
	return idx, nil
}

// indexOp writes idx if the index's mod_rev is ifModRev; an empty index
// is deleted.
func indexOp(idx map[string]int64, ifModRev int64) audit.Op {
	if len(idx) == 0 {
		return audit.Delete(keyspace.RolloutsActiveKey).WithModRev(ifModRev)
	}
	doc, err := json.Marshal(idx)
	if err != nil {
		panic(fmt.Sprintf("rollouts: encode the index: %v", err)) // a map of strings to ints
	}
	return audit.Put(keyspace.RolloutsActiveKey, doc, "application/json").WithModRev(ifModRev)
}

// ids returns the ids of every rollout.
func (b *Book) ids(ctx context.Context) ([]int64, error) {
	kvs, _, err := b.st.List(ctx, keyspace.RolloutsPrefix())
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, kv := range kvs {
		if id, ok := keyspace.RolloutID(kv.Key); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Get returns rollout id.
func (b *Book) Get(ctx context.Context, id int64) (Record, error) {
	kv, err := b.st.Get(ctx, keyspace.RolloutKey(id))
	if errors.Is(err, audit.ErrNotFound) {
		return Record{}, requests.Refuse(audit.ErrNotFound, "rollout %d does not exist (configctl rollout list)", id)
	}
	if err != nil {
		return Record{}, err
	}
	r, err := rollout.Decode(kv.Value)
	if err != nil {
		return Record{}, fmt.Errorf("rollout %d: %w", id, err)
	}
	return Record{Rollout: r, Rev: kv.ModRev}, nil
}

// List returns every rollout, oldest first.
func (b *Book) List(ctx context.Context) ([]Record, error) {
	kvs, _, err := b.st.List(ctx, keyspace.RolloutsPrefix())
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(kvs))
	for _, kv := range kvs {
		if _, ok := keyspace.RolloutID(kv.Key); !ok {
			continue
		}
		r, err := rollout.Decode(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		out = append(out, Record{Rollout: r, Rev: kv.ModRev})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// The actions on a rollout, as its log names them.
const (
	ActionPromote  = "promote"
	ActionPause    = "pause"
	ActionResume   = "resume"
	ActionAbort    = "abort"
	ActionComplete = "complete"
)

// Promote moves rollout id to its next step (its clients see the new
// values); past the last step, it completes it.
func (b *Book) Promote(ctx context.Context, id int64, actor, text string) (Record, error) {
	return b.act(ctx, id, actor, ActionPromote, text, func(r *rollout.Rollout) error {
		if r.Step+1 >= len(r.Steps) {
			r.State = rollout.StateComplete
			return nil
		}
		r.Step++
		r.StepStarted = b.now().UTC()
		return nil
	})
}

// Pause stops rollout id's step from advancing by itself.
func (b *Book) Pause(ctx context.Context, id int64, actor, text string) (Record, error) {
	return b.act(ctx, id, actor, ActionPause, text, func(r *rollout.Rollout) error {
		if r.State == rollout.StatePaused {
			return requests.Refuse(audit.ErrConflict, "rollout %d is paused already", r.ID)
		}
		r.State = rollout.StatePaused
		return nil
	})
}

// Resume lets paused rollout id's step advance by itself again (at once,
// when its bake time has passed).
func (b *Book) Resume(ctx context.Context, id int64, actor, text string) (Record, error) {
	return b.act(ctx, id, actor, ActionResume, text, func(r *rollout.Rollout) error {
		if r.State != rollout.StatePaused {
			return requests.Refuse(audit.ErrConflict, "rollout %d is %s, not paused", r.ID, r.State)
		}
		r.State = rollout.StateActive
		return nil
	})
}

// Abort puts every client of rollout id back on the old values: the
// record alone changes (the store holds the old values).
func (b *Book) Abort(ctx context.Context, id int64, actor, text string) (Record, error) {
	return b.act(ctx, id, actor, ActionAbort, text, func(r *rollout.Rollout) error {
		r.State = rollout.StateAborted
		return nil
	})
}

// Complete writes rollout id's new values to the store for everyone, with
// its record, in one revision.
func (b *Book) Complete(ctx context.Context, id int64, actor, text string) (Record, error) {
	return b.act(ctx, id, actor, ActionComplete, text, func(r *rollout.Rollout) error {
		r.State = rollout.StateComplete
		return nil
	})
}

// act applies do to running rollout id, logs it as action by actor with
// text, and commits it in one revision with a compare-and-set on the
// record (and on the index, when the rollout ends), again on the newest
// record when another action came first.
func (b *Book) act(ctx context.Context, id int64, actor, action, text string, do func(r *rollout.Rollout) error) (Record, error) {
	for try := 0; ; try++ {
		rec, err := b.Get(ctx, id)
		if err != nil {
			return Record{}, err
		}
		r := rec.Rollout
		if !rollout.Running(r.State) {
			return Record{}, requests.Refuse(audit.ErrConflict, "rollout %d is %s: it cannot be %s", r.ID, r.State, pastTense(action))
		}
		// The version read is the newest: what began its step is known.
		for len(r.StepRevs) <= r.Step {
			r.StepRevs = append(r.StepRevs, rec.Rev)
		}
		from := r.Phase
		if err := do(r); err != nil {
			return Record{}, err
		}
		r.From = from
		note := rollout.Note{Actor: actor, Time: b.now().UTC(), Action: action, Text: text}
		why := action
		switch {
		case r.State == rollout.StateComplete && action == ActionPromote:
			note.Text = strings.TrimSpace("past the last step: complete. " + text)
			why = "promote past the last step: complete"
		case r.Step != from.Step:
			why = fmt.Sprintf("promote to step %d/%d (%s)", r.Step+1, len(r.Steps), r.Steps[r.Step])
		}
		r.Log = append(r.Log, note)
		txn := audit.Txn{Actor: actor, Origin: Origin, Reason: fmt.Sprintf("rollout %d: %s", r.ID, why), Ops: []audit.Op{recordOp(r, rec.Rev)}}
		if text != "" {
			txn.Reason += ": " + text
		}
		if !rollout.Running(r.State) {
			idx, idxRev, err := b.index(ctx)
			if err != nil {
				return Record{}, err
			}
			for k, owner := range idx {
				if owner == r.ID {
					delete(idx, k)
				}
			}
			txn.Ops = append(txn.Ops, indexOp(idx, idxRev))
		}
		if r.State == rollout.StateComplete {
			for _, c := range r.Changes {
				op := audit.Delete(c.Key)
				if c.New != nil {
					op = audit.Put(c.Key, c.New.Value, c.New.ContentType)
					op.Secret = c.New.Secret
				}
				txn.Ops = append(txn.Ops, op.WithModRev(modRev(c.Old)))
			}
		}
		rev, err := b.st.Commit(own(ctx), txn)
		var ce *audit.ConflictError
		if errors.As(err, &ce) {
			if (ce.Key == keyspace.RolloutsActiveKey || ce.Key == keyspace.RolloutKey(id)) && try < maxRetries {
				continue
			}
			if slices.Contains(r.Keys(), ce.Key) {
				return Record{}, requests.Refuse(requests.ErrStale, "rollout %d: key %s was written while it ran (revision %d): "+
					"its new values would overwrite a change the rollout did not see; abort it (configctl rollout abort %d) and roll out a new request",
					r.ID, ce.Key, ce.Actual, r.ID)
			}
		}
		if err != nil {
			return Record{}, err
		}
		return Record{Rollout: r, Rev: rev.Rev}, nil
	}
}

// pastTense is an action's past participle ("promoted", "aborted").
func pastTense(action string) string {
	if strings.HasSuffix(action, "e") {
		return action + "d"
	}
	return action + "ed"
}

// Changes returns r's changes as a diff, old → new, each secret's value
// withheld as the history withholds it: for the doors' answers.
func (b *Book) Changes(r *rollout.Rollout) ([]audit.Change, error) {
	out := make([]audit.Change, 0, len(r.Changes))
	for _, c := range r.Changes {
		ch := audit.Change{Key: c.Key, Type: audit.OpPut}
		if c.New == nil {
			ch.Type = audit.OpDelete
		}
		for _, side := range []struct {
			v   *rollout.Value
			out **audit.KeyValue
		}{{c.Old, &ch.Old}, {c.New, &ch.New}} {
			if side.v == nil {
				continue
			}
			kv := audit.KeyValue{Key: c.Key, Value: side.v.Value, ContentType: side.v.ContentType, Secret: side.v.Secret,
				CreateRev: side.v.CreateRev, ModRev: side.v.ModRev, Version: side.v.Version}
			if kv.Secret {
				w, err := b.st.Withhold(kv)
				if err != nil {
					return nil, err
				}
				kv = w
			}
			*side.out = &kv
		}
		out = append(out, ch)
	}
	return out, nil
}
