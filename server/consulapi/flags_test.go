package consulapi_test

import (
	"errors"
	"regexp"
	"testing"

	consul "github.com/hashicorp/consul/api"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

// TestFlagsAreKeptWithTheKeyUntilAnotherDoorWritesIt: a PUT's flags come
// back from gets, lists and txns; a change of the flags alone keeps the
// key's revision; a write through configd's own API resets them to 0, as a
// Consul PUT without flags does; a delete takes their record with it; the
// consul CLI's -flags and -detailed see them.
func TestFlagsAreKeptWithTheKeyUntilAnotherDoorWritesIt(t *testing.T) {
	d := newDoor(t)
	kv := d.client(t, "")
	flagsOf := func(key string) uint64 {
		t.Helper()
		p, _, err := kv.Get(key, nil)
		if err != nil || p == nil {
			t.Fatalf("get %s: %v %v", key, p, err)
		}
		return p.Flags
	}
	if _, err := kv.Put(&consul.KVPair{Key: "app/a", Value: []byte("1"), Flags: 42}, nil); err != nil {
		t.Fatal(err)
	}
	if f := flagsOf("app/a"); f != 42 {
		t.Fatalf("flags %d, want 42", f)
	}
	before, _ := d.c.Store.Get(t.Context(), "app/a")
	if _, err := kv.Put(&consul.KVPair{Key: "app/a", Value: []byte("1"), Flags: 7}, nil); err != nil {
		t.Fatal(err)
	}
	after, _ := d.c.Store.Get(t.Context(), "app/a")
	if f := flagsOf("app/a"); f != 7 || after.ModRev != before.ModRev {
		t.Fatalf("flags %d at mod_revision %d, want 7 at %d (the value did not change)", f, after.ModRev, before.ModRev)
	}
	if ps, _, err := kv.List("app/", nil); err != nil || len(ps) != 1 || ps[0].Flags != 7 {
		t.Fatalf("list: %v %v", ps, err)
	}
	d.put(t, "app/a", "2") // configd's own API
	if f := flagsOf("app/a"); f != 0 {
		t.Fatalf("flags %d after a write through configd's API, want 0", f)
	}
	mustCLI(t, d, "Success! Data written to: app/b", "kv", "put", "-flags=5", "app/b", "x")
	if out, ok := consulCLI(t, d, "kv", "get", "-detailed", "app/b"); !ok || !regexp.MustCompile(`(?m)^Flags\s+5$`).MatchString(out) {
		t.Fatalf("kv get -detailed: %q (ok %v), want a line Flags 5", out, ok)
	}
	if _, err := kv.Delete("app/b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.c.Store.Get(t.Context(), keyspace.ConsulFlagsKey("app/b")); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("the flags' record outlived its key: %v", err)
	}
	if _, err := kv.Put(&consul.KVPair{Key: "app/b", Value: []byte("y")}, nil); err != nil {
		t.Fatal(err)
	}
	if f := flagsOf("app/b"); f != 0 {
		t.Fatalf("a key put again without flags has flags %d", f)
	}
}
