package cli

import (
	"strings"
	"testing"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/authz"
)

// newAuthConfigd serves configd with authentication on and returns its URL
// and the bootstrap admin token.
func newAuthConfigd(t *testing.T) (string, string) {
	t.Helper()
	e := configdtest.NewEnv(t, configdtest.WithAuth(nil))
	return e.URL, e.Secrets[authz.BootstrapTokenName]
}

func TestTokenCommandsAndDenialsExit5(t *testing.T) {
	url, admin := newAuthConfigd(t)
	runCLI("", "--addr", url, "get", "app/a").want(t, ExitDenied, "", "~^configctl: authentication required.*--token or CONFIGD_TOKEN\\)\n$")

	created := runCLI("", "--addr", url, "--token", admin, "token", "create", "--name", "ci", "--grant", "write:app/", "--grant", "read:")
	created.want(t, 0, "~^cfd_[A-Za-z0-9_-]{43}\n$", "~created token ci")
	ci := strings.TrimSpace(created.stdout)

	runCLI("", "--addr", url, "--token", ci, "set", "app/a", "1").want(t, 0, "", "")
	runCLI("", "--addr", url, "--token", ci, "set", "db/a", "1").want(t, ExitDenied, "", "~^configctl: token \"ci\" lacks write on key or prefix \"db/a\"")
	// Without --as, the actor is the token's name.
	runCLI("", "--addr", url, "--token", admin, "history", "app/a", "-o", "json").want(t, 0, `~"actor": "ci"`, "")
	runCLI("", "--addr", url, "--token", ci, "token", "ls").want(t, ExitDenied, "", "~lacks admin")
	runCLI("", "--addr", url, "--token", admin, "token", "ls").want(t, 0, "~(?m)^ci +read: write:app/ ", "")
	runCLI("", "--addr", url, "--token", admin, "token", "revoke", "ci").want(t, 0, "", "revoked token ci\n")
	runCLI("", "--addr", url, "--token", ci, "get", "app/a").want(t, ExitDenied, "", "~revoked")
	runCLI("", "--addr", url, "token", "create", "--name", "x", "--grant", "root:").want(t, ExitUsage, "", "~--grant \"root:\"")
}

func TestTokenSetGrants(t *testing.T) {
	url, admin := newAuthConfigd(t)
	created := runCLI("", "--addr", url, "--token", admin, "token", "create", "--name", "ci", "--grant", "write:")
	created.want(t, 0, "~^cfd_", "~created token ci")
	ci := strings.TrimSpace(created.stdout)
	runCLI("", "--addr", url, "--token", ci, "set", "db/a", "1").want(t, 0, "", "")

	runCLI("", "--addr", url, "--token", admin, "token", "set-grants", "ci", "--grant", "write:app").want(t, 0, "", "token ci now has write:app/\n")
	runCLI("", "--addr", url, "--token", ci, "set", "db/a", "2").want(t, ExitDenied, "", "~lacks (read|write) on key or prefix \"db/a\"; its grants: write:app/")
	runCLI("", "--addr", url, "--token", ci, "set", "app/a", "2").want(t, 0, "", "")
	runCLI("", "--addr", url, "--token", admin, "token", "ls").want(t, 0, "~(?m)^ci +write:app/ ", "")

	runCLI("", "--addr", url, "--token", admin, "token", "set-grants", "ci").want(t, ExitUsage, "", "~give at least one --grant")
	runCLI("", "--addr", url, "--token", admin, "token", "set-grants", "ci", "--grant", "root:").want(t, ExitUsage, "", "~--grant \"root:\"")
	runCLI("", "--addr", url, "--token", admin, "token", "set-grants", "nobody", "--grant", "read:").want(t, ExitNotFound, "", "~no valid token named \"nobody\"")
	runCLI("", "--addr", url, "--token", ci, "token", "set-grants", "ci", "--grant", "admin:").want(t, ExitDenied, "", "~lacks admin")
}
