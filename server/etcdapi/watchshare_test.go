package etcdapi

import "testing"

// TestSharedMsgsAreOnePerKeyAndRevision: watches of the same range,
// options and ID share one message per revision; any difference gets its
// own; only the newest revisions keep theirs.
func TestSharedMsgsAreOnePerKeyAndRevision(t *testing.T) {
	var m sharedMsgs
	k := sharedKey{rev: 10, r: keyRange{key: "app/x", single: true}}
	a := m.get(k)
	if m.get(k) != a {
		t.Fatal("two watches of one key and revision got two messages")
	}
	for name, other := range map[string]sharedKey{
		"another revision": {rev: 11, r: k.r},
		"another watch ID": {rev: 10, id: 1, r: k.r},
		"another range":    {rev: 10, r: keyRange{key: "app/", end: "app0", prefix: "app/"}},
		"prev_kv":          {rev: 10, r: k.r, prevKV: true},
		"a secure stream":  {rev: 10, r: k.r, prevKV: true, secure: true},
	} {
		if m.get(other) == a {
			t.Errorf("%s shares the message", name)
		}
	}
	m.get(sharedKey{rev: 10 + keepRevs, r: k.r})
	if _, kept := m.revs[10]; kept {
		t.Errorf("revision 10 kept its messages at revision %d", 10+keepRevs)
	}
	if _, kept := m.revs[11]; !kept {
		t.Errorf("revision 11 lost its messages at revision %d", 10+keepRevs)
	}
}
