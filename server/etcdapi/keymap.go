package etcdapi

import (
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
)

// keyMap maps the etcd API's keys onto configd's, and back: the etcd API
// shows configd's key K as prefix+K (WithKeyPrefix), as etcd's client-side
// namespace (go.etcd.io/etcd/client/v3/namespace) does, on the server. It
// is the one place that knows the prefix: requests are parsed through in,
// key and parseRange; every key answered goes out through out or pbKV.
// The zero keyMap (no prefix) shows configd's keys as they are.
type keyMap struct {
	prefix string
}

// in maps the etcd key key onto configd's key; a key outside the prefix
// is refused, naming it.
func (m keyMap) in(key string) (string, error) {
	if !strings.HasPrefix(key, m.prefix) {
		return "", apierror.WithKey(&apierror.Error{Code: api.CodeBadKey, Key: key, Message: fmt.Sprintf(
			"key %q is outside the etcd API's key prefix %q (--etcd-api-prefix): the etcd API's keys are %q followed by configd's key; write %q (see docs/compat.md)",
			key, m.prefix, m.prefix, m.prefix+key)}, key)
	}
	return key[len(m.prefix):], nil
}

// key maps the etcd key key onto configd's and checks it with rule; an
// error names the key the client sent.
func (m keyMap) key(key []byte, rule func(string) error) (string, error) {
	k, err := m.in(string(key))
	if err != nil {
		return "", err
	}
	return k, m.named(string(key), k, m.checkKey(k, rule))
}

// named makes err, about configd's key k, name the etcd key the client
// sent.
func (m keyMap) named(sent, k string, err error) error {
	if err == nil || m.prefix == "" {
		return err
	}
	return apierror.WithKey(&apierror.Error{Code: api.CodeBadKey, Key: sent, Message: fmt.Sprintf(
		"etcd key %q (configd's key %q under the etcd API's key prefix %q): %s", sent, k, m.prefix, apierror.Classify(err).Message)}, sent)
}

// parseRange reads an etcd request's key and range_end as the range of
// configd's keys it names. With a prefix, a single key outside it is
// refused; a range is intersected with the prefix's (every key from key
// on, for a range_end of "\x00"): none, when they do not meet.
func (m keyMap) parseRange(key, end []byte) (keyRange, error) {
	if len(key) == 0 {
		return keyRange{}, rpctypes.ErrGRPCEmptyKey // as etcd: every key is "\x00" to "\x00"
	}
	if m.prefix == "" {
		return m.parseKeys(string(key), string(end))
	}
	if len(end) == 0 {
		k, err := m.in(string(key))
		if err != nil {
			return keyRange{}, err
		}
		r, err := m.parseKeys(k, "")
		return r, m.named(string(key), k, err)
	}
	// [lo, hi) is [key, end) within [prefix, pend); allFrom is no end
	// (pend's too, for a prefix of 0xff bytes).
	lo, hi := max(string(key), m.prefix), string(end)
	pend := clientv3.GetPrefixRangeEnd(m.prefix)
	if hi == allFrom || pend != allFrom && hi > pend {
		hi = pend
	}
	if hi != allFrom && lo >= hi {
		return keyRange{none: true}, nil
	}
	k, e := lo[len(m.prefix):], allFrom
	if hi != pend {
		e = hi[len(m.prefix):]
		if e == allFrom {
			// [prefix+k, prefix+"\x00"): configd's key "" alone, which
			// is no key.
			return keyRange{none: true}, nil
		}
	}
	r, err := m.parseKeys(k, e)
	return r, m.named(string(key), k, err)
}

// out maps configd's key k onto the etcd API's.
func (m keyMap) out(k string) []byte {
	return []byte(m.prefix + k)
}

// pbKV is kv as etcd answers it, its key mapped out.
func (m keyMap) pbKV(kv audit.KeyValue, keysOnly bool) *mvccpb.KeyValue {
	out := &mvccpb.KeyValue{Key: m.out(kv.Key), CreateRevision: kv.CreateRev, ModRevision: kv.ModRev, Version: kv.Version}
	if !keysOnly {
		out.Value = kv.Value
	}
	return out
}

// noneWatched is the refusal of a watch of a range that holds no key of
// the etcd API's: it could never see an event.
func (m keyMap) noneWatched(key, end []byte) error {
	return apierror.New(api.CodeBadKey, "the range [%q, %q) holds no key of the etcd API: its keys are %q followed by configd's key "+
		"(--etcd-api-prefix); watch a range that meets it (see docs/compat.md)", key, end, m.prefix)
}
