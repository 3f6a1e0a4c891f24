package cli

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/core"
)

// newSecretConfigd is newConfigd with a master key: it can store secrets.
func newSecretConfigd(t *testing.T) *testConfigd {
	t.Helper()
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	e := configdtest.NewEnv(t, configdtest.WithCore(core.WithStoreOptions(audit.WithMasterKey(mk))))
	return &testConfigd{t: t, url: e.URL}
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

// startSecretDaemon runs the whole daemon with a master key, on loopback
// without authentication, and returns its address and data directory.
func startSecretDaemon(t *testing.T) (addr, dataDir string) {
	t.Helper()
	_, key, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.MasterKey = filepath.Join(t.TempDir(), "data"), "127.0.0.1:0", key
	return configdtest.Run(t, cfg).Addr, cfg.DataDir
}

// checkNowhere fails the test if plain appears in configd's history
// (GET /v1/history) or in any file of its data directory (the SQLite
// database, its WAL).
func checkNowhere(t *testing.T, addr, dataDir, plain string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/history?limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"secret":true`) {
		t.Fatalf("history: %d %s, %v", resp.StatusCode, body, err)
	}
	if strings.Contains(string(body), plain) {
		t.Errorf("the history holds the secret's plaintext:\n%s", body)
	}
	files, err := filepath.Glob(filepath.Join(dataDir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("data dir: %v, %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EISDIR) {
				continue
			}
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(plain)) {
			t.Errorf("%s holds the secret's plaintext", f)
		}
	}
}

// TestExportApplyKeepsSecretsSecret is issue 13's fault 6: export marks a
// secret and leaves its value out; with --with-secrets it includes it, and
// apply stores it as a secret again: its plaintext is in neither the
// history nor the database files. An entry without a value leaves the key
// as it is.
func TestExportApplyKeepsSecretsSecret(t *testing.T) {
	const plain, plainBin = "s3kr1t-Pq7-export", "\xffs3kr1t-Pq7-binary"
	src, _ := startSecretDaemon(t)
	cli := func(addr, stdin string, args ...string) result {
		return runCLI(stdin, append([]string{"--addr", addr, "--as", "tester"}, args...)...)
	}
	cli(src, "", "set", "app/db/password", "--secret", plain).want(t, 0, "", "")
	cli(src, plainBin, "set", "app/cert", "--secret", "--type", "binary", "-").want(t, 0, "", "")
	cli(src, "", "set", "app/db/host", "db1").want(t, 0, "", "")

	// Without --with-secrets: marked, no value.
	for _, format := range []string{"yaml", "json"} {
		r := cli(src, "", "export", "app/", "-o", format)
		r.want(t, 0, "", "left out the values of 2 secret key(s), marked \"secret\": true; --with-secrets includes them\n")
		if strings.Contains(r.stdout, "s3kr1t") {
			t.Fatalf("%s export without --with-secrets holds a secret:\n%s", format, r.stdout)
		}
		want := map[string][]string{
			"yaml": {"app/db/password:\n    secret: true # value left out\n", "app/db/host: db1\n"},
			"json": {`"app/db/password": {"secret":true}`, `"app/db/host": "db1"`},
		}[format]
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%s export lacks %q:\n%s", format, w, r.stdout)
			}
		}
	}
	withoutValues := cli(src, "", "export", "app/").stdout

	// With --with-secrets, into another configd, in YAML and then JSON.
	withValues := cli(src, "", "export", "app/", "--with-secrets")
	withValues.want(t, 0, "~secret: true\n +value: "+plain+"\n", "")
	if !strings.Contains(withValues.stdout, "# holds secret values in clear text") {
		t.Errorf("the export does not warn that it holds secrets:\n%s", withValues.stdout)
	}
	dst, dstDir := startSecretDaemon(t)
	cli(dst, withValues.stdout, "apply", "-f", "-").want(t, 0, "rev 1\n", "")
	asJSON := cli(src, "", "export", "app/", "--with-secrets", "-o", "json")
	cli(dst, asJSON.stdout, "apply", "-f", "-").want(t, 0, "rev 1 (unchanged)\n", "")
	cli(dst, "", "get", "app/db/password").want(t, 0, plain, "")
	cli(dst, "", "get", "app/cert").want(t, 0, plainBin, "")
	cli(dst, "", "ls", "app/", "-o", "json").want(t, 0, `~"key": "app/db/password",[^}]*"secret": true`, "")
	checkNowhere(t, dst, dstDir, "s3kr1t-Pq7")
	strip := func(s string) string { return regexp.MustCompile(`(?m)^(# .*|rev: \d+)$`).ReplaceAllString(s, "") }
	if again := cli(dst, "", "export", "app/", "--with-secrets").stdout; strip(again) != strip(withValues.stdout) {
		t.Errorf("export after the round trip differs:\n%s\n---\n%s", withValues.stdout, again)
	}

	// Without values, apply leaves the secrets as they are, even with
	// --prune, and says so.
	cli(dst, "", "set", "app/db/password", "changed-Pq7").want(t, 0, "rev 2\n", "")
	cli(dst, withoutValues, "apply", "-f", "-", "--prune").want(t, 0, "rev 2 (unchanged)\n",
		"app/cert: secret, and <stdin> holds no value for it: left as it is\n"+
			"app/db/password: secret, and <stdin> holds no value for it: left as it is\n")
	cli(dst, "", "get", "app/db/password").want(t, 0, "changed-Pq7", "")
	cli(dst, "", "get", "app/cert").want(t, 0, plainBin, "")
	// Into a configd without them: they are not created, empty or otherwise.
	fresh, _ := startSecretDaemon(t)
	cli(fresh, withoutValues, "apply", "-f", "-").want(t, 0, "rev 1\n", "")
	cli(fresh, "", "get", "app/db/password").want(t, ExitNotFound, "", "")
	cli(fresh, "", "get", "app/db/host").want(t, 0, "db1", "")
}

// TestSecretValuesTravelOnlyOverTLSOrLoopback: export --with-secrets and
// an apply that sends secret values refuse a plaintext connection to
// another host before connecting.
func TestSecretValuesTravelOnlyOverTLSOrLoopback(t *testing.T) {
	file := writeFile(t, "keys:\n  app/pw:\n    secret: true\n    value: s3kr1t\n")
	for _, addr := range []string{"10.255.255.1:7700", "http://configd.example:7700"} {
		runCLI("", "--addr", addr, "export", "app/", "--with-secrets").want(t, ExitUsage, "",
			"~^configctl: export --with-secrets: secret values travel only over TLS or to a loopback address, and .* is neither")
		runCLI("", "--addr", addr, "apply", "-f", file).want(t, ExitUsage, "", "~^configctl: apply: the file holds secret values: secret values travel only over TLS")
	}
	files := testserver.NewTLSFiles(t, t.TempDir())
	for _, tc := range []struct {
		app  app
		want bool
	}{
		{app{addr: "127.0.0.1:7700"}, true},
		{app{addr: "[::1]:7700"}, true},
		{app{addr: "http://localhost"}, true},
		{app{addr: "https://configd.example:7700"}, true},
		{app{addr: "configd.example:7700", caFile: files.CAFile}, true},
		{app{addr: "configd.example:7700"}, false},
		{app{addr: "http://192.0.2.1:7700"}, false},
	} {
		if err := tc.app.checkConfidential("test"); (err == nil) != tc.want {
			t.Errorf("--addr %s (--ca %q): %v, want allowed %v", tc.app.addr, tc.app.caFile, err, tc.want)
		}
	}
}
