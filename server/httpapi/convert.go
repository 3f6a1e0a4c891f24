package httpapi

import (
	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
)

// Conversions from the store's types to the wire types. Slices are never
// nil, so that JSON carries [] and not null.

// toAPIKV converts a value to serve: a secret's plaintext too, when the
// store gave it (Get, List, watches), or its digest when it withheld it.
func toAPIKV(kv audit.KeyValue) api.KeyValue {
	out := api.KeyValue{
		Key:         kv.Key,
		ContentType: kv.ContentType,
		CreateRev:   kv.CreateRev,
		ModRev:      kv.ModRev,
		Version:     kv.Version,
		Secret:      kv.Secret,
	}
	if kv.Withheld() {
		out.Hash, out.Length = kv.Hash, kv.Length
		return out
	}
	out.Value, out.Encoding = api.EncodeValue(kv.Value)
	return out
}

// toAPIRecorded converts a value of the history (a revision, a diff, a
// rollback): a secret's value never goes out, even should the store have
// left it in.
func toAPIRecorded(kv *audit.KeyValue) *api.KeyValue {
	if kv == nil {
		return nil
	}
	if kv.Secret && !kv.Withheld() {
		return &api.KeyValue{Key: kv.Key, ContentType: kv.ContentType, CreateRev: kv.CreateRev,
			ModRev: kv.ModRev, Version: kv.Version, Secret: true, Length: len(kv.Value)}
	}
	a := toAPIKV(*kv)
	return &a
}

func toAPIKVs(kvs []audit.KeyValue) []api.KeyValue {
	out := make([]api.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = toAPIKV(kv)
	}
	return out
}

func toAPIChanges(cs []audit.Change) []api.Change {
	out := make([]api.Change, len(cs))
	for i, c := range cs {
		out[i] = api.Change{
			Key: c.Key,
			Op:  c.Type.String(),
			Old: toAPIRecorded(c.Old),
			New: toAPIRecorded(c.New),
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
