package consulapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/writeops"
)

// MaxTxnOps is the most operations a transaction may hold: Consul's own
// limit.
const MaxTxnOps = 128

// txnBodyFactor bounds a transaction's body: this many times the store's
// MaxValueSize (its values are base64, a third larger, and several).
const txnBodyFactor = 4

// The KV verbs of Consul's transactions.
const (
	verbSet            = "set"
	verbCAS            = "cas"
	verbGet            = "get"
	verbGetTree        = "get-tree"
	verbCheckIndex     = "check-index"
	verbCheckNotExists = "check-not-exists"
	verbDelete         = "delete"
	verbDeleteCAS      = "delete-cas"
	verbDeleteTree     = "delete-tree"
)

// txnOp is one operation of a Consul transaction; only KV is served.
type txnOp struct {
	KV      *txnKVOp
	Node    json.RawMessage
	Service json.RawMessage
	Check   json.RawMessage
	Session json.RawMessage
}

type txnKVOp struct {
	Verb    string
	Key     string
	Value   []byte
	Flags   uint64
	Index   uint64
	Session string
}

type txnResult struct {
	KV *kvPair `json:",omitempty"`
}

type txnError struct {
	OpIndex int
	What    string
}

type txnResponse struct {
	Results []txnResult
	Errors  []txnError
}

// verbPerm is the permission each served verb needs on its key or prefix.
var verbPerm = map[string]string{
	verbSet: api.PermissionWrite, verbCAS: api.PermissionWrite, verbDelete: api.PermissionWrite,
	verbDeleteCAS: api.PermissionWrite, verbDeleteTree: api.PermissionWrite,
	verbGet: api.PermissionRead, verbGetTree: api.PermissionRead,
	verbCheckIndex: api.PermissionRead, verbCheckNotExists: api.PermissionRead,
}

// txnState is a transaction as it is checked and built: its results, its
// errors (each naming its op), what its ops wrote so far (each op sees the
// writes of the ops before it, as in Consul), the writes for the store and
// the op each key's write came from.
type txnState struct {
	h       *handler
	r       *http.Request
	results []txnResult
	errs    []txnError
	writes  *writeops.Txn
	opOf    map[string]int
	old     map[string]*audit.KeyValue
	pend    map[string]*audit.KeyValue // the keys the ops wrote: the value, or nil once deleted
	order   []string                   // the keys of pend, first written first
	flags   map[string]uint64          // the flags of the keys of pend the ops set
	more    []audit.Op                 // configd's own records of the writes: their flags
	next    int64                      // the revision the transaction commits at, if it does
}

// written records that op i leaves key as kv (nil: deleted).
func (t *txnState) written(i int, key string, kv *audit.KeyValue) {
	if _, ok := t.pend[key]; !ok {
		t.order = append(t.order, key)
	}
	t.pend[key] = kv
	t.opOf[key] = i
}

// lookup is key as the ops before see it: what they wrote, else the
// store's value. A value the transaction wrote has the revision it commits
// at as its modify index, as Consul's writes in a transaction have its
// index.
func (t *txnState) lookup(key string) (*audit.KeyValue, error) {
	if kv, ok := t.pend[key]; ok {
		return kv, nil
	}
	return t.current(key)
}

func (t *txnState) fail(i int, format string, args ...any) {
	t.errs = append(t.errs, txnError{OpIndex: i, What: fmt.Sprintf(format, args...)})
}

// current is key's value now (nil: none), read once per transaction.
func (t *txnState) current(key string) (*audit.KeyValue, error) {
	if kv, ok := t.old[key]; ok {
		return kv, nil
	}
	kv, err := t.h.st.Get(t.r.Context(), key)
	switch {
	case errors.Is(err, audit.ErrNotFound):
		t.old[key] = nil
		return nil, nil
	case err != nil:
		return nil, err
	}
	t.old[key] = &kv
	return &kv, nil
}

