// Package writeops holds the rules every door applies to a write before it
// reaches the store, so that a write through HTTP and one through gRPC are
// refused the same way with the same words: a transaction's ops (each key
// once, values within the store's limit, secrets only with a master key,
// no negative if_mod_rev), the too_large and no_master_key refusals, the
// origin the doors record, and how a PUT's value is read (ReadValue).
package writeops

import (
	"fmt"
	"io"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
)

// OriginAPI is the origin recorded for writes made through the API, over
// HTTP or gRPC.
const OriginAPI = "api"

// Store is what the checks read of the store: audit.Store.
type Store interface {
	MaxValueSize() int
	SecretsEnabled() bool
}

var _ Store = (*audit.Store)(nil)

// Direct returns the checks every door applies to its direct writes and
// rollbacks of st (not to a change request's publish, nor to a rollout's
// own writes): the policies that take changes only through change
// requests (requests.Direct), and the keys of running rollouts
// (rollouts.Guard).
func Direct(st requests.Getter) *requests.Direct {
	return requests.NewDirect(st, rollouts.NewGuard(st))
}

// NoMasterKey refuses to write a secret on a configd without a master key.
func NoMasterKey(key string) *apierror.Error {
	return &apierror.Error{Code: api.CodeNoMasterKey, Key: key,
		Message: fmt.Sprintf("key %q cannot be made secret: configd has no master key; start it with --master-key-file "+
			"(or CONFIGD_MASTER_KEY_FILE, or CONFIGD_MASTER_KEY holding the key in base64); see docs/security.md", key)}
}

// ValueTooLarge refuses the value of a single-key put: size says how
// large it is ("N bytes", or "more than N bytes" when it was not read
// whole), limit is the store's MaxValueSize.
func ValueTooLarge(size string, limit int) error {
	return apierror.New(api.CodeTooLarge, "value is %s; the limit is %d bytes", size, limit)
}

// Deleted checks the revision of a single-key delete: one that changed
// nothing found no key to delete, and is answered not_found.
func Deleted(key string, rev audit.Revision) error {
	if len(rev.Changes) == 0 {
		return &apierror.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("key %q not found", key), Key: key}
	}
	return nil
}

// IfModRev makes op conditional on the key's mod_rev being ifModRev, when
// it is set; a negative one is refused.
func IfModRev(op audit.Op, ifModRev *int64) (audit.Op, *apierror.Error) {
	if ifModRev == nil {
		return op, nil
	}
	if *ifModRev < 0 {
		return op, apierror.BadRequest("if_mod_rev %d is negative", *ifModRev)
	}
	return op.WithModRev(*ifModRev), nil
}

// Op is one operation of a transaction as a door received it, its value
// decoded.
type Op struct {
	Delete      bool
	Key         string
	Value       []byte
	ContentType string
	Secret      bool
	// Encoding is the value's encoding as the HTTP door received it: only
	// checked to be empty on a delete.
	Encoding string
	// IfModRev, when set, makes the op conditional on the key's mod_rev.
	IfModRev *int64
}

// Txn checks the ops of one transaction in order and converts them for the
// store. A door calls Key for op i, then, once it has decoded the op, Add;
// each error names the op by its index. Doors that decode nothing call
// Ops.
type Txn struct {
	st   Store
	seen map[string]int
	ops  []audit.Op
}

// NewTxn starts the checks of a transaction of n ops; none is refused.
func NewTxn(st Store, n int) (*Txn, error) {
	if n == 0 {
		return nil, apierror.BadRequest("the transaction has no ops")
	}
	return &Txn{st: st, seen: make(map[string]int, n), ops: make([]audit.Op, 0, n)}, nil
}

// Key checks the key of op i: a valid key, not in an earlier op.
func (t *Txn) Key(i int, key string) error {
	if err := keyspace.Validate(key); err != nil {
		return apierror.WithKey(fmt.Errorf("ops[%d]: %w", i, err), key)
	}
	if j, dup := t.seen[key]; dup {
		e := apierror.BadRequest("ops[%d]: key %q is already in ops[%d]; a transaction touches each key once", i, key, j)
		e.Key = key
		return e
	}
	t.seen[key] = i
	return nil
}

// Add checks op i, whose key Key has checked, and adds it.
func (t *Txn) Add(i int, o Op) error {
	var op audit.Op
	if o.Delete {
		if len(o.Value) > 0 || o.Encoding != "" || o.ContentType != "" || o.Secret {
			return apierror.WithKey(apierror.BadRequest("ops[%d]: a delete takes no value, encoding, content_type or secret", i), o.Key)
		}
		op = audit.Delete(o.Key)
	} else {
		if limit := t.st.MaxValueSize(); len(o.Value) > limit {
			return apierror.WithKey(apierror.New(api.CodeTooLarge,
				"ops[%d]: value is %d bytes; the limit is %d", i, len(o.Value), limit), o.Key)
		}
		op = audit.Put(o.Key, o.Value, o.ContentType)
		if o.Secret {
			if !t.st.SecretsEnabled() {
				return NoMasterKey(o.Key)
			}
			op.Secret = true
		}
	}
	op, err := IfModRev(op, o.IfModRev)
	if err != nil {
		return apierror.WithKey(apierror.BadRequest("ops[%d]: %s", i, err.Message), o.Key)
	}
	t.ops = append(t.ops, op)
	return nil
}

// Ops returns the ops added so far, for the store.
func (t *Txn) Ops() []audit.Op { return t.ops }

// Ops checks the decoded ops of a transaction (NewTxn, Key and Add for
// each) and converts them for the store.
func Ops(st Store, in []Op) ([]audit.Op, error) {
	t, err := NewTxn(st, len(in))
	if err != nil {
		return nil, err
	}
	for i, o := range in {
		if err := t.Key(i, o.Key); err != nil {
			return nil, err
		}
		if err := t.Add(i, o); err != nil {
			return nil, err
		}
	}
	return t.Ops(), nil
}

// ReadValue reads a write's value from body, whose length the request
// declared as size (-1: it did not; the caller refuses a size above its
// limit first), into a buffer of that length and one byte, room to meet
// the body's end without growing; a body that ends short of size is
// io.ErrUnexpectedEOF, and one longer than it declared is read whole, for
// the caller's limit to judge. io.ReadAll's buffer grows by doubling from
// 512 bytes, and a value keeps its buffer alive for as long as it is its
// key's: a 200-byte value kept 512 bytes, and such buffers were 45% of
// configd's heap after 600,000 writes over HTTP (BENCHMARKS.md, issue 17).
func ReadValue(body io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return io.ReadAll(body)
	}
	b := make([]byte, 0, size+1)
	for len(b) < cap(b) {
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		switch {
		case err == io.EOF && int64(len(b)) < size:
			return b, io.ErrUnexpectedEOF
		case err == io.EOF:
			return b, nil
		case err != nil:
			return b, err
		}
	}
	rest, err := io.ReadAll(body) // longer than declared
	return append(b, rest...), err
}
