package consulapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/writeops"
)

// kvPair is Consul's KVPair: a key as Consul's clients read it. Value is
// base64 in JSON, null when withheld.
type kvPair struct {
	LockIndex   uint64
	Key         string
	Flags       uint64
	Value       []byte
	CreateIndex uint64
	ModifyIndex uint64
}

func pairOf(kv audit.KeyValue) kvPair {
	return kvPair{Key: kv.Key, Value: kv.Value, CreateIndex: uint64(kv.CreateRev), ModifyIndex: uint64(kv.ModRev)}
}

// setIndex sets the headers of a read: X-Consul-Index, the store's
// revision at the answer, and who leads (this configd, or its cluster
// while this replica follows it).
func (h *handler) setIndex(w http.ResponseWriter, rev int64) {
	w.Header().Set("X-Consul-Index", strconv.FormatInt(max(rev, 1), 10))
	w.Header().Set("X-Consul-KnownLeader", strconv.FormatBool(h.st.Replication().Err == nil))
	w.Header().Set("X-Consul-LastContact", "0")
}

// checkDC refuses a datacenter other than the one served, as Consul
// answers one it has no path to.
func checkDC(q url.Values) error {
	if dc := q.Get("dc"); dc != "" && dc != Datacenter {
		return apierror.BadRequest("No path to datacenter %q: configd's Consul API serves only %q", dc, Datacenter).
			WithStatus(http.StatusInternalServerError)
	}
	return nil
}

// uintParam parses the optional whole-number parameter name of q.
func uintParam(q url.Values, name, what string) (n uint64, set bool, err error) {
	if !q.Has(name) {
		return 0, false, nil
	}
	v := q.Get(name)
	n, perr := strconv.ParseUint(v, 10, 63)
	if perr != nil {
		return 0, false, apierror.BadRequest("Invalid %s: %s=%q is not a whole number >= 0", what, name, apierror.OneLine(v))
	}
	return n, true, nil
}

// missingKey is Consul's answer to a key route without a key.
var missingKey = apierror.BadRequest("Missing key name")

// /v1/kv/<key>
func (h *handler) kv(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/v1/kv/")
	q := r.URL.Query()
	if err := checkDC(q); err != nil {
		h.fail(w, r, err)
		return
	}
	switch r.Method {
	case http.MethodGet:
		h.get(w, r, key, q)
	case http.MethodPut:
		h.put(w, r, key, q)
	default:
		h.del(w, r, key, q)
	}
}

