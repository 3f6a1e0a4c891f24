package consulapi_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/testserver"
)

// tmpl is consul-template's template of the tests, over every function
// that reads Consul's KV: key, ls, keyOrDefault and tree.
const tmpl = `host={{ key "app/db/host" }}
{{ range ls "app/db/" }}ls {{ .Key }}={{ .Value }}
{{ end }}missing={{ keyOrDefault "app/missing" "fallback" }}
port={{ keyOrDefault "app/db/port" "fallback" }}
{{ range tree "app/" }}tree {{ .Key }}={{ .Value }}
{{ end }}`

// consulTemplate is the real consul-template (v0.41.1, built from the
// module proxy into .tools/bin by scripts/install-test-deps.sh) against d,
// rendering tmpl into the returned file, with args after its own.
func consulTemplate(ctx context.Context, t *testing.T, d *door, args ...string) (*exec.Cmd, string) {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.tpl"), filepath.Join(dir, "out.conf")
	if err := os.WriteFile(in, []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, testserver.Binary(t, "consul-template"),
		append([]string{"-consul-addr", d.addr, "-template", in + ":" + out}, args...)...)
	cmd.Env = []string{"HOME=" + dir}
	return cmd, out
}

// rendered is tmpl rendered over the keys the tests put.
func rendered(host string) string {
	return "host=" + host + "\nls host=" + host + "\nls port=5432\nmissing=fallback\nport=5432\n" +
		"tree db/host=" + host + "\ntree db/port=5432\ntree name=shop\n"
}

func putAppKeys(t *testing.T, d *door) {
	t.Helper()
	d.put(t, "app/db/host", "db1")
	d.put(t, "app/db/port", "5432")
	d.put(t, "app/name", "shop")
	d.put(t, "apple", "not under app/")
}

func TestConsulTemplateRendersConfigdKeysOnce(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "no auth", true: "a token"}[auth], func(t *testing.T) {
			var d *door
			var args []string
			if auth {
				d = newDoor(t, withAuth())
				args = append(args, "-consul-token", d.token(t, "renderer", "read:app/"))
			} else {
				d = newDoor(t)
			}
			putAppKeys(t, d)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd, out := consulTemplate(ctx, t, d, append(args, "-once")...)
			if log, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("consul-template -once: %v\n%s", err, log)
			}
			if got, err := os.ReadFile(out); err != nil || string(got) != rendered("db1") {
				t.Fatalf("consul-template rendered %q (%v), want %q", got, err, rendered("db1"))
			}
		})
	}
}

// Without -once, consul-template's blocking queries hear a change made in
// configd (not through its Consul door) and render again.
func TestConsulTemplateRendersAgainWhenConfigdChanges(t *testing.T) {
	d := newDoor(t)
	putAppKeys(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd, out := consulTemplate(ctx, t, d)
	logf, err := os.Create(filepath.Join(t.TempDir(), "consul-template.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	log := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
	})
	// awaitFile polls out until it holds want, consul-template exits or
	// the deadline passes.
	awaitFile := func(want string) {
		t.Helper()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(20 * time.Second)
		for {
			got, _ := os.ReadFile(out)
			if string(got) == want {
				return
			}
			select {
			case <-tick.C:
			case err := <-exited:
				exited <- err
				t.Fatalf("consul-template exited (%v) with %q rendered, want %q\n%s", err, got, want, log())
			case <-deadline:
				t.Fatalf("consul-template rendered %q, want %q\n%s", got, want, log())
			}
		}
	}
	awaitFile(rendered("db1"))
	d.put(t, "app/db/host", "db2")
	awaitFile(rendered("db2"))
	// A delete too: app/name leaves the tree.
	if _, err := d.c.Store.Commit(context.Background(), audit.Txn{Actor: "test", Ops: []audit.Op{audit.Delete("app/name")}}); err != nil {
		t.Fatal(err)
	}
	awaitFile(strings.TrimSuffix(rendered("db2"), "tree name=shop\n"))
}
