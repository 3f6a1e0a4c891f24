package chain

import "github.com/configd/configd/audit/record"

// Head is the commit path's running end of the chain: the hash of the
// newest revision and the LtHash of the state it produced, as of the newest
// durable revision (the head) and as of the newest revision decided in the
// batch under way (pending). It is not safe for concurrent use: the
// commit path's one goroutine owns it.
type Head struct {
	hash, pending []byte
	enc           chainEncoder
	state         stateSum
}

// NewHead returns the head of a chain whose newest revision has the hash
// hash (nil: no revision yet) and whose state has the LtHash state.
func NewHead(hash []byte, state LtHash) *Head {
	h := &Head{hash: hash}
	h.state.head = state
	return h
}

// Begin starts a batch: pending is the head.
func (h *Head) Begin() {
	h.pending = h.hash
	h.state.pending = h.state.head
}

// Add chains r, a revision as it is stored (secret values sealed), after
// the pending one: it moves the pending LtHash from the rows that r's
// changes replace, oldKV[i] of r.Changes[i] and oldLayer[i] of
// r.LayerChanges[i] as stored (nil: no row), to the rows it writes, and
// returns the digest of the state after r and r's hash, which covers it.
func (h *Head) Add(r *record.Revision, oldKV []*record.KeyValue, oldLayer []*record.LayerValue) (hash, digest []byte) {
	st := &h.state
	for i, c := range r.Changes {
		if oldKV[i] != nil {
			st.h.kvRow(&st.pending, c.Key, oldKV[i], true)
		}
		if c.New != nil {
			st.h.kvRow(&st.pending, c.Key, c.New, false)
		}
	}
	for i, lc := range r.LayerChanges {
		if oldLayer[i] != nil {
			st.h.layerRow(&st.pending, lc.Layer, lc.Key, oldLayer[i], true)
		}
		if lc.New != nil {
			st.h.layerRow(&st.pending, lc.Layer, lc.Key, lc.New, false)
		}
	}
	digest = st.pending.digest()
	h.pending = h.enc.revisionHash(h.pending, r, digest)
	return h.pending, digest
}

// Advance makes the batch's pending revisions the head: they are durable.
// A batch that fails is dropped by the next Begin.
func (h *Head) Advance() {
	h.hash = h.pending
	h.state.head = h.state.pending
}

// State returns the LtHash of the state after the pending revisions.
func (h *Head) State() LtHash { return h.state.pending }
