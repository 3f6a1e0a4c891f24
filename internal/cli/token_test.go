package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server"
)

// newAuthConfigd serves configd with authentication on and returns its URL
// and the bootstrap admin token.
func newAuthConfigd(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	st, err := audit.Open(ctx, filepath.Join(t.TempDir(), "configd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := server.NewAuth(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := a.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.NewHandler(st, server.WithLogger(quiet), server.WithAuth(a)))
	t.Cleanup(srv.Close)
	return srv.URL, admin
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
