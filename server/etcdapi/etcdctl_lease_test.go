package etcdapi_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestEtcdctlLeases: etcdctl (3.4 and 3.7.3) grants a lease, puts a key with
// it, keeps it alive once, reads its time to live with its keys, lists
// and revokes it, with etcd's answers; the revoke deletes the key, and a
// second revoke is etcd's "lease not found".
func TestEtcdctlLeases(t *testing.T) {
	eachEtcdctl(t, func(t *testing.T, ctl etcdctl) { etcdctlLeases(t, ctl) })
}

func etcdctlLeases(t *testing.T, ctl etcdctl) {
	e := startConfigd(t)
	addr := e.Addr
	var id string
	if _, err := fmt.Sscanf(ctl.must(addr, "", "lease", "grant", "5"), "lease %s granted with TTL(5s)", &id); err != nil {
		t.Fatalf("lease grant 5: %v", err)
	}
	if out := ctl.must(addr, "", "put", "--lease="+id, "app/a", "1"); strings.TrimSpace(out) != "OK" {
		t.Fatalf("put --lease: %q", out)
	}
	if out := ctl.must(addr, "", "lease", "keep-alive", "--once", id); strings.TrimSpace(out) != "lease "+id+" keepalived with TTL(5)" {
		t.Fatalf("lease keep-alive --once: %q", out)
	}
	out := ctl.must(addr, "", "lease", "timetolive", "--keys", id)
	if want := "lease " + id + " granted with TTL(5s), remaining("; !strings.HasPrefix(out, want) || !strings.Contains(out, "attached keys([app/a])") {
		t.Fatalf("lease timetolive --keys: %q, want %q... attached keys([app/a])", out, want)
	}
	if got := lines(ctl.must(addr, "", "lease", "list")); len(got) != 2 || got[0] != "found 1 leases" || got[1] != id {
		t.Fatalf("lease list: %q", got)
	}
	if out := ctl.must(addr, "", "lease", "revoke", id); strings.TrimSpace(out) != "lease "+id+" revoked" {
		t.Fatalf("lease revoke: %q", out)
	}
	if got := lines(ctl.must(addr, "", "get", "app/", "--prefix")); len(got) != 0 {
		t.Fatalf("get app/ after the revoke: %q", got)
	}
	if out, err := ctl.run(addr, "", "lease", "revoke", id); err == nil || !strings.Contains(out, "etcdserver: requested lease not found") {
		t.Fatalf("second revoke: %v %q, want etcd's lease not found", err, out)
	}
	if out := ctl.must(addr, "", "lease", "timetolive", id); strings.TrimSpace(out) != "lease "+id+" already expired" {
		t.Fatalf("lease timetolive of a revoked lease: %q", out)
	}
	if out, err := ctl.run(addr, "", "put", "--lease=1234abcd", "app/b", "1"); err == nil || !strings.Contains(out, "etcdserver: requested lease not found") {
		t.Fatalf("put with an unknown lease: %v %q", err, out)
	}
}