// GET /v1/kv/<key>[?recurse|?keys[&separator=S]][&raw][&index=N&wait=D][&stale|&consistent]
func (h *handler) get(w http.ResponseWriter, r *http.Request, key string, q url.Values) {
	if q.Has("stale") && q.Has("consistent") {
		h.fail(w, r, apierror.BadRequest("Cannot specify ?stale with ?consistent, conflicting semantics."))
		return
	}
	prefix := q.Has("recurse") || q.Has("keys")
	if prefix {
		if _, err := listPrefix(key); err != nil {
			h.fail(w, r, apierror.WithKey(err, key))
			return
		}
	} else {
		if key == "" {
			h.fail(w, r, missingKey)
			return
		}
		if err := keyspace.Validate(key); err != nil {
			h.fail(w, r, apierror.WithKey(err, key))
			return
		}
		if err := h.check(r, api.PermissionRead, key); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	index, wait, err := blockingParams(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if q.Has("consistent") {
		if err := (core.ReadFence{Consistent: true}).Await(r.Context(), h.st, h.opts.readWait); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if err := h.block(r, key, prefix, index, wait); err != nil {
		h.fail(w, r, err)
		return
	}
	if prefix {
		h.getPrefix(w, r, key, q)
		return
	}
	// Read the revision before the value, so that the value is at least
	// this new and a blocking query from it misses nothing.
	rev := h.st.Rev()
	kv, err := h.st.Get(r.Context(), key)
	h.setIndex(w, rev)
	if errors.Is(err, audit.ErrNotFound) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if err != nil {
		h.fail(w, r, apierror.WithKey(err, key))
		return
	}
	if kv.Secret && !authz.SecureRequest(r) {
		h.fail(w, r, apierror.New(api.CodeForbidden, "%s", authz.PlainSecretMessage(key)))
		return
	}
	if q.Has("raw") {
		w.Header().Set("Content-Type", kv.ContentType)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(kv.Value)
		return
	}
	writeJSON(w, http.StatusOK, []kvPair{h.pair(r.Context(), kv)})
}

// readPrefix returns the keys under Consul's prefix p that the request may
// read, and the revision they were read at; filtered says some were left
// out for want of a grant.
func (h *handler) readPrefix(ctx context.Context, r *http.Request, p string) (kvs []audit.KeyValue, rev int64, filtered bool, err error) {
	lp, err := listPrefix(p)
	if err != nil {
		return nil, 0, false, apierror.WithKey(err, p)
	}
	all, rev, err := h.st.List(ctx, lp)
	if err != nil {
		return nil, 0, false, err
	}
	for _, kv := range all {
		if !strings.HasPrefix(kv.Key, p) {
			continue
		}
		if !h.mayRead(r, kv.Key) {
			filtered = true
			continue
		}
		kvs = append(kvs, kv)
	}
	return kvs, rev, filtered, nil
}

func (h *handler) getPrefix(w http.ResponseWriter, r *http.Request, p string, q url.Values) {
	kvs, rev, filtered, err := h.readPrefix(r.Context(), r, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.setIndex(w, rev)
	if filtered {
		w.Header().Set("X-Consul-Results-Filtered-By-ACLs", "true")
	}
	if len(kvs) == 0 {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if q.Has("keys") {
		writeJSON(w, http.StatusOK, keyList(kvs, p, q.Get("separator")))
		return
	}
	out := make([]kvPair, len(kvs))
	secure := authz.SecureRequest(r)
	for i, kv := range kvs {
		if kv.Secret && !secure {
			// Listed, its value withheld, as configd's own listing does.
			if kv, err = h.st.Withhold(kv); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		out[i] = h.pair(r.Context(), kv)
	}
	writeJSON(w, http.StatusOK, out)
}

// keyList is Consul's ?keys answer: the keys under p, each cut after the
// first separator past p (so "app/db/" stands for the keys under it),
// each once.
func keyList(kvs []audit.KeyValue, p, sep string) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		k := kv.Key
		if sep != "" {
			if i := strings.Index(k[len(p):], sep); i >= 0 {
				k = k[:len(p)+i+len(sep)]
			}
		}
		if len(out) == 0 || out[len(out)-1] != k {
			out = append(out, k)
		}
	}
	return out
}

// notServedParams are the parameters of a PUT that ask for what this door
// does not serve: Consul's sessions and locks.
var notServedParams = []string{"acquire", "release"}

// PUT /v1/kv/<key>[?cas=N][&flags=N]: the body is the value.
func (h *handler) put(w http.ResponseWriter, r *http.Request, key string, q url.Values) {
	for _, p := range notServedParams {
		if q.Has(p) {
			h.fail(w, r, apierror.BadRequest("?%s is not served by configd's Consul API: configd has no sessions or locks (docs/compat.md)", p))
			return
		}
	}
	in := writeops.Op{}
	if err := h.keyWrite(r, key, q, keyspace.ValidateNew, &in); err != nil {
		h.fail(w, r, err)
		return
	}
	flags, _, err := uintParam(q, "flags", "flags")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	value, err := h.readValue(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if in.ContentType, err = h.valueType(r.Context(), key, value); err != nil {
		h.fail(w, r, err)
		return
	}
	in.Value = value
	more, err := h.flagsOps(r.Context(), key, flags)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	lost, err := h.commitOne(r, in, more...)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, lost == nil)
}

// keyWrite checks what a PUT and a DELETE of one key share: the key
// (validate: keyspace.ValidateNew for a put, Validate for a delete), the
// token's write on it, and an optional ?cas=N; it sets them on in.
func (h *handler) keyWrite(r *http.Request, key string, q url.Values, validate func(string) error, in *writeops.Op) error {
	if key == "" {
		return missingKey
	}
	if err := validate(key); err != nil {
		return apierror.WithKey(err, key)
	}
	if err := h.check(r, api.PermissionWrite, key); err != nil {
		return err
	}
	cas, isCAS, err := uintParam(q, "cas", "CAS index")
	if err != nil {
		return err
	}
	in.Key = key
	if isCAS {
		in.IfModRev = ptr(int64(cas))
	}
	return nil
}

// commitOne commits in, checked by writeops, with more (configd's own
// records of it: its flags) as one revision; a CAS that lost returns its
// conflict, and no error.
func (h *handler) commitOne(r *http.Request, in writeops.Op, more ...audit.Op) (*audit.ConflictError, error) {
	ops, err := writeops.Ops(h.st, []writeops.Op{in})
	if err != nil {
		return nil, err
	}
	_, err = h.commit(r, ops, nil, more...)
	var ce *audit.ConflictError
	if in.IfModRev != nil && errors.As(err, &ce) {
		return ce, nil
	}
	return nil, apierror.WithKey(err, in.Key)
}

func ptr[T any](v T) *T { return &v }

// tooLarge is Consul's answer to a value over the limit, with configd's
// setting to raise it.
func tooLarge(size string, limit int) error {
	return apierror.New(api.CodeTooLarge, "Request body(%s) too large, max size: %d bytes. "+
		"See configd's --max-value-size (docs/compat.md).", size, limit)
}

// readValue reads a PUT's body, at most the store's MaxValueSize bytes;
// a larger one is refused without reading it all.
func (h *handler) readValue(r *http.Request) ([]byte, error) {
	limit := h.st.MaxValueSize()
	if r.ContentLength > int64(limit) {
		return nil, tooLarge(fmt.Sprintf("%d bytes", r.ContentLength), limit)
	}
	value, err := writeops.ReadValue(io.LimitReader(r.Body, int64(limit)+1), r.ContentLength)
	if err != nil {
		return nil, bodyError(err)
	}
	if len(value) > limit {
		return nil, tooLarge(fmt.Sprintf("more than %d bytes", limit), limit)
	}
	return value, nil
}

// valueType is the content type a Consul value is stored with, Consul's
// values being bytes: the type of the key it replaces, so that a JSON or
// YAML key stays one (and its value is checked as one), unless that is
// text/plain and the value is not UTF-8; a new key's is text/plain for
// UTF-8 and application/octet-stream for other bytes.
func (h *handler) valueType(ctx context.Context, key string, value []byte) (string, error) {
	old, err := h.st.Get(ctx, key)
	switch {
	case errors.Is(err, audit.ErrNotFound):
	case err != nil:
		return "", err
	case old.ContentType != api.TypeText || utf8.Valid(value):
		return old.ContentType, nil
	}
	if utf8.Valid(value) {
		return api.TypeText, nil
	}
	return api.TypeBinary, nil
}

// commit commits ops as one revision by the request's actor, origin
// consul-api, with the reason of its X-Configd-Reason header; a prefix
// whose policy takes changes only through change requests refuses it.
// ifRev, when set, is audit.Txn.IfRev: the revision the ops were decided
// at.
func (h *handler) commit(r *http.Request, ops []audit.Op, ifRev *int64, own ...audit.Op) (audit.Revision, error) {
	return h.direct.Commit(r.Context(), h.st, audit.Txn{
		Actor:  authz.ActorFrom(r.Context()),
		Reason: r.Header.Get(api.HeaderReason),
		Origin: Origin,
		Ops:    ops,
		IfRev:  ifRev,
	}, own...)
}

// DELETE /v1/kv/<key>[?cas=N] or /v1/kv/<prefix>?recurse
func (h *handler) del(w http.ResponseWriter, r *http.Request, key string, q url.Values) {
	if q.Has("recurse") {
		h.deleteTree(w, r, key)
		return
	}
	in := writeops.Op{Delete: true}
	if err := h.keyWrite(r, key, q, keyspace.Validate, &in); err != nil {
		h.fail(w, r, err)
		return
	}
	more, err := h.flagsOps(r.Context(), key, 0) // its flags go with it
	if err != nil {
		h.fail(w, r, err)
		return
	}
	lost, err := h.commitOne(r, in, more...)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// As Consul: a key already gone is deleted whatever the index.
	writeJSON(w, http.StatusOK, lost == nil || lost.Actual == 0)
}

// deleteTree deletes every key under Consul's prefix p in one revision
// (configd's own keys never: keyspace.Own); the token needs write on p.
func (h *handler) deleteTree(w http.ResponseWriter, r *http.Request, p string) {
	if err := h.check(r, api.PermissionWrite, p); err != nil {
		h.fail(w, r, err)
		return
	}
	for attempt := 1; ; attempt++ {
		// The keys as they are at rev, deleted on condition that nothing
		// was committed since (a key created under p meanwhile is not
		// left behind): decided again when another revision came first.
		rev := h.st.Rev()
		ops, err := h.treeOps(r, p)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if len(ops) > 0 {
			_, err = h.commit(r, ops, &rev)
		}
		var ce *audit.ConflictError
		if errors.As(err, &ce) && ce.Key == "" && attempt < maxTxnAttempts {
			continue
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, true)
		return
	}
}

// treeOps are the deletes of every key under Consul's prefix p but
// configd's own.
func (h *handler) treeOps(r *http.Request, p string) ([]audit.Op, error) {
	kvs, _, _, err := h.readPrefix(r.Context(), r, p)
	if err != nil {
		return nil, err
	}
	var ops []audit.Op
	for _, kv := range kvs {
		if !keyspace.Own(kv.Key) {
			ops = append(ops, audit.Delete(kv.Key))
		}
	}
	return ops, nil
}
