package consulapi

import (
	"context"
	"errors"
	"strconv"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

// A key's Consul flags (PUT ?flags=N, a txn op's Flags) other than 0 live
// in a record of configd's own, keyspace.ConsulFlagsKey(key), written in
// the same revision as the key, whose value is the flags in decimal. They
// count while the record is at least as new as the key's mod_revision (a
// PUT that changes only the flags leaves the key's revision as it was): a
// write of the key through any other door (configd's API, etcd's, a
// rollback) makes the key newer than the record, and its flags 0, as a
// Consul PUT without ?flags does. A PUT with flags 0 deletes the record.

// flagsOf returns the Consul flags of kv.
func (h *handler) flagsOf(ctx context.Context, kv audit.KeyValue) uint64 {
	rec, err := h.st.Get(ctx, keyspace.ConsulFlagsKey(kv.Key))
	if err != nil || rec.ModRev < kv.ModRev {
		return 0
	}
	n, err := strconv.ParseUint(string(rec.Value), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// pair is kv as Consul answers it, with its flags.
func (h *handler) pair(ctx context.Context, kv audit.KeyValue) kvPair {
	p := pairOf(kv)
	p.Flags = h.flagsOf(ctx, kv)
	return p
}

// flagsOps returns the ops that give key flags in the revision that
// writes it: the record written (flags other than 0), deleted (0, when a
// record is there), or nothing.
func (h *handler) flagsOps(ctx context.Context, key string, flags uint64) ([]audit.Op, error) {
	rk := keyspace.ConsulFlagsKey(key)
	if flags != 0 {
		return []audit.Op{audit.Put(rk, []byte(strconv.FormatUint(flags, 10)), "")}, nil
	}
	_, err := h.st.Get(ctx, rk)
	switch {
	case errors.Is(err, audit.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return []audit.Op{audit.Delete(rk)}, nil
}
