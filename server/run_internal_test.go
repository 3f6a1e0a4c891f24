package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/authz"
)

func TestStartAuthTakesTheBootstrapTokenFromTheFile(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good")
	if err := os.WriteFile(good, []byte("  s3cret-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := audit.Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig()
	cfg.Auth, cfg.BootstrapTokenFile = true, good
	a, err := startAuth(context.Background(), cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := a.Authenticate("Bearer s3cret-0123456789abcdef"); p == nil || p.Name != authz.BootstrapTokenName {
		t.Errorf("the file's token does not authenticate as %s: %v", authz.BootstrapTokenName, p)
	}
}
