package etcdapi_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server/etcdapi"
)

// etcdctlBinary is one of the real etcdctls the tests run, each test body
// against every one: Debian's etcd-client (3.4, /usr/bin/etcdctl) and 3.7.3
// built from the module proxy into .tools/bin/etcdctl-3.7.3
// (scripts/install-etcdctl.sh). scripts/install-test-deps.sh installs both;
// the absence of either fails the test.
type etcdctlBinary struct {
	// version is the start of what `etcdctl version` says ("3.4.").
	version string
	// name is the binary's name in .tools/bin or PATH.
	name string
}

var etcdctls = []etcdctlBinary{{version: "3.4.", name: "etcdctl"}, {version: "3.7.3", name: "etcdctl-3.7.3"}}

// etcdctl is an etcdctl binary found and checked for its version.
type etcdctl struct {
	t    *testing.T
	path string
}

// eachEtcdctl runs test once with every etcdctl of etcdctls, as a subtest
// named by its version.
func eachEtcdctl(t *testing.T, test func(t *testing.T, ctl etcdctl)) {
	for _, b := range etcdctls {
		t.Run(strings.TrimSuffix(b.version, "."), func(t *testing.T) {
			ctl := etcdctl{t: t, path: testserver.Binary(t, b.name)}
			out, err := exec.Command(ctl.path, "version").CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "etcdctl version: "+b.version) {
				t.Fatalf("%s version: %q (%v), want etcdctl version %s", ctl.path, out, err, b.version)
			}
			test(t, ctl)
		})
	}
}

func (c etcdctl) cmd(ctx context.Context, addr string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.path, append([]string{"--endpoints", addr, "--dial-timeout", "5s"}, args...)...)
	// etcdctl 3.4 speaks API 3 by default, and 3.7 warns of ETCDCTL_API: the
	// environment's ETCDCTL_* (a developer's endpoints, API, user) stay out.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "ETCDCTL_") })
	return cmd
}

