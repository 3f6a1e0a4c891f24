// Package requests is configd's change requests (docs/requests.md): a
// draft of puts and deletes under a key prefix, its author and reason, the
// revision it was drafted on, comments and approvals; published as one
// revision through the ordinary write path once the prefix's approval
// policy is met and no key it changes moved on since its base.
//
// A request is a key of the store (keyspace.RequestKey), a JSON document
// that each action (propose, comment, approve, rebase, publish, close)
// replaces with a compare-and-set, so that every action is a revision
// with its actor, replicated and backed up as every key is, and two
// actions racing on one request never lose one another. The approval
// policies are one key too (keyspace.PoliciesKey).
//
// Who may do what (grants) is the door's to check; Book checks the
// rules that hold whoever asks: the scope, the states, the author's own
// approval, the policy's count and staleness.
package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

// The errors of the rules Book checks. Each error Book returns wraps one
// of these, or one of audit's (ErrNotFound: no such request;
// ErrBadRequest: a bad draft; ErrConflict: an action the request's state
// does not take).
var (
	// ErrStale: a key the request changes was written after its base.
	ErrStale = errors.New("request is stale")
	// ErrNotApproved: the request lacks the approvals its policy asks.
	ErrNotApproved = errors.New("request is not approved")
	// ErrSelfApproval: the author approved their own request.
	ErrSelfApproval = errors.New("an author may not approve their own request")
	// ErrRequestRequired: a direct write or rollback reached a prefix
	// whose policy takes changes only through requests, or configd's own
	// keys of requests.
	ErrRequestRequired = errors.New("changes only through change requests")
)

// The states of a request's record. An open request with the approvals
// its policy asks for is shown approved (View.State).
const (
	StateOpen      = "open"
	StateApproved  = "approved"
	StatePublished = "published"
	StateClosed    = "closed"
)

// Store is what Book needs of the store: audit.Store.
type Store interface {
	Rev() int64
	Get(ctx context.Context, key string, opts ...audit.ReadOption) (audit.KeyValue, error)
	List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error)
	Commit(ctx context.Context, txn audit.Txn) (audit.Revision, error)
	Diff(ctx context.Context, scope audit.Scope, from, to int64) ([]audit.Change, error)
	Withhold(kv audit.KeyValue) (audit.KeyValue, error)
}

var _ Store = (*audit.Store)(nil)

// Op is one change of a draft.
type Op struct {
	Key         string `json:"key"`
	Delete      bool   `json:"delete,omitempty"`
	Value       []byte `json:"value,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Secret      bool   `json:"secret,omitempty"`
}

// Note is a comment or an approval.
type Note struct {
	Actor string    `json:"actor"`
	Time  time.Time `json:"time"`
	Text  string    `json:"text,omitempty"`
}

// Request is a change request's record, as stored.
type Request struct {
	ID     int64     `json:"id"`
	Scope  string    `json:"scope"` // a canonical prefix
	Author string    `json:"author"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
	// Base is the revision the draft was made (or last rebased) on.
	Base      int64  `json:"base"`
	Ops       []Op   `json:"ops"`
	Comments  []Note `json:"comments,omitempty"`
	Approvals []Note `json:"approvals,omitempty"`
	// State is StateOpen, StatePublished or StateClosed.
	State        string `json:"state"`
	PublishedRev int64  `json:"published_rev,omitempty"`
	PublishedBy  string `json:"published_by,omitempty"`
	// Rollout is the rollout that published the request (0: published at
	// once): PublishedRev started it.
	Rollout     int64  `json:"rollout,omitempty"`
	ClosedBy    string `json:"closed_by,omitempty"`
	CloseReason string `json:"close_reason,omitempty"`
}

// Draft is what a request is proposed with. Ops are checked as a
// transaction's by the door (writeops) before they come here.
type Draft struct {
	Scope  string
	Author string
	Reason string
	Ops    []audit.Op
}

// Book keeps the change requests of a store.
type Book struct {
	st  Store
	now func() time.Time
}

