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
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server"
)

// newSecretConfigd is newConfigd with a master key: it can store secrets.
func newSecretConfigd(t *testing.T) *testConfigd {
	t.Helper()
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	st, err := audit.Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"), audit.WithMasterKey(mk))
	if err != nil {
		t.Fatalf("audit.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.NewHandler(st, server.WithLogger(quiet)))
	t.Cleanup(srv.Close)
	return &testConfigd{t: t, url: srv.URL}
}

func TestSetSecretHidesItFromHistoryAndDiff(t *testing.T) {
	const value = "s3kr1t-Pq7-value"
	d := newSecretConfigd(t)
	d.ok("set", "app/db/password", "--secret", value)
	r := d.run(value+"-2\n", "set", "app/db/password", "-") // the mark sticks
	r.want(t, 0, "rev 2\n", "")
	d.ok("set", "app/db/host", "db1")
	if got := d.ok("get", "app/db/password"); got != value+"-2\n" {
		t.Fatalf("get = %q: a reader gets the value", got)
	}
	var outs []string
	for _, args := range [][]string{
		{"history", "app/"}, {"history", "app/", "-o", "json"}, {"history", "--all", "-o", "yaml"},
		{"rev", "1"}, {"rev", "2"}, {"rev", "2", "-o", "json"},
		{"diff", "1", "2"}, {"diff", "1"}, {"diff", "1", "-o", "json"}, {"diff", "1", "--key", "app/db/password"},
	} {
		outs = append(outs, strings.Join(args, " ")+":\n"+d.ok(args...))
	}
	all := strings.Join(outs, "\n")
	if strings.Contains(all, "s3kr1t") {
		t.Fatalf("the secret shows in configctl output:\n%s", all)
	}
	for _, want := range []string{"(secret hmac-sha256:", `"hash": "hmac-sha256:`, `"secret": true`, "db1"} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q:\n%s", want, all)
		}
	}
}

func TestSetSecretWithoutMasterKeyFails(t *testing.T) {
	d := newConfigd(t)
	r := d.run("", "set", "app/k", "--secret", "v")
	if r.code == 0 || !strings.Contains(r.stderr, "master-key-file") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}