// PUT /v1/txn: the KV operations of a Consul transaction, committed as one
// revision, all or nothing.
func (h *handler) txn(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodPut) {
		return
	}
	if err := checkDC(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	limit := int64(txnBodyFactor) * int64(h.st.MaxValueSize())
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		h.fail(w, r, bodyError(err))
		return
	}
	if int64(len(body)) > limit {
		h.fail(w, r, apierror.New(api.CodeTooLarge, "Request body too large, max size: %d bytes (%d times configd's --max-value-size)", limit, txnBodyFactor))
		return
	}
	var ops []txnOp
	if err := json.Unmarshal(body, &ops); err != nil {
		h.fail(w, r, apierror.BadRequest("Failed to parse body: %v", err))
		return
	}
	if len(ops) > MaxTxnOps {
		h.fail(w, r, apierror.New(api.CodeTooLarge, "Transaction contains too many operations (%d > %d)", len(ops), MaxTxnOps))
		return
	}
	for attempt := 1; ; attempt++ {
		if done := h.decideTxn(w, r, ops, attempt == maxTxnAttempts); done {
			return
		}
	}
}

// maxTxnAttempts is how many times a transaction is decided again after
// losing to another write before it is answered 409.
const maxTxnAttempts = 64

// decideTxn decides ops on the store as it is at its revision R (its
// reads, checks and the keys of a delete-tree) and commits its writes on
// condition that nothing was committed since R (audit.Txn.IfRev), so that
// the transaction is atomic as Consul's is. It answers the request and
// returns true, or returns false when another revision came first and the
// caller should decide again; last answers that case 409 instead.
func (h *handler) decideTxn(w http.ResponseWriter, r *http.Request, ops []txnOp, last bool) bool {
	rev := h.st.Rev()
	// Committed on condition that nothing came since rev (IfRev), the
	// transaction is revision rev+1.
	t := &txnState{h: h, r: r, opOf: map[string]int{}, old: map[string]*audit.KeyValue{}, pend: map[string]*audit.KeyValue{},
		flags: map[string]uint64{}, next: rev + 1}
	t.writes, _ = writeops.NewTxn(h.st, max(len(ops), 1))
	for i, op := range ops {
		if err := t.add(i, op); err != nil {
			h.fail(w, r, err)
			return true
		}
	}
	if len(t.errs) == 0 {
		if err := t.collect(); err != nil {
			h.fail(w, r, err)
			return true
		}
	}
	if len(t.errs) > 0 {
		writeJSON(w, http.StatusConflict, txnResponse{Errors: t.errs})
		return true
	}
	writes := t.writes.Ops()
	if len(writes) == 0 {
		h.setIndex(w, rev)
		writeJSON(w, http.StatusOK, txnResponse{Results: t.results})
		return true
	}
	committed, err := h.commit(r, writes, &rev, t.more...)
	var ce *audit.ConflictError
	switch {
	case errors.As(err, &ce) && ce.Key == "" && !last:
		return false // another revision came first: decide again
	case errors.As(err, &ce) && ce.Key == "":
		writeJSON(w, http.StatusConflict, txnResponse{Errors: []txnError{{OpIndex: 0,
			What: fmt.Sprintf("the transaction lost to other writes %d times in a row; retry it", maxTxnAttempts)}}})
		return true
	case errors.As(err, &ce):
		writeJSON(w, http.StatusConflict, txnResponse{Errors: []txnError{{OpIndex: t.opOf[ce.Key],
			What: fmt.Sprintf("failed to write key %q, index is stale (its modify index is %d, not %d)", ce.Key, ce.Actual, ce.Expected)}}})
		return true
	case err != nil:
		h.fail(w, r, err)
		return true
	}
	for i := range t.results {
		if kv := t.results[i].KV; kv != nil && kv.ModifyIndex == 0 {
			// A write: its indexes are the new revision's.
			kv.ModifyIndex = uint64(committed.Rev)
			if kv.CreateIndex == 0 {
				kv.CreateIndex = uint64(committed.Rev)
			}
		}
	}
	writeJSON(w, http.StatusOK, txnResponse{Results: t.results})
	return true
}

