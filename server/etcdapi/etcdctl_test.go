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
	"github.com/configd/configd/server/etcdapi"
)

// etcdctlPath is etcd's command-line client: Debian's etcd-client
// (scripts/install-test-deps.sh installs it). Its absence fails the test.
func etcdctlPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Fatalf("etcdctl is not installed (Debian's etcd-client; run scripts/install-test-deps.sh): %v", err)
	}
	return p
}

func etcdctlCmd(ctx context.Context, t *testing.T, addr string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, etcdctlPath(t), append([]string{"--endpoints", addr, "--dial-timeout", "5s"}, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	return cmd
}

// etcdctl runs etcdctl against addr with stdin, and returns its output;
// failing, the test fails unless fail says it may.
func etcdctl(t *testing.T, addr, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := etcdctlCmd(ctx, t, addr, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustEtcdctl(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	out, err := etcdctl(t, addr, stdin, args...)
	if err != nil {
		t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func lines(s string) []string {
	return slices.DeleteFunc(strings.Split(strings.TrimSpace(s), "\n"), func(l string) bool { return l == "" })
}

func TestEtcdctlPutGetDelTxnWatch(t *testing.T) {
	e := startConfigd(t)
	addr := e.Addr
	if out := mustEtcdctl(t, addr, "", "put", "app/db/host", "db1"); strings.TrimSpace(out) != "OK" {
		t.Fatalf("put: %q", out)
	}
	mustEtcdctl(t, addr, "", "put", "app/db/port", "5432")
	mustEtcdctl(t, addr, "", "put", "app/name", "shop")
	if got := lines(mustEtcdctl(t, addr, "", "get", "app/", "--prefix", "--keys-only")); !slices.Equal(got, []string{"app/db/host", "app/db/port", "app/name"}) {
		t.Fatalf("get app/ --prefix --keys-only: %q", got)
	}
	if got := lines(mustEtcdctl(t, addr, "", "get", "app/db/host")); !slices.Equal(got, []string{"app/db/host", "db1"}) {
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
		return slices.DeleteFunc(lines(mustEtcdctl(t, addr, cas, "txn", "-i")), func(l string) bool { return strings.HasSuffix(l, ":") })
	}
	if got := txn(); !slices.Equal(got, []string{"SUCCESS", "OK"}) {
		t.Fatalf("txn: %q", got)
	}
	if got := txn(); !slices.Equal(got, []string{"FAILURE", "app/db/host", "db2"}) {
		t.Fatalf("txn again: %q", got)
	}
	if out := mustEtcdctl(t, addr, "", "del", "app/db/", "--prefix"); strings.TrimSpace(out) != "2" {
		t.Fatalf("del app/db/ --prefix: %q", out)
	}
	// A watch from revision 4 sees the txn's put (4) and the delete (5).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := etcdctlCmd(ctx, t, addr, "watch", "app/", "--prefix", "--rev", "4")
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
			mustEtcdctl(t, addr, "", "put", "app/name", "live")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("watch --rev 4: %q, want %q (%v)", got, want, sc.Err())
	}
}

func TestEtcdctlProbes(t *testing.T) {
	e := startConfigd(t)
	mustEtcdctl(t, e.Addr, "", "put", "k", "v")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"endpoint", "status"}, ", " + etcdapi.APIVersion + ", "},
		{[]string{"endpoint", "health"}, e.Addr + " is healthy"},
		{[]string{"member", "list"}, ", started, configd, , http://" + e.Addr + ", false"},
	} {
		if out := mustEtcdctl(t, e.Addr, "", c.args...); !strings.Contains(out, c.want) {
			t.Fatalf("etcdctl %s: %q, want %q in it", strings.Join(c.args, " "), out, c.want)
		}
	}
}

func TestEtcdctlWithAConfigdToken(t *testing.T) {
	env, addr := authConfigd(t)
	user := "reader-app:" + env.Secrets["reader-app"]
	if got := lines(mustEtcdctl(t, addr, "", "--user", user, "get", "app/x")); !slices.Equal(got, []string{"app/x", "1"}) {
		t.Fatalf("get app/x as reader-app: %q", got)
	}
	out, err := etcdctl(t, addr, "", "--user", user, "put", "app/x", "2")
	if err == nil || !strings.Contains(out, "PermissionDenied") && !strings.Contains(out, "permission") {
		t.Fatalf("put app/x as reader-app: %v %q, want refused", err, out)
	}
	writer := "writer-app:" + env.Secrets["writer-app"]
	mustEtcdctl(t, addr, "", "--user", writer, "put", "app/x", "2")
	page, err := env.Store.History(context.Background(), audit.HistoryQuery{Scope: audit.Scope{Key: "app/x"}, Limit: 1})
	if err != nil || len(page.Revisions) != 1 || page.Revisions[0].Actor != "writer-app" || page.Revisions[0].Origin != etcdapi.Origin {
		t.Fatalf("history of app/x: %+v %v, want writer-app from etcd-api", page, err)
	}
}