// Option configures New.
type Option func(*Book)

// WithClock sets the clock that times notes (default time.Now).
func WithClock(now func() time.Time) Option { return func(b *Book) { b.now = now } }

// New returns the book of st's change requests.
func New(st Store, opts ...Option) *Book {
	b := &Book{st: st, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	return b
}

// maxRetries bounds the compare-and-set loop of an action that keeps
// losing to other actions on the same record.
const maxRetries = 8

// own is ctx for the writes of the book's own keys: the caller's token
// allowed the action (the door checked it), not a write of those keys,
// so a replica's commit must not check that token's grants against them.
func own(ctx context.Context) context.Context { return audit.WithAuthorization(ctx, nil) }

// Propose records d as a new open request on the current revision.
func (b *Book) Propose(ctx context.Context, d Draft) (Request, error) {
	scope, err := keyspace.Prefix(d.Scope)
	if err != nil {
		return Request{}, err
	}
	if len(d.Ops) == 0 {
		return Request{}, Refuse(audit.ErrBadRequest, "the draft changes nothing: give at least one key to set or delete")
	}
	r := Request{Scope: scope, Author: d.Author, Reason: d.Reason, Time: b.now().UTC(), State: StateOpen}
	for _, op := range d.Ops {
		if keyspace.Own(op.Key) {
			return Request{}, Refuse(audit.ErrBadRequest, "key %q: configd's own keys under %s change through their commands, not through a request", op.Key, keyspace.RequestsNS)
		}
		if !keyspace.InPrefix(op.Key, scope) {
			return Request{}, Refuse(audit.ErrBadRequest, "key %q is outside the request's scope %s", op.Key, display(scope))
		}
		o := Op{Key: op.Key, Delete: op.Type == audit.OpDelete, Value: op.Value, ContentType: op.ContentType, Secret: op.Secret}
		if !o.Delete && !o.Secret {
			// A key that is secret stays secret (the store keeps it so), and
			// so does its draft value.
			cur, err := b.st.Get(ctx, op.Key)
			if err != nil && !errors.Is(err, audit.ErrNotFound) {
				return Request{}, err
			}
			o.Secret = err == nil && cur.Secret
		}
		r.Ops = append(r.Ops, o)
	}
	sort.Slice(r.Ops, func(i, j int) bool { return r.Ops[i].Key < r.Ops[j].Key })
	for try := 0; ; try++ {
		kvs, _, err := b.st.List(ctx, keyspace.RequestsPrefix())
		if err != nil {
			return Request{}, err
		}
		r.ID = 1
		for _, kv := range kvs {
			if id, ok := keyspace.RequestID(kv.Key); ok && id >= r.ID {
				r.ID = id + 1
			}
		}
		r.Base = b.st.Rev()
		zero := int64(0)
		_, err = b.commit(ctx, r, &zero, d.Author, "propose")
		var ce *audit.ConflictError
		if errors.As(err, &ce) && try < maxRetries {
			continue // another request took this id
		}
		return r, err
	}
}

// commit writes r's record, if its mod_rev is ifModRev, as actor doing
// what.
func (b *Book) commit(ctx context.Context, r Request, ifModRev *int64, actor, what string) (audit.Revision, error) {
	doc, err := json.Marshal(r)
	if err != nil {
		return audit.Revision{}, err
	}
	op := audit.Put(keyspace.RequestKey(r.ID), doc, "application/json")
	op.IfModRev = ifModRev
	for _, o := range r.Ops {
		op.Secret = op.Secret || o.Secret // a secret's draft value is kept as a secret is
	}
	reason := fmt.Sprintf("request %d: %s", r.ID, what)
	return b.st.Commit(own(ctx), audit.Txn{Actor: actor, Reason: reason, Origin: "request", Ops: []audit.Op{op}})
}

// Get returns request id and its record's mod_rev.
func (b *Book) Get(ctx context.Context, id int64) (Request, int64, error) {
	kv, err := b.st.Get(ctx, keyspace.RequestKey(id))
	if errors.Is(err, audit.ErrNotFound) {
		return Request{}, 0, Refuse(audit.ErrNotFound, "request %d does not exist (configctl request list)", id)
	}
	if err != nil {
		return Request{}, 0, err
	}
	var r Request
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return Request{}, 0, fmt.Errorf("request %d: its record does not parse: %w", id, err)
	}
	return r, kv.ModRev, nil
}