// add checks op i and adds what it reads to the results and what it
// writes to the writes; a refusal is an error of the transaction, naming
// op i (the caller answers them all, 409), and an error returned is the
// store's.
func (t *txnState) add(i int, op txnOp) error {
	if op.KV == nil {
		what := "an empty operation"
		switch {
		case op.Node != nil:
			what = "Node"
		case op.Service != nil:
			what = "Service"
		case op.Check != nil:
			what = "Check"
		case op.Session != nil:
			what = "Session"
		}
		t.fail(i, "%s operations are not served by configd's Consul API: only KV (docs/compat.md)", what)
		return nil
	}
	kv := op.KV
	perm, ok := verbPerm[kv.Verb]
	if !ok {
		if kv.Verb == "lock" || kv.Verb == "unlock" || kv.Verb == "check-session" {
			t.fail(i, "KV verb %q is not served by configd's Consul API: configd has no sessions or locks (docs/compat.md)", kv.Verb)
		} else {
			t.fail(i, "unknown KV verb %q", kv.Verb)
		}
		return nil
	}
	tree := kv.Verb == verbGetTree || kv.Verb == verbDeleteTree
	if tree {
		if _, err := listPrefix(kv.Key); err != nil {
			t.fail(i, "%s", apierror.Classify(err).Message)
			return nil
		}
	} else if err := keyspace.Validate(kv.Key); err != nil {
		t.fail(i, "%s", apierror.Classify(err).Message)
		return nil
	}
	if err := t.h.check(t.r, perm, kv.Key); err != nil {
		_, msg := consulMessage(apierror.Classify(err))
		t.fail(i, "%s", msg)
		return nil
	}
	switch kv.Verb {
	case verbGet, verbCheckIndex, verbCheckNotExists:
		return t.read(i, kv)
	case verbGetTree:
		kvs, err := t.tree(kv.Key)
		if err != nil {
			return err
		}
		for _, v := range kvs {
			if err := t.result(v, true); err != nil {
				return err
			}
		}
		return nil
	case verbDeleteTree:
		kvs, err := t.tree(kv.Key)
		if err != nil {
			return err
		}
		for _, v := range kvs {
			if !keyspace.Own(v.Key) {
				t.written(i, v.Key, nil)
			}
		}
		return nil
	}
	old, err := t.lookup(kv.Key)
	if err != nil {
		return err
	}
	if kv.Verb == verbCAS || kv.Verb == verbDeleteCAS && old != nil {
		// Consul's check: the key's modify index, 0 for a key that does
		// not exist (a delete-cas of a key already gone succeeds).
		at := uint64(0)
		if old != nil {
			at = uint64(old.ModRev)
		}
		if at != kv.Index {
			what := "set"
			if kv.Verb == verbDeleteCAS {
				what = "delete"
			}
			t.fail(i, "failed to %s key %q, index is stale", what, kv.Key)
			return nil
		}
	}
	if kv.Verb == verbDelete || kv.Verb == verbDeleteCAS {
		t.written(i, kv.Key, nil)
		return nil
	}
	if err := keyspace.ValidateNew(kv.Key); err != nil {
		t.fail(i, "%s", apierror.Classify(err).Message)
		return nil
	}
	ct, err := t.h.valueType(t.r.Context(), kv.Key, kv.Value)
	if err != nil {
		return err
	}
	nv := &audit.KeyValue{Key: kv.Key, Value: kv.Value, ContentType: ct, CreateRev: t.next, ModRev: t.next}
	res := kvPair{Key: kv.Key}
	if old != nil {
		nv.CreateRev, nv.Secret = old.CreateRev, old.Secret
		res.CreateIndex = uint64(old.CreateRev)
	}
	res.Flags = kv.Flags
	t.results = append(t.results, txnResult{KV: &res})
	t.written(i, kv.Key, nv)
	t.flags[kv.Key] = kv.Flags
	return nil
}

