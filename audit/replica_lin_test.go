package audit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// A linearizable key-value model of what configd's clients see, for
// porcupine: puts, compare-and-sets on a key's mod_rev, and linearizable
// reads (Sync, then Get), each key on its own. An operation that failed
// with ErrStoreUnavailable may or may not have taken effect: its outcome
// is unknown, and it may take effect at any time after its call.

type opKind int

const (
	opRead opKind = iota
	opPut
	opCAS
)

type kvInput struct {
	kind   opKind
	key    string
	value  string // put, cas
	expect int64  // cas: the mod_rev expected (0: the key must not exist)
}

type kvOutput struct {
	unknown  bool   // failed: it may or may not have taken effect
	conflict bool   // cas: refused
	value    string // read
	modRev   int64  // read: the key's mod_rev; put, cas: the revision; conflict: the key's mod_rev
}

// kvState is a key's value and mod_rev; modRev -1: a write of unknown
// outcome set the value, at a revision no one saw.
type kvState struct {
	value  string
	modRev int64
}

var kvModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvInput).key
			if byKey[k] == nil {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{kvState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		st, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
		known := st.modRev >= 0
		switch in.kind {
		case opRead:
			if out.value == st.value && (!known || out.modRev == st.modRev) {
				return []interface{}{kvState{out.value, out.modRev}}
			}
			return nil
		case opPut:
			if out.unknown {
				return []interface{}{st, kvState{in.value, -1}}
			}
			return []interface{}{kvState{in.value, out.modRev}}
		}
		// opCAS
		match := !known || st.modRev == in.expect
		switch {
		case out.unknown && known && !match:
			return []interface{}{st}
		case out.unknown:
			return []interface{}{st, kvState{in.value, -1}}
		case out.conflict && known && st.modRev == in.expect:
			return nil
		case out.conflict && known && out.modRev != st.modRev:
			return nil
		case out.conflict:
			return []interface{}{kvState{st.value, out.modRev}}
		case !match:
			return nil
		}
		return []interface{}{kvState{in.value, out.modRev}}
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch {
		case out.unknown:
			return fmt.Sprintf("%v %s %q (expect %d) -> unknown", in.kind, in.key, in.value, in.expect)
		case in.kind == opRead:
			return fmt.Sprintf("read %s -> %q@%d", in.key, out.value, out.modRev)
		}
		return fmt.Sprintf("%v %s %q (expect %d) -> rev %d conflict %v", in.kind, in.key, in.value, in.expect, out.modRev, out.conflict)
	},
}

// runOp runs one operation on s, as a client would.
func runOp(s *Store, in kvInput) kvOutput {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if in.kind == opRead {
		if _, err := s.Sync(ctx); err != nil {
			return kvOutput{unknown: true} // a failed read: dropped
		}
		kv, err := s.Get(ctx, in.key)
		if errors.Is(err, ErrNotFound) {
			return kvOutput{}
		}
		if err != nil {
			return kvOutput{unknown: true}
		}
		return kvOutput{value: string(kv.Value), modRev: kv.ModRev}
	}
	op := Put(in.key, []byte(in.value), "")
	if in.kind == opCAS {
		op.IfModRev = &in.expect
	}
	r, err := s.Commit(ctx, Txn{Actor: "lin", Ops: []Op{op}})
	var ce *ConflictError
	switch {
	case errors.As(err, &ce):
		return kvOutput{conflict: true, modRev: ce.Actual}
	case err != nil:
		return kvOutput{unknown: true}
	}
	return kvOutput{modRev: r.Rev}
}

// history records the operations the clients ran, with their call and
// return times.
type opHistory struct {
	mu               sync.Mutex
	ops              []porcupine.Operation
	unknown, refused int
}

type ackedWrite struct {
	key, value string
	rev        int64
}

func (h *opHistory) add(client int, in kvInput, out kvOutput, call, ret int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if out.unknown && in.kind == opRead {
		h.refused++
		return // a read that failed changed nothing
	}
	if out.unknown {
		h.unknown++
		ret = math.MaxInt64 // it may take effect at any time after its call
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// operations returns the history and the writes that were acknowledged.
func (h *opHistory) operations() ([]porcupine.Operation, []ackedWrite) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var acked []ackedWrite
	for _, op := range h.ops {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		if in.kind != opRead && !out.unknown && !out.conflict {
			acked = append(acked, ackedWrite{in.key, in.value, out.modRev})
		}
	}
	return h.ops, acked
}

func (k opKind) String() string { return [...]string{"read", "put", "cas"}[k] }
