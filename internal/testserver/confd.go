package testserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ConfdTemplate is the template ConfdOnce renders: confd's getv (with a
// default), gets and ls over the keys under /app.
const ConfdTemplate = `host={{getv "/app/db/host"}}
missing={{getv "/app/missing" "fallback"}}
{{range gets "/app/db/*"}}gets {{.Key}}={{.Value}}
{{end}}{{range ls "/app/db"}}ls {{.}}
{{end}}`

// ConfdOnce runs the real confd (v0.16.0, built from the module proxy into
// .tools/bin by scripts/install-test-deps.sh) once (-onetime) with backend
// ("consul", "etcdv3") against node, rendering ConfdTemplate over the keys
// under /app, and returns what it rendered; when confd fails, its output as
// the error.
func ConfdOnce(t testing.TB, backend, node string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "app.conf")
	for name, content := range map[string]string{
		"templates/app.tmpl": ConfdTemplate,
		"conf.d/app.toml":    fmt.Sprintf("[template]\nsrc = \"app.tmpl\"\ndest = %q\nkeys = [\"/app\"]\n", out),
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t, "confd"), append([]string{"-onetime", "-backend", backend, "-node", node,
		"-confdir", dir, "-log-level", "debug"}, args...)...)
	cmd.Env = []string{"HOME=" + dir}
	log, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("confd -onetime -backend %s: %w\n%s", backend, err, log)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return "", fmt.Errorf("confd -onetime -backend %s rendered nothing: %w\n%s", backend, err, log)
	}
	return string(b), nil
}
