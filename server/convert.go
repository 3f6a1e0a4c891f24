package server

import (
	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
)

// Conversions from the store's types to the wire types. Slices are never
// nil, so that JSON carries [] and not null.

func toAPIKV(kv audit.KeyValue) api.KeyValue {
	v, enc := api.EncodeValue(kv.Value)
	return api.KeyValue{
		Key:         kv.Key,
		Value:       v,
		Encoding:    enc,
		ContentType: kv.ContentType,
		CreateRev:   kv.CreateRev,
		ModRev:      kv.ModRev,
		Version:     kv.Version,
	}
}

func toAPIKVs(kvs []audit.KeyValue) []api.KeyValue {
	out := make([]api.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = toAPIKV(kv)
	}
	return out
}

func toAPIKVPtr(kv *audit.KeyValue) *api.KeyValue {
	if kv == nil {
		return nil
	}
	a := toAPIKV(*kv)
	return &a
}

func toAPIChanges(cs []audit.Change) []api.Change {
	out := make([]api.Change, len(cs))
	for i, c := range cs {
		out[i] = api.Change{
			Key: c.Key,
			Op:  c.Type.String(),
			Old: toAPIKVPtr(c.Old),
			New: toAPIKVPtr(c.New),
		}
	}
	return out
}

func toAPIRevision(r audit.Revision) api.Revision {
	return api.Revision{
		Rev:        r.Rev,
		Time:       r.Time,
		Actor:      r.Actor,
		Reason:     r.Reason,
		Origin:     r.Origin,
		RollbackTo: r.RollbackTo,
		NumChanges: r.NumChanges,
		Changes:    toAPIChanges(r.Changes),
	}
}

func toAPIRevisions(rs []audit.Revision) []api.Revision {
	out := make([]api.Revision, len(rs))
	for i, r := range rs {
		out[i] = toAPIRevision(r)
	}
	return out
}
