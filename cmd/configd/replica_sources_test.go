package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
)

// testASourceRunsOnceAcrossItsReplicasDeath: a file source configured on
// every replica is synced by one of them (the registry says which); a
// change to it is one revision; when that replica is killed, another takes
// the source over within the lease and records the change made meanwhile
// as one revision, deleting nothing that did not change.
func testASourceRunsOnceAcrossItsReplicasDeath(t *testing.T, etcd *testserver.EtcdCluster) {
	dir := t.TempDir()
	files := filepath.Join(dir, "config")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(host string) {
		t.Helper()
		// A new file moved into place: the source never reads half of it.
		tmp := filepath.Join(dir, "db.yaml.tmp")
		if err := os.WriteFile(tmp, []byte("host: "+host+"\nport: 5432\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(files, "db.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write("db1")
	conf := filepath.Join(dir, "configd.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("sources:\n  - name: files\n    type: file\n    path: %s\n    mount: app/\n", files)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := configdtest.NewCluster(t, bin, etcd.Endpoints, "/"+filepath.Base(t.Name()), "--config", conf, "--etcd-lease-ttl", "2s").Start(2)
	ds := replicaDaemons(t, c)
	// leader is the replica the registry lists as syncing the source, once
	// every replica listed agrees there is exactly one.
	leader := func(d *daemon, alive int) int {
		t.Helper()
		who := -1
		waitFor(t, "one replica syncing the source", func() bool {
			var rs api.ReplicasResponse
			if d.call(http.MethodGet, "/v1/replicas", nil, &rs) != nil || len(rs.Replicas) != alive {
				return false
			}
			n := 0
			for _, r := range rs.Replicas {
				if slices.Contains(r.Sources, "files") {
					n, who = n+1, slices.IndexFunc(ds, func(d *daemon) bool { return d.Addr == r.Addr })
				}
			}
			return n == 1 && who >= 0
		})
		return who
	}
	first := ds[0].waitValue("app/db/host", "db1")
	l := leader(ds[0], 2)
	write("db2")
	second := ds[1-l].waitValue("app/db/host", "db2")

	ds[l].Signal(syscall.SIGKILL)
	ds[l].Wait()
	write("db3") // while nobody syncs the source: the lease still runs
	survivor := ds[1-l]
	third := survivor.waitValue("app/db/host", "db3")
	if got := leader(survivor, 1); got != 1-l {
		t.Fatalf("replica %d syncs the source, want the survivor %d", got, 1-l)
	}
	// One revision per change, and the unchanged key was never touched.
	var h api.HistoryResponse
	survivor.mustCall(http.MethodGet, "/v1/history?prefix=app/", nil, &h)
	var revs []int64
	for _, r := range h.Revisions {
		revs = append(revs, r.Rev)
		for _, ch := range r.Changes {
			if ch.Key == "app/db/port" && r.Rev != first {
				t.Errorf("revision %d changed app/db/port (%s), which never changed", r.Rev, ch.Op)
			}
		}
	}
	if want := []int64{third, second, first}; !slices.Equal(revs, want) {
		t.Fatalf("the source's revisions: %v, want %v (one per change)", revs, want)
	}
}
