package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/audit"
)

func TestBootstrapOnlyWhenNoToken(t *testing.T) {
	st, err := audit.Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := New(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := a.Bootstrap(context.Background(), "", "test"); err != nil || !strings.HasPrefix(s, TokenPrefix) {
		t.Fatalf("first bootstrap: %q, %v", s, err)
	}
	if s, err := a.Bootstrap(context.Background(), "some-long-secret-value", "test"); err != nil || s != "" {
		t.Errorf("second bootstrap: %q, %v; want nothing done", s, err)
	}
}

func TestBootstrapTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  s3cret-0123456789abcdef\n")
	if s, err := ReadBootstrapTokenFile(good); err != nil || s != "s3cret-0123456789abcdef" {
		t.Errorf("good file: %q, %v; want the trimmed content", s, err)
	}
	for name, content := range map[string]string{"empty": " \n", "short": "abc\n", "space": "0123456789 abcdefgh\n"} {
		p := write(name, content)
		if _, err := ReadBootstrapTokenFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s file: %v, want an error naming the file", name, err)
		}
	}
	if _, err := ReadBootstrapTokenFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}

}
