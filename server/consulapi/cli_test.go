package consulapi_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/internal/testserver"
)

// consulCLI runs the real consul CLI against d, as a user runs it
// (CONSUL_HTTP_ADDR), and returns its output and whether it succeeded.
func consulCLI(t *testing.T, d *door, args ...string) (string, bool) {
	t.Helper()
	bin := testserver.Binary(t, "consul")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"CONSUL_HTTP_ADDR=" + d.addr, "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err == nil
}

func mustCLI(t *testing.T, d *door, want string, args ...string) {
	t.Helper()
	out, ok := consulCLI(t, d, args...)
	if !ok || out != want {
		t.Fatalf("consul %s: %q (ok %v), want %q", strings.Join(args, " "), out, ok, want)
	}
}

func TestConsulCLIReadsAndWritesConfigd(t *testing.T) {
	d := newDoor(t)

	mustCLI(t, d, "Success! Data written to: app/db/host", "kv", "put", "app/db/host", "db2")
	if v, _ := d.value(t, "app/db/host"); v != "db2" {
		t.Fatalf("configd holds %q, want db2", v)
	}
	rev := d.last(t)
	if !strings.HasPrefix(rev.Actor, "consul-api@127.0.0.1") || rev.Origin != "consul-api" {
		t.Fatalf("revision by %q from %q, want consul-api@127.0.0.1 from consul-api", rev.Actor, rev.Origin)
	}
	mustCLI(t, d, "Success! Data written to: app/db/port", "kv", "put", "app/db/port", "5432")
	mustCLI(t, d, "Success! Data written to: app/name", "kv", "put", "app/name", "shop")
	d.put(t, "apple", "not under app/")

	mustCLI(t, d, "db2", "kv", "get", "app/db/host")
	mustCLI(t, d, "app/db/host:db2\napp/db/port:5432\napp/name:shop", "kv", "get", "-recurse", "app/")
	mustCLI(t, d, "app/db/\napp/name", "kv", "get", "-keys", "-separator=/", "app/")
	if out, ok := consulCLI(t, d, "kv", "get", "app/nothing"); ok || !strings.Contains(out, "No key exists at: app/nothing") {
		t.Fatalf("get of a missing key: %q (ok %v)", out, ok)
	}

	// -cas -modify-index: the index of the key's revision wins once.
	idx := d.last(t).Rev
	kv, err := d.c.Store.Get(context.Background(), "app/name")
	if err != nil {
		t.Fatal(err)
	}
	if out, ok := consulCLI(t, d, "kv", "put", "-cas", "-modify-index="+strconv.FormatInt(kv.ModRev-1, 10), "app/name", "stale"); ok || !strings.Contains(out, "CAS failed") {
		t.Fatalf("put -cas at a stale index: %q (ok %v)", out, ok)
	}
	if d.last(t).Rev != idx {
		t.Fatal("a failed CAS made a revision")
	}
	mustCLI(t, d, "Success! Data written to: app/name", "kv", "put", "-cas", "-modify-index="+strconv.FormatInt(kv.ModRev, 10), "app/name", "shop2")
	if v, _ := d.value(t, "app/name"); v != "shop2" {
		t.Fatalf("after the CAS configd holds %q", v)
	}

	// export, then import elsewhere: a round trip through Consul's format.
	exported, ok := consulCLI(t, d, "kv", "export", "app/db/")
	if !ok || !strings.Contains(exported, `"key": "app/db/host"`) {
		t.Fatalf("kv export: %q (ok %v)", exported, ok)
	}
	other := newDoor(t)
	file := filepath.Join(t.TempDir(), "export.json")
	if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, other, "Imported: app/db/host\nImported: app/db/port", "kv", "import", "@"+file)
	if v, _ := other.value(t, "app/db/port"); v != "5432" {
		t.Fatalf("imported app/db/port is %q", v)
	}

	mustCLI(t, d, "Success! Deleted key: app/name", "kv", "delete", "app/name")
	if _, ok := d.value(t, "app/name"); ok {
		t.Fatal("app/name still there")
	}
	before := d.c.Store.Rev()
	mustCLI(t, d, "Success! Deleted keys with prefix: app/", "kv", "delete", "-recurse", "app/")
	rev = d.last(t)
	if rev.Rev != before+1 || len(rev.Changes) != 2 || rev.Origin != "consul-api" {
		t.Fatalf("delete -recurse: revision %d with %d changes from %q, want one revision deleting 2 keys", rev.Rev, len(rev.Changes), rev.Origin)
	}
	if v, ok := d.value(t, "apple"); !ok || v != "not under app/" {
		t.Fatal("delete -recurse app/ reached apple")
	}
}