// List returns every request, oldest first.
func (b *Book) List(ctx context.Context) ([]Request, error) {
	kvs, _, err := b.st.List(ctx, keyspace.RequestsPrefix())
	if err != nil {
		return nil, err
	}
	out := make([]Request, 0, len(kvs))
	for _, kv := range kvs {
		if _, ok := keyspace.RequestID(kv.Key); !ok {
			continue
		}
		var r Request
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("%s: its record does not parse: %w", kv.Key, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// update applies act to request id and records it with a compare-and-set
// on its record, again on the newest record when another action came
// first.
func (b *Book) update(ctx context.Context, id int64, actor, what string, act func(r *Request) error) (Request, error) {
	for try := 0; ; try++ {
		r, modRev, err := b.Get(ctx, id)
		if err != nil {
			return Request{}, err
		}
		if err := act(&r); err != nil {
			return Request{}, err
		}
		_, err = b.commit(ctx, r, &modRev, actor, what)
		var ce *audit.ConflictError
		if errors.As(err, &ce) && try < maxRetries {
			continue
		}
		return r, err
	}
}

// open refuses an action on a request that is no longer open.
func open(r *Request, action string) error {
	if r.State == StateOpen {
		return nil
	}
	return Refuse(audit.ErrConflict, "request %d is %s: it cannot be %s", r.ID, r.State, action)
}

// Comment adds actor's comment text to request id.
func (b *Book) Comment(ctx context.Context, id int64, actor, text string) (Request, error) {
	if strings.TrimSpace(text) == "" {
		return Request{}, Refuse(audit.ErrBadRequest, "a comment needs some text")
	}
	return b.update(ctx, id, actor, "comment", func(r *Request) error {
		r.Comments = append(r.Comments, Note{Actor: actor, Time: b.now().UTC(), Text: text})
		return nil
	})
}

// Approve records actor's approval of request id. The author's is
// refused (ErrSelfApproval); a second approval by the same actor changes
// nothing.
func (b *Book) Approve(ctx context.Context, id int64, actor, text string) (Request, error) {
	return b.update(ctx, id, actor, "approve", func(r *Request) error {
		if err := open(r, "approved"); err != nil {
			return err
		}
		if actor == r.Author {
			return Refuse(ErrSelfApproval, "%s wrote request %d; another person must approve it", actor, r.ID)
		}
		if slices.ContainsFunc(r.Approvals, func(n Note) bool { return n.Actor == actor }) {
			return nil
		}
		r.Approvals = append(r.Approvals, Note{Actor: actor, Time: b.now().UTC(), Text: text})
		return nil
	})
}

// Rebase moves request id's base to the current revision: its diff is
// then against now, and the approvals given to the old diff are dropped.
func (b *Book) Rebase(ctx context.Context, id int64, actor string) (Request, error) {
	return b.update(ctx, id, actor, "rebase", func(r *Request) error {
		if err := open(r, "rebased"); err != nil {
			return err
		}
		r.Base = b.st.Rev()
		text := fmt.Sprintf("rebased on revision %d", r.Base)
		if n := len(r.Approvals); n > 0 {
			text += fmt.Sprintf("; %d approval(s) of the old diff dropped", n)
		}
		r.Approvals = nil
		r.Comments = append(r.Comments, Note{Actor: actor, Time: b.now().UTC(), Text: text})
		return nil
	})
}

// Close closes request id unpublished (rejected or withdrawn), for why.
func (b *Book) Close(ctx context.Context, id int64, actor, why string) (Request, error) {
	return b.update(ctx, id, actor, "close", func(r *Request) error {
		if err := open(r, "closed"); err != nil {
			return err
		}
		r.State, r.ClosedBy, r.CloseReason = StateClosed, actor, why
		return nil
	})
}

// Publish commits request id's draft as one revision, by actor with ctx's
// authorization (the ordinary write path: ctx carries the caller's
// token), with reason "request N: <its reason>" and origin. It refuses
// what Ready refuses. A key written between the check and the commit
// makes the commit fail as stale, and nothing is written.
func (b *Book) Publish(ctx context.Context, id int64, actor, origin string) (Request, audit.Revision, error) {
	v, err := b.Ready(ctx, id)
	if err != nil {
		return Request{}, audit.Revision{}, err
	}
	r := v.Request
	txn := audit.Txn{Actor: actor, Origin: origin, Reason: fmt.Sprintf("request %d", r.ID)}
	if r.Reason != "" {
		txn.Reason += ": " + r.Reason
	}
	for _, o := range r.Ops {
		op := audit.Put(o.Key, o.Value, o.ContentType)
		op.Secret = o.Secret
		if o.Delete {
			op = audit.Delete(o.Key)
		}
		// Nothing moved since the base (checked above); the condition
		// makes a write that comes in now refuse the publish.
		txn.Ops = append(txn.Ops, op.WithModRev(v.ModRev(o.Key)))
	}
	rev, err := b.st.Commit(ctx, txn)
	if err != nil {
		return Request{}, audit.Revision{}, b.StaleOr(r, err)
	}
	r, err = b.Published(ctx, id, actor, rev.Rev, 0)
	return r, rev, err
}

// Ready returns request id as it stands now once it may be published:
// open, not stale (ErrStale) and with the approvals its policy asks
// (ErrNotApproved). Its ModRev of each key it changes is the condition
// that makes a write of that key, coming in after this check, refuse the
// publish (StaleOr says so).
func (b *Book) Ready(ctx context.Context, id int64) (View, error) {
	r, _, err := b.Get(ctx, id)
	if err != nil {
		return View{}, err
	}
	if err := open(&r, "published"); err != nil {
		return View{}, err
	}
	v, err := b.View(ctx, r, false)
	if err != nil {
		return View{}, err
	}
	if len(v.StaleKeys) > 0 {
		return View{}, staleError(r, v.StaleKeys)
	}
	if have := len(r.Approvals); have < v.Policy.Approvals {
		return View{}, Refuse(ErrNotApproved, "request %d has %d of the %d approval(s) that the policy of %s asks (configctl request approve %d)", r.ID, have, v.Policy.Approvals, display(v.Policy.Prefix), r.ID)
	}
	return v, nil
}

// StaleOr returns err of a commit of request r's keys made on Ready's
// conditions: a failed condition says r is stale, anything else is err.
func (b *Book) StaleOr(r Request, err error) error {
	var ce *audit.ConflictError
	if errors.As(err, &ce) {
		return staleError(r, []string{ce.Key})
	}
	return err
}

// Published records that revision rev, by actor, published request id
// (through rollout, when it is not 0: the rollout's record was written at
// rev).
func (b *Book) Published(ctx context.Context, id int64, actor string, rev, rollout int64) (Request, error) {
	return b.update(ctx, id, actor, "publish", func(r *Request) error {
		if err := open(r, "published"); err != nil {
			return err
		}
		r.State, r.PublishedRev, r.PublishedBy, r.Rollout = StatePublished, rev, actor, rollout
		return nil
	})
}

func staleError(r Request, keys []string) error {
	return Refuse(ErrStale, "request %d is stale: %s changed after its base, revision %d: look at the new diff (configctl request show %d), "+
		"then rebase it (configctl request rebase %d) and have it approved again", r.ID, strings.Join(keys, ", "), r.Base, r.ID, r.ID)
}

// View is a request as it stands now.
type View struct {
	Request
	// State is the record's, or StateApproved for an open request with
	// the approvals its policy asks.
	State string
	// StaleKeys are the keys the request changes that were written after
	// its base (only for an open request).
	StaleKeys []string
	// Policy is the nearest policy of the request's scope.
	Policy Policy
	// Diff is the draft against now (only when asked): Old the current
	// value, New the draft's (nil for a delete), a secret's withheld.
	Diff []audit.Change

	modRevs map[string]int64
}

// ModRev returns the mod_rev of key (one the request changes) when the
// view was made: 0 when it did not exist.
func (v View) ModRev(key string) int64 { return v.modRevs[key] }

// View returns r as it stands now, with its diff against now if diff.
func (b *Book) View(ctx context.Context, r Request, diff bool) (View, error) {
	v := View{Request: r, State: r.State, modRevs: map[string]int64{}}
	pol, err := b.Policy(ctx, r.Scope)
	if err != nil {
		return View{}, err
	}
	v.Policy = pol
	if r.State == StateOpen && len(r.Approvals) >= pol.Approvals && pol.Approvals > 0 {
		v.State = StateApproved
	}
	if r.State != StateOpen && !diff {
		return v, nil
	}
	now := b.st.Rev()
	for _, o := range r.Ops {
		old, err := b.st.Get(ctx, o.Key)
		var cur *audit.KeyValue
		switch {
		case errors.Is(err, audit.ErrNotFound):
		case err != nil:
			return View{}, err
		default:
			cur = &old
			v.modRevs[o.Key] = old.ModRev
		}
		if diff {
			c, err := b.change(o, cur)
			if err != nil {
				return View{}, err
			}
			v.Diff = append(v.Diff, c)
		}
	}
	if r.State == StateOpen && now > r.Base {
		stale, err := b.staleKeys(ctx, r, now)
		if err != nil {
			return View{}, err
		}
		v.StaleKeys = stale
	}
	return v, nil
}

// staleKeys returns the keys of r written after its base, up to now.
func (b *Book) staleKeys(ctx context.Context, r Request, now int64) ([]string, error) {
	changes, err := b.st.Diff(ctx, audit.Scope{Prefix: r.Scope}, r.Base, now)
	if errors.Is(err, audit.ErrRevisionGone) {
		// The history from the base was compacted: nothing says the keys
		// did not move, so every one of them counts as moved.
		keys := make([]string, len(r.Ops))
		for i, o := range r.Ops {
			keys[i] = o.Key
		}
		return keys, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, c := range changes {
		if slices.ContainsFunc(r.Ops, func(o Op) bool { return o.Key == c.Key }) {
			keys = append(keys, c.Key)
		}
	}
	return keys, nil
}

// change is op's change from cur (nil: no key), a secret's values
// withheld as the history withholds them.
func (b *Book) change(o Op, cur *audit.KeyValue) (audit.Change, error) {
	c := audit.Change{Key: o.Key, Type: audit.OpPut, Old: cur}
	if o.Delete {
		c.Type = audit.OpDelete
	} else {
		c.New = &audit.KeyValue{Key: o.Key, Value: o.Value, ContentType: o.ContentType, Secret: o.Secret}
	}
	for _, kv := range []**audit.KeyValue{&c.Old, &c.New} {
		if *kv == nil || !(*kv).Secret {
			continue
		}
		w, err := b.st.Withhold(**kv)
		if err != nil {
			return audit.Change{}, err
		}
		*kv = &w
	}
	return c, nil
}

// refusal is an error that says only its message and is its sentinel
// (errors.Is), so that a client reads "request 9 does not exist", not
// "key not found: request 9 does not exist".
type refusal struct {
	msg      string
	sentinel error
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.sentinel }

// Refuse returns an error that says only its message (made as by
// fmt.Sprintf) and is sentinel (errors.Is): the refusals of the book's
// rules, and of the rollouts' built on them.
func Refuse(sentinel error, format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

func display(prefix string) string {
	if prefix == "" {
		return "/ (every key)"
	}
	return prefix
}