// run runs etcdctl against addr with stdin, and returns its output and
// whether it failed.
func (c etcdctl) run(addr, stdin string, args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := c.cmd(ctx, addr, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs etcdctl as run does; failing, the test fails.
func (c etcdctl) must(addr, stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(addr, stdin, args...)
	if err != nil {
		c.t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func lines(s string) []string {
	return slices.DeleteFunc(strings.Split(strings.TrimSpace(s), "\n"), func(l string) bool { return l == "" })
}

func TestEtcdctlPutGetDelTxnWatch(t *testing.T) {
	eachEtcdctl(t, func(t *testing.T, ctl etcdctl) {
		e := startConfigd(t)
		addr := e.Addr
		if out := ctl.must(addr, "", "put", "app/db/host", "db1"); strings.TrimSpace(out) != "OK" {
			t.Fatalf("put: %q", out)
		}
		ctl.must(addr, "", "put", "app/db/port", "5432")
		ctl.must(addr, "", "put", "app/name", "shop")
		if got := lines(ctl.must(addr, "", "get", "app/", "--prefix", "--keys-only")); !slices.Equal(got, []string{"app/db/host", "app/db/port", "app/name"}) {
			t.Fatalf("get app/ --prefix --keys-only: %q", got)
		}
		if got := lines(ctl.must(addr, "", "get", "app/db/host")); !slices.Equal(got, []string{"app/db/host", "db1"}) {
			t.Fatalf("get app/db/host: %q", got)
		}
		// The write's history: an ordinary configd revision by etcdctl's
		// address.
		r, err := e.c.Store.Revision(context.Background(), 1)
		if err != nil || !strings.HasPrefix(r.Actor, "etcd-api@127.0.0.1:") || r.Origin != etcdapi.Origin {
			t.Fatalf("revision 1: actor %q origin %q, %v; want etcd-api@127.0.0.1:... from etcd-api", r.Actor, r.Origin, err)
		}
		// A compare-and-swap: the first succeeds, the same again fails.
		// (-i prompts for each part: "compares:", ...)
		cas := "value(\"app/db/host\") = \"db1\"\n\nput app/db/host db2\n\nget app/db/host\n\n"
		txn := func() []string {
			return slices.DeleteFunc(lines(ctl.must(addr, cas, "txn", "-i")), func(l string) bool { return strings.HasSuffix(l, ":") })
		}
		if got := txn(); !slices.Equal(got, []string{"SUCCESS", "OK"}) {
			t.Fatalf("txn: %q", got)
		}
		if got := txn(); !slices.Equal(got, []string{"FAILURE", "app/db/host", "db2"}) {
			t.Fatalf("txn again: %q", got)
		}
		// A read at a past revision: revision 1, before the txn's put (4).
		if got := lines(ctl.must(addr, "", "get", "app/db/host", "--rev", "1")); !slices.Equal(got, []string{"app/db/host", "db1"}) {
			t.Fatalf("get app/db/host --rev 1: %q", got)
		}
		if out := ctl.must(addr, "", "del", "app/db/", "--prefix"); strings.TrimSpace(out) != "2" {
			t.Fatalf("del app/db/ --prefix: %q", out)
		}
		if got := lines(ctl.must(addr, "", "get", "app/", "--prefix", "--keys-only", "--rev", "4")); !slices.Equal(got, []string{"app/db/host", "app/db/port", "app/name"}) {
			t.Fatalf("get app/ --prefix --keys-only --rev 4, before the delete: %q", got)
		}
		// A watch from revision 4 sees the txn's put (4) and the delete (5).
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := ctl.cmd(ctx, addr, "watch", "app/", "--prefix", "--rev", "4")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Kill()
			cmd.Wait()
		}()
		want := []string{"PUT", "app/db/host", "db2", "DELETE", "app/db/host", "DELETE", "app/db/port", "PUT", "app/name", "live"}
		var got []string
		sc := bufio.NewScanner(stdout)
		for len(got) < len(want) && sc.Scan() {
			if sc.Text() == "" { // a delete's value
				continue
			}
			got = append(got, sc.Text())
			if len(got) == 7 {
				ctl.must(addr, "", "put", "app/name", "live")
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("watch --rev 4: %q, want %q (%v)", got, want, sc.Err())
		}
	})
}

func TestEtcdctlProbes(t *testing.T) {
	eachEtcdctl(t, func(t *testing.T, ctl etcdctl) {
		e := startConfigd(t)
		ctl.must(e.Addr, "", "put", "k", "v")
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"endpoint", "status"}, ", " + etcdapi.APIVersion + ", "},
			{[]string{"endpoint", "health"}, e.Addr + " is healthy"},
			{[]string{"member", "list"}, ", started, configd, , http://" + e.Addr + ", false"},
		} {
			if out := ctl.must(e.Addr, "", c.args...); !strings.Contains(out, c.want) {
				t.Fatalf("etcdctl %s: %q, want %q in it", strings.Join(c.args, " "), out, c.want)
			}
		}
	})
}

func TestEtcdctlWithAConfigdToken(t *testing.T) {
	eachEtcdctl(t, func(t *testing.T, ctl etcdctl) {
		env, addr := authConfigd(t)
		user := "reader-app:" + env.Secrets["reader-app"]
		if got := lines(ctl.must(addr, "", "--user", user, "get", "app/x")); !slices.Equal(got, []string{"app/x", "1"}) {
			t.Fatalf("get app/x as reader-app: %q", got)
		}
		out, err := ctl.run(addr, "", "--user", user, "put", "app/x", "2")
		if err == nil || !strings.Contains(out, "PermissionDenied") && !strings.Contains(out, "permission") {
			t.Fatalf("put app/x as reader-app: %v %q, want refused", err, out)
		}
		writer := "writer-app:" + env.Secrets["writer-app"]
		ctl.must(addr, "", "--user", writer, "put", "app/x", "2")
		page, err := env.Store.History(context.Background(), audit.HistoryQuery{Scope: audit.Scope{Key: "app/x"}, Limit: 1})
		if err != nil || len(page.Revisions) != 1 || page.Revisions[0].Actor != "writer-app" || page.Revisions[0].Origin != etcdapi.Origin {
			t.Fatalf("history of app/x: %+v %v, want writer-app from etcd-api", page, err)
		}
	})
}