// tree is the keys under prefix p that the request may read, as the ops
// before see them, in key order.
func (t *txnState) tree(p string) ([]audit.KeyValue, error) {
	kvs, _, _, err := t.h.readPrefix(t.r.Context(), t.r, p)
	if err != nil {
		return nil, err
	}
	out := kvs[:0:0]
	for _, kv := range kvs {
		if pv, ok := t.pend[kv.Key]; !ok {
			out = append(out, kv)
		} else if pv != nil {
			out = append(out, *pv)
		}
	}
	for _, k := range t.order {
		if _, err := t.current(k); err != nil {
			return nil, err
		}
		if pv := t.pend[k]; pv != nil && t.old[k] == nil && strings.HasPrefix(k, p) && t.h.mayRead(t.r, k) {
			out = append(out, *pv) // new in this transaction
		}
	}
	slices.SortFunc(out, func(a, b audit.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// collect adds the transaction's writes for the store: each key it wrote
// as the last op left it, named by that op.
func (t *txnState) collect() error {
	for _, key := range t.order {
		kv, i := t.pend[key], t.opOf[key]
		old, err := t.current(key)
		if err != nil {
			return err
		}
		if kv == nil && old == nil {
			continue // written, then deleted: nothing for the store
		}
		in := writeops.Op{Key: key, Delete: kv == nil}
		if kv != nil {
			in.Value, in.ContentType = kv.Value, kv.ContentType
		}
		t.write(i, in)
		flags := t.flags[key]
		if kv == nil {
			flags = 0
		}
		more, err := t.h.flagsOps(t.r.Context(), key, flags)
		if err != nil {
			return err
		}
		t.more = append(t.more, more...)
	}
	return nil
}

// write adds a write of op i to the transaction's; writeops' messages
// name it ops[i], i Consul's index of the op.
func (t *txnState) write(i int, in writeops.Op) {
	if err := t.writes.Key(i, in.Key); err != nil {
		t.fail(i, "%s", apierror.Classify(err).Message)
		return
	}
	if err := t.writes.Add(i, in); err != nil {
		t.fail(i, "%s", apierror.Classify(err).Message)
	}
}

// read serves get, check-index and check-not-exists on the key as the ops
// before left it.
func (t *txnState) read(i int, op *txnKVOp) error {
	kv, err := t.lookup(op.Key)
	if err != nil {
		return err
	}
	switch op.Verb {
	case verbCheckNotExists:
		if kv != nil {
			t.fail(i, "key %q exists", op.Key)
		}
		return nil
	case verbCheckIndex:
		if kv == nil {
			t.fail(i, "key %q doesn't exist", op.Key)
			return nil
		}
		if uint64(kv.ModRev) != op.Index {
			t.fail(i, "failed index check for key %q, current modify index %d != %d", op.Key, kv.ModRev, op.Index)
			return nil
		}
		return t.result(*kv, false)
	}
	if kv == nil {
		t.fail(i, "key %q doesn't exist", op.Key)
		return nil
	}
	return t.result(*kv, true)
}

// result adds kv to the results, with its value when withValue (withheld
// when it is a secret's and the connection may not carry it).
func (t *txnState) result(kv audit.KeyValue, withValue bool) error {
	if !withValue {
		kv.Value = nil
	} else if kv.Secret && !authz.SecureRequest(t.r) {
		var err error
		if kv, err = t.h.st.Withhold(kv); err != nil {
			return err
		}
	}
	p := pairOf(kv)
	if _, ok := t.pend[kv.Key]; ok {
		p.Flags = t.flags[kv.Key] // written by the transaction
	} else {
		p.Flags = t.h.flagsOf(t.r.Context(), kv)
	}
	t.results = append(t.results, txnResult{KV: &p})
	return nil
}
