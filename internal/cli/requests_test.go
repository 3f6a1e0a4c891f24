package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/authz"
)

// changeFile writes a change file and returns its path.
func changeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "change.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const changeYAML = `set:
  app/name: orders
  app/limits:
    type: json
    value: {rps: 100}
delete:
  - app/old
`

func TestProposeReviewApproveAndPublish(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "app/limits", `{"rps":10}`, "--type", "json")
	d.ok("set", "app/old", "x")
	file := changeFile(t, changeYAML)
	d.run("", "propose", "app/", "-f", file, "--reason", "raise limits").
		want(t, 0, "request 1 by tester: 3 keys under app/ (diff: configctl request show 1)\n", "")
	d.ok("policy", "set", "app/", "--approvals", "1")
	d.run("", "policy", "list").want(t, 0, "~(?m)^app/ +1 approval$", "")

	d.run("", "request", "publish", "1").want(t, ExitConflict, "", "~request 1 has 0 of the 1 approval\\(s\\) that the policy of app/ asks")
	d.run("", "request", "approve", "1").want(t, ExitDenied, "", "~tester wrote request 1; another person must approve it")
	runCLI("", "--addr", d.url, "--as", "bob", "request", "approve", "1").want(t, 0, "request 1: approved (1 of 1 approval(s))\n", "")
	runCLI("", "--addr", d.url, "--as", "bob", "request", "comment", "1", "looks fine").want(t, 0, "request 1: 1 comment\n", "")

	show := d.ok("request", "show", "1")
	for _, want := range []string{
		"request 1 by tester: approved, 3 keys under app/, drafted on rev 2\n",
		"reason: raise limits\n",
		"approvals: 1 of 1 approval(s) (policy of app/)\n",
		// Now is rev 6: the request's own actions are revisions too.
		"diff against now (rev 6):\n",
		"--- app/limits (rev 6)\n+++ app/limits (request 1)\n- {\"rps\":10}\n+ {\"rps\":100}\n",
		"--- app/name (absent at rev 6)\n+++ app/name (request 1)\n+ orders\n",
		"--- app/old (rev 6)\n+++ app/old (request 1: deleted)\n- x\n",
		"bob: looks fine\n",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("request show lacks %q:\n%s", want, show)
		}
	}
	d.run("", "request", "list", "--state", "open").want(t, 0, "~(?m)^1 +approved +app/ +3 +tester +1/1 +raise limits$", "")
	d.run("", "request", "list", "--state", "published").want(t, 0, "~^ID +STATE[^\n]*\n$", "")

	d.run("", "request", "publish", "1").want(t, 0, "request 1 published: rev 7\n", "")
	d.run("", "get", "app/limits").want(t, 0, `{"rps":100}`, "")
	d.run("", "get", "app/old").want(t, ExitNotFound, "", "")
	r, err := d.c.Revision(context.Background(), 7)
	if err != nil || r.Reason != "request 1: raise limits" || len(r.Changes) != 3 {
		t.Fatalf("revision 7: %+v %v", r, err)
	}
	d.run("", "request", "publish", "1").want(t, ExitConflict, "", "~request 1 is published")
	d.run("", "request", "show", "9").want(t, ExitNotFound, "", "configctl: request 9 does not exist (configctl request list)\n")
	d.run("", "request", "show", "x").want(t, ExitUsage, "", "~request id \"x\": want a number from 1")
}

func TestStaleRequestIsRefusedUntilRebased(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "app/limits", `{"rps":10}`, "--type", "json")
	d.ok("propose", "app/", "-f", changeFile(t, changeYAML))
	d.ok("set", "app/limits", `{"rps":20}`)
	d.run("", "request", "show", "1").want(t, 0, "~stale: app/limits changed after rev 1: publishing is refused until it is rebased", "")
	d.run("", "request", "publish", "1").want(t, ExitConflict, "", "~app/limits changed after its base, revision 1")
	d.run("", "request", "rebase", "1").want(t, 0, "request 1 rebased on rev 3 (approvals dropped: 0 approvals, none needed)\n", "")
	d.run("", "request", "publish", "1").want(t, 0, "request 1 published: rev 5\n", "")
}

func TestProposeRefusesABadChangeFile(t *testing.T) {
	d := newConfigd(t)
	for _, c := range []struct{ name, file, stderr string }{
		{"empty", "", "~change.yaml: the file is empty: want set:"},
		{"comments only", "# nothing\n", "~change.yaml: the file is empty"},
		{"unparsable", "set:\n  app/a: [1,\n", "~change.yaml: yaml: line \\d+"},
		{"not a mapping", "- app/a\n", "~change.yaml: line 1: the file is not a mapping"},
		{"unknown field", "set:\n  app/a: 1\nput:\n  app/b: 2\n", "~change.yaml: line 3: unknown field \"put\""},
		{"no value", "set:\n  app/a:\n", "~change.yaml: line 2: app/a has no value \\(to delete a key, list it under delete:\\)"},
		{"structured text", "set:\n  app/a:\n    value: {x: 1}\n", "~change.yaml: line 3: app/a: a mapping or a list is a value only with type json or yaml"},
		{"bad type", "set:\n  app/a:\n    type: xml\n    value: x\n", "~change.yaml: line 3: app/a: type: content type \"xml\""},
		{"bad key", "delete:\n  - app//a\n", "~change.yaml: line 2: invalid key: key \"app//a\" has an empty segment"},
		{"twice", "set:\n  app/a: 1\ndelete:\n  - app/a\n", "~change.yaml: line 4: key \"app/a\" is already changed at line 2"},
		{"nothing", "set: {}\n", "~change.yaml: line 1: the file changes nothing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.run("", "propose", "app/", "-f", changeFile(t, c.file)).want(t, ExitError, "", c.stderr)
		})
	}
	d.run("", "propose", "app/", "-f", changeFile(t, "set:\n  db/a: 1\n")).
		want(t, ExitError, "", "configctl: key \"db/a\" is outside the request's scope app/\n")
	d.run("", "propose", "app/").want(t, ExitUsage, "", "~-f FILE is required")
	if rqs, err := d.c.Requests(context.Background(), ""); err != nil || len(rqs) != 0 {
		t.Fatalf("a refused proposal left requests: %+v %v", rqs, err)
	}
}

func TestRequestActionsAreTheTokensOwn(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithAuth(map[string][]api.Grant{
		"alice": {{Permission: api.PermissionWrite, Prefix: "app/"}},
		"bob":   {{Permission: api.PermissionWrite, Prefix: "app/"}},
		"carol": {{Permission: api.PermissionRead, Prefix: "app/"}},
	}))
	admin := e.Secrets[authz.BootstrapTokenName]
	as := func(token string, args ...string) result {
		return runCLI("", append([]string{"--addr", e.URL, "--token", e.Secrets[token]}, args...)...)
	}
	runCLI("", "--addr", e.URL, "--token", admin, "policy", "set", "app/", "--approvals", "1").want(t, 0, "policy of app/: 1 approval\n", "")
	as("alice", "policy", "set", "app/", "--approvals", "0").want(t, ExitDenied, "", "~token \"alice\" lacks admin")
	as("alice", "propose", "app/", "-f", changeFile(t, "set:\n  app/a: 1\n")).want(t, 0, "~^request 1 by alice: 1 key under app/", "")
	as("alice", "request", "approve", "1").want(t, ExitDenied, "", "~alice wrote request 1")
	as("alice", "--as", "bob", "request", "approve", "1").want(t, ExitDenied, "", "~--as \"bob\" .* is not the token's name \"alice\"")
	as("carol", "request", "approve", "1").want(t, ExitDenied, "", "~token \"carol\" lacks write")
	as("bob", "request", "approve", "1").want(t, 0, "request 1: approved (1 of 1 approval(s))\n", "")
	as("alice", "request", "publish", "1").want(t, 0, "~^request 1 published: rev \\d+\n$", "")
}

func TestPolicyRequireRefusesDirectWritesWithAPointerToPropose(t *testing.T) {
	d := newConfigd(t)
	d.run("", "policy", "set", "app/", "--approvals", "0", "--require").want(t, 0, "policy of app/: 0 approvals, changes only through requests\n", "")
	d.run("", "set", "app/a", "1").want(t, ExitDenied, "",
		"configctl: app/a: the policy of app/ takes changes only through change requests: propose it (configctl propose app/ -f change.yaml), have it approved and publish it\n")
	d.ok("propose", "app/", "-f", changeFile(t, "set:\n  app/a: 1\n"))
	d.run("", "request", "publish", "1").want(t, 0, "~^request 1 published: rev \\d+\n$", "")
	d.run("", "get", "app/a").want(t, 0, "1", "")
	d.run("", "policy", "list").want(t, 0, "~(?m)^app/ +0 approvals, changes only through requests$", "")

	// The whole keyspace, requests and policies included, round-trips.
	all := filepath.Join(t.TempDir(), "all.yaml")
	if err := os.WriteFile(all, []byte(d.ok("export", "/")), 0o600); err != nil {
		t.Fatal(err)
	}
	d.run("", "apply", "-f", all).want(t, 0, "~^rev \\d+ \\(unchanged\\)\n$", "")
}
