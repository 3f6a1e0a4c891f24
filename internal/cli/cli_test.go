package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/server/httpapi"
)

// testConfigd is configd's HTTP API over a fresh store, and configctl
// pointed at it.
type testConfigd struct {
	t   *testing.T
	url string
	c   *apiclient.Client
}

func newConfigd(t *testing.T) *testConfigd {
	t.Helper()
	e := configdtest.NewEnv(t, configdtest.WithHandlerOptions(httpapi.WithVersion("v0.test")))
	c, err := apiclient.New(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &testConfigd{t: t, url: e.URL, c: c}
}

// result is what one run of configctl did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs configctl in-process against d, as actor "tester", with stdin.
func (d *testConfigd) run(stdin string, args ...string) result {
	d.t.Helper()
	return runCLI(stdin, append([]string{"--addr", d.url, "--as", "tester"}, args...)...)
}

func runCLI(stdin string, args ...string) result {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// ok runs configctl and fails the test unless it exits 0.
func (d *testConfigd) ok(args ...string) string {
	d.t.Helper()
	r := d.run("", args...)
	if r.code != 0 {
		d.t.Fatalf("configctl %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// want checks a run's exit code and outputs; a want string that is empty
// is not checked, one that starts with '~' is a regexp.
func (r result) want(t *testing.T, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", r.code, code, r.stdout, r.stderr)
	}
	check := func(what, got, want string) {
		t.Helper()
		if want == "" {
			return
		}
		if re, ok := strings.CutPrefix(want, "~"); ok {
			if !regexp.MustCompile(re).MatchString(got) {
				t.Errorf("%s %q does not match %s", what, got, re)
			}
		} else if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("stdout", r.stdout, stdout)
	check("stderr", r.stderr, stderr)
}

func TestSetGetDel(t *testing.T) {
	d := newConfigd(t)
	d.run("", "set", "key1", "hello", "--reason", "first value").want(t, 0, "rev 1\n", "")
	d.run("", "set", "key1", "hello").want(t, 0, "rev 1 (unchanged)\n", "")
	d.run("", "get", "key1").want(t, 0, "hello", "")
	d.run("", "set", "key1", "world").want(t, 0, "rev 2\n", "")
	d.run("", "get", "key1", "--rev", "1").want(t, 0, "hello", "")
	d.run("", "del", "key1").want(t, 0, "rev 3\n", "")
	d.run("", "get", "key1").want(t, ExitNotFound, "", "configctl: key \"key1\" not found\n")
	d.run("", "del", "key1").want(t, ExitNotFound, "", "configctl: key \"key1\" not found\n")
	d.run("", "get", "key1", "--rev", "3").want(t, ExitNotFound, "", "configctl: key \"key1\" not found at rev 3\n")

	r, err := d.c.Revision(context.Background(), 1)
	if err != nil || r.Actor != "tester" || r.Reason != "first value" {
		t.Fatalf("revision 1 = %+v, %v; want actor tester, reason \"first value\"", r, err)
	}
}

func TestSetReadsStdinAndFiles(t *testing.T) {
	d := newConfigd(t)
	value := "line one\nline two\n\n"
	d.run(value, "set", "app/notes", "-").want(t, 0, "rev 1\n", "")
	d.run("", "get", "app/notes").want(t, 0, value, "")

	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "features.json")
	if err := os.WriteFile(jsonFile, []byte(`{"beta": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	d.run("", "set", "app/features", "--file", jsonFile).want(t, 0, "rev 2\n", "")
	kv, err := d.c.Get(context.Background(), "app/features")
	if err != nil || kv.Value != `{"beta": true}` || kv.ContentType != api.TypeJSON {
		t.Fatalf("app/features = %+v, %v; want the file's JSON", kv, err)
	}

	// Without --type, an existing key keeps its type.
	d.run("", "set", "app/features", `{"beta": false}`).want(t, 0, "rev 3\n", "")
	if kv, _ := d.c.Get(context.Background(), "app/features"); kv.ContentType != api.TypeJSON {
		t.Fatalf("type after a set without --type = %q, want it kept", kv.ContentType)
	}
	// A value that starts with '-' goes after "--".
	d.run("", "set", "app/offset", "--", "-5").want(t, 0, "rev 4\n", "")
	d.run("", "get", "app/offset").want(t, 0, "-5", "")
}

func TestSetTypes(t *testing.T) {
	d := newConfigd(t)
	tests := []struct {
		typ, value, want string
	}{
		{"text", "x", api.TypeText},
		{"json", `[1, 2]`, api.TypeJSON},
		{"yaml", "a: 1\n", api.TypeYAML},
		{"binary", "\x00\x01", api.TypeBinary},
		{"application/json", `{}`, api.TypeJSON},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			key := "types/" + strings.ReplaceAll(tt.typ, "/", "_")
			d.run("", "set", key, tt.value, "--type", tt.typ).want(t, 0, "~^rev \\d+\n$", "")
			var kv api.KeyValue
			out := d.ok("get", key, "-o", "json")
			if err := json.Unmarshal([]byte(out), &kv); err != nil {
				t.Fatalf("get -o json: %v in %q", err, out)
			}
			b, _ := kv.Bytes()
			if kv.ContentType != tt.want || string(b) != tt.value {
				t.Fatalf("get -o json = %+v, want type %s value %q", kv, tt.want, tt.value)
			}
		})
	}
	d.run("", "set", "k", "v", "--type", "csv").want(t, ExitUsage, "", "~^configctl: --type: content type \"csv\": want text")
	d.run("", "set", "k", "{", "--type", "json").want(t, ExitError, "", "~^configctl: .*JSON.*\n$")
}

func TestCompareAndSetConflictExits4(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "k", "1")
	d.run("", "set", "k", "2", "--if-mod-rev", "1").want(t, 0, "rev 2\n", "")
	d.run("", "set", "k", "3", "--if-mod-rev", "1").want(t, ExitConflict, "", "~^configctl: .*mod_rev 2.*\n$")
	d.run("", "set", "new", "x", "--if-mod-rev", "0").want(t, 0, "rev 3\n", "")
	d.run("", "set", "new", "y", "--if-mod-rev", "0").want(t, ExitConflict, "", "~^configctl: .*already exists.*\n$")
	d.run("", "del", "k", "--if-mod-rev", "1").want(t, ExitConflict, "", "")
	d.run("", "del", "k", "--if-mod-rev", "2").want(t, 0, "rev 4\n", "")
	d.run("", "get", "k").want(t, ExitNotFound, "", "")
}

func TestUsageErrorsExit2(t *testing.T) {
	d := newConfigd(t)
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"get", "--bogus", "k"}, "unknown flag: --bogus"},
		{[]string{"set"}, "set: want KEY and VALUE"},
		{[]string{"set", "k"}, "set: want KEY and VALUE"},
		{[]string{"set", "a", "b", "c"}, "set: want KEY and VALUE, got 3"},
		{[]string{"set", "k", "v", "--file", "f"}, "not both"},
		{[]string{"set", "k", "v", "--if-mod-rev", "x"}, "invalid argument"},
		{[]string{"get"}, "get: want KEY, got 0"},
		{[]string{"get", "app/../x"}, `".." segment`},
		{[]string{"get", "app/"}, "ends with '/'"},
		{[]string{"-o", "xml", "get", "k"}, `-o "xml": want table, json or yaml`},
		{[]string{"ls", "a", "b"}, "ls: want at most one PREFIX"},
		{[]string{"rev", "abc"}, `revision "abc": want a number`},
		{[]string{"rev", "0"}, `revision "0": want a number`},
		{[]string{"diff"}, "diff: want REV or REV REV"},
		{[]string{"diff", "1", "2", "--key", "k", "--prefix", "p"}, "not both"},
		{[]string{"rollback", "k"}, "--to REV is required"},
		{[]string{"rollback", "--to", "1"}, "want a KEY or PREFIX, or --all"},
		{[]string{"rollback", "k", "--all", "--to", "1"}, "not both"},
		{[]string{"apply"}, "-f FILE is required"},
		{[]string{"history", "a", "b"}, "history: want at most one KEY or PREFIX"},
		{[]string{"--addr", "ftp://x", "status"}, "--addr: bad configd address"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := d.run("", tt.args...)
			r.want(t, ExitUsage, "", "")
			if !strings.HasPrefix(r.stderr, "configctl: ") || !strings.Contains(r.stderr, tt.stderr) ||
				strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "--help') ") && !strings.HasSuffix(r.stderr, "--help')\n") {
				t.Fatalf("stderr %q: want one line with %q and a pointer to --help", r.stderr, tt.stderr)
			}
		})
	}
}

func TestUnreachableConfigdExits1(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, args := range [][]string{{"get", "k"}, {"set", "k", "v"}, {"status"}} {
		r := runCLI("", append([]string{"--addr", addr}, args...)...)
		r.want(t, ExitError, "", "~^configctl: cannot reach configd at "+regexp.QuoteMeta(addr)+
			`: .*connection refused \(is configd running\? set --addr or CONFIGD_ADDR\)\n$`)
	}
	t.Setenv(EnvAddr, addr)
	runCLI("", "status").want(t, ExitError, "", "~cannot reach configd at "+regexp.QuoteMeta(addr))
}

func TestGetOutputs(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "app/bin", "--type", "binary", "--", "\x00\xff")
	d.run("", "get", "app/bin").want(t, 0, "\x00\xff", "")
	out := d.ok("get", "app/bin", "-o", "yaml")
	var kv struct {
		Key         string `yaml:"key"`
		Value       string `yaml:"value"`
		Encoding    string `yaml:"encoding"`
		ContentType string `yaml:"content_type"`
		ModRev      int64  `yaml:"mod_rev"`
	}
	if err := yaml.Unmarshal([]byte(out), &kv); err != nil {
		t.Fatalf("get -o yaml: %v in %q", err, out)
	}
	if kv.Key != "app/bin" || kv.Encoding != "base64" || kv.Value != "AP8=" || kv.ContentType != api.TypeBinary || kv.ModRev != 1 {
		t.Fatalf("get -o yaml = %+v from %q", kv, out)
	}
}

func TestLs(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "app/db/timeout", "5s")
	d.ok("set", "app/db/pool", `{"max": 10}`, "--type", "json")
	d.ok("set", "app/motd", strings.Repeat("long line ", 10)+"\nsecond line")
	d.ok("set", "apple", "not under app/")

	d.run("", "ls", "app/").want(t, 0, `KEY             TYPE  MOD_REV  VERSION  VALUE
app/db/pool     json  2        1        {"max": 10}
app/db/timeout  text  1        1        5s
app/motd        text  3        1        "long line long line long line long l...
`, "")
	d.run("", "ls", "app").want(t, 0, "~^KEY.*\napp/db/pool", "")
	d.run("", "ls").want(t, 0, "~apple", "")
	d.run("", "ls", "nothing/").want(t, 0, "", "no keys under \"nothing/\" (rev 4)\n")

	var lr api.ListResponse
	if err := json.Unmarshal([]byte(d.ok("ls", "app/db", "-o", "json")), &lr); err != nil {
		t.Fatal(err)
	}
	if lr.Rev != 4 || lr.Prefix != "app/db/" || len(lr.KVs) != 2 || lr.KVs[1].Value != "5s" {
		t.Fatalf("ls -o json = %+v", lr)
	}
	var tree map[string]any
	if err := json.Unmarshal([]byte(d.ok("ls", "app/db/", "--tree")), &tree); err != nil {
		t.Fatal(err)
	}
	if tree["timeout"] != "5s" || tree["pool"].(map[string]any)["max"] != float64(10) {
		t.Fatalf("ls --tree = %v", tree)
	}
	d.run("", "ls", "app/db/", "--tree", "-o", "yaml").want(t, 0, "pool:\n  max: 10\ntimeout: 5s\n", "")
	d.run("", "ls", "app/db/", "--rev", "1", "-o", "json").want(t, 0, "~\"rev\": 1,", "")
}

func TestHistoryAndRev(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "key1", "hello", "--reason", "first value")
	d.ok("set", "app/a", "1")
	d.ok("set", "key1", "oops", "--as", "mallory@laptop")
	d.ok("apply", "-f", writeFile(t, "keys: {app/a: '2', app/b: '1', key1: hello}\n"), "--reason", "both")
	d.ok("del", "app/b")

	r := d.run("", "history", "key1")
	r.want(t, 0, "", "")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^REV\s+TIME\s+ACTOR\s+ORIGIN\s+CHANGES\s+REASON$`).MatchString(lines[0]) {
		t.Fatalf("history key1:\n%s", r.stdout)
	}
	for i, re := range []string{
		`^4\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+tester\s+api\s+key1 \(\+2 more\)\s+both$`,
		`^3\s+\S+ \S+\s+mallory@laptop\s+api\s+key1\s+-$`,
		`^1\s+\S+ \S+\s+tester\s+api\s+\+key1\s+first value$`,
	} {
		if !regexp.MustCompile(re).MatchString(lines[i+1]) {
			t.Errorf("history line %d = %q, want %s", i+1, lines[i+1], re)
		}
	}
	r = d.run("", "history", "app/")
	if !regexp.MustCompile(`(?m)^5\s.*\s-app/b\s`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^4\s.*\sapp/a \+app/b \(\+1 more\)\s`).MatchString(r.stdout) {
		t.Fatalf("history app/:\n%s", r.stdout)
	}
	d.run("", "history", "app", "--prefix", "-o", "json").want(t, 0, "~\"rev\": 5", "")
	d.run("", "history", "--actor", "mallory@laptop").want(t, 0, "~(?s)^REV[^\n]*\n3 [^\n]*\n$", "")

	// One revision a page: --all follows the cursors, without it one page
	// and a hint on stderr.
	r = d.run("", "history", "--limit", "1")
	if strings.Count(r.stdout, "\n") != 2 || !strings.HasPrefix(r.stderr, "more revisions: --all, or --cursor ") {
		t.Fatalf("history --limit 1: %q %q", r.stdout, r.stderr)
	}
	var hr api.HistoryResponse
	if err := json.Unmarshal([]byte(d.ok("history", "--limit", "1", "--all", "-o", "json")), &hr); err != nil {
		t.Fatal(err)
	}
	if len(hr.Revisions) != 5 || hr.Revisions[4].Rev != 1 || hr.NextCursor != "" {
		t.Fatalf("history --all = %d revisions, next %q", len(hr.Revisions), hr.NextCursor)
	}
	d.run("", "history", "nothing").want(t, 0, "", "no revisions\n")

	d.run("", "rev", "3").want(t, 0, `~(?s)^rev 3
time:    \S+
actor:   mallory@laptop
origin:  api
changes: 1
  key1: "hello" → "oops"
$`, "")
	d.run("", "rev", "4").want(t, 0, `~(?s)reason:  both
changes: 3
  app/a: "1" → "2"
  app/b: \(none\) → "1"
  key1: "oops" → "hello"
$`, "")
	d.run("", "rev", "99").want(t, ExitError, "", "~^configctl: .*future.*\n$")
}

func TestDiff(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "key1", "hello")                                    // 1
	d.ok("set", "app/conf", "a: 1\nb: 2\nc: 3\n", "--type", "yaml") // 2
	d.ok("set", "key1", "oops")                                     // 3
	d.ok("set", "app/conf", "a: 1\nb: 20\nc: 3\nd: 4\n")            // 4
	d.ok("set", "app/new", "x")                                     // 5
	d.ok("del", "key1")                                             // 6

	d.run("", "diff", "1", "3", "--key", "key1").want(t, 0, `--- key1 (rev 1)
+++ key1 (rev 3)
- hello
+ oops
`, "")
	d.run("", "diff", "2", "--prefix", "app/").want(t, 0, `--- app/conf (rev 2)
+++ app/conf (rev 6)
  a: 1
- b: 2
+ b: 20
  c: 3
+ d: 4
--- app/new (absent at rev 2)
+++ app/new (rev 6)
+ x
`, "")
	d.run("", "diff", "3", "6", "--key", "key1").want(t, 0, `--- key1 (rev 3)
+++ key1 (absent at rev 6)
- oops
`, "")
	d.run("", "diff", "5", "5").want(t, 0, "", "")
	var dr api.DiffResponse
	if err := json.Unmarshal([]byte(d.ok("diff", "1", "3", "-o", "json")), &dr); err != nil {
		t.Fatal(err)
	}
	if dr.From != 1 || dr.To != 3 || len(dr.Changes) != 2 || dr.Changes[1].New.Value != "oops" {
		t.Fatalf("diff -o json = %+v", dr)
	}
	d.run("", "diff", "3", "1").want(t, ExitError, "", "~^configctl: .*\n$")
}

func TestRollbackKeyAndPrefix(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "key1", "hello") // 1
	d.ok("set", "app/a", "1")    // 2
	d.ok("set", "app/b", "1")    // 3
	d.ok("set", "key1", "oops")  // 4
	d.ok("set", "app/a", "2")    // 5
	d.ok("del", "app/b")         // 6
	d.ok("set", "app/c", "new")  // 7

	d.run("", "rollback", "key1", "--to", "1").want(t, 0, "rev 8 (rollback to 1)\n", "")
	d.run("", "get", "key1").want(t, 0, "hello", "")
	d.run("", "rollback", "key1", "--to", "1").want(t, 0, "nothing to roll back: key1 is already as at rev 1\n", "")

	d.run("", "rollback", "app/", "--to", "3", "--dry-run").want(t, 0, `dry run: rolling app/ back to rev 3 would change 3 keys:
  app/a: "2" → "1"
  app/b: (none) → "1"
  app/c: "new" → (none)
`, "")
	if st, _ := d.c.Status(context.Background()); st.Rev != 8 {
		t.Fatalf("the dry run committed: rev %d", st.Rev)
	}
	d.run("", "rollback", "app", "--prefix", "--to", "3", "--expect-rev", "6").want(t, ExitConflict, "", "~^configctl: conflict")
	d.run("", "rollback", "app/", "--to", "3", "--reason", "bad deploy").want(t, 0, "rev 9 (rollback to 3)\n", "")
	var lr api.ListResponse
	json.Unmarshal([]byte(d.ok("ls", "app/", "-o", "json")), &lr)
	if len(lr.KVs) != 2 || lr.KVs[0].Value != "1" || lr.KVs[1].Key != "app/b" {
		t.Fatalf("app/ after rollback: %+v", lr.KVs)
	}
	r, err := d.c.Revision(context.Background(), 9)
	if err != nil || r.RollbackTo != 3 || !strings.Contains(r.Reason, "bad deploy") || r.Actor != "tester" {
		t.Fatalf("rollback revision = %+v, %v", r, err)
	}
	d.run("", "rollback", "--all", "--to", "1").want(t, 0, "rev 10 (rollback to 1)\n", "")
	d.run("", "ls").want(t, 0, "~(?s)^KEY[^\n]*\nkey1 [^\n]*\n$", "")
}

func TestApplyExportRoundTrip(t *testing.T) {
	src := newConfigd(t)
	values := map[string]struct{ value, typ string }{
		"app/plain":          {"5s", "text"},
		"app/number":         {"8080", "text"},
		"app/bool":           {"true", "text"},
		"app/null":           {"null", "text"},
		"app/empty":          {"", "text"},
		"app/spaces":         {"  padded  ", "text"},
		"app/multi":          {"line 1\nline 2\n", "text"},
		"app/multi-no-eol":   {"line 1\n  line 2", "text"},
		"app/trailing-space": {"a \nb\t\n\n\n", "text"},
		"app/crlf":           {"a\r\nb\r\n", "text"},
		"app/leading-nl":     {"\n\nx", "text"},
		"app/quotes":         {`'single' "double" # not a comment: yes`, "text"},
		"app/unicode":        {"héllo 世界 \u2028 \ufeff", "text"},
		"app/control":        {"bell\a tab\t nul\x00", "text"},
		"app/json":           {`{"b": [1, 2], "a": {"x": null}}`, "json"},
		"app/yaml":           {"a: 1\nlist:\n  - x\n  - y\n", "yaml"},
		"app/binary":         {"\x00\x01\xfe\xff binary", "binary"},
		"app/binary-text":    {"looks like text", "binary"},
		"app/deep/er/key":    {"- not a list", "text"},
	}
	for k, v := range values {
		src.ok("set", k, "--type", v.typ, "--", v.value)
	}
	src.ok("set", "other/k", "not exported")

	exported := src.ok("export", "app/")
	if !strings.HasPrefix(exported, "# configd export of app/ at rev 20") {
		t.Fatalf("export starts with %q", exported[:min(len(exported), 80)])
	}

	dst := newConfigd(t)
	dst.ok("set", "app/stale", "pruned")
	dst.run(exported, "apply", "-f", "-", "--prune").want(t, 0, "rev 2\n", "")
	dst.run(exported, "apply", "-f", "-").want(t, 0, "rev 2 (unchanged)\n", "")

	lr, err := dst.c.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.KVs) != len(values) {
		t.Fatalf("after apply: %d keys, want %d", len(lr.KVs), len(values))
	}
	for _, kv := range lr.KVs {
		want := values[kv.Key]
		b, _ := kv.Bytes()
		wantType, _ := parseType(want.typ)
		if string(b) != want.value || kv.ContentType != wantType {
			t.Errorf("%s = %q (%s), want %q (%s)", kv.Key, b, kv.ContentType, want.value, wantType)
		}
	}
	// The second export is the same file but for the revision.
	again := dst.ok("export", "app/")
	strip := func(s string) string { return regexp.MustCompile(`(?m)^(# .*|rev: \d+)$`).ReplaceAllString(s, "") }
	if strip(again) != strip(exported) {
		t.Fatalf("export after apply differs:\n%s\n---\n%s", exported, again)
	}
	// And from a file, with a key the export does not have: nothing to prune
	// outside the prefix, and the keys of other prefixes stay.
	file := writeFile(t, exported)
	src.run("", "apply", "-f", file).want(t, 0, "rev 20 (unchanged)\n", "")
	src.run("", "get", "other/k").want(t, 0, "not exported", "")
}

func TestApplyHandWrittenFiles(t *testing.T) {
	d := newConfigd(t)
	d.run(`
keys:
  svc/port: 8080
  svc/enabled: yes
  svc/limits:
    type: json
    value: {max: 10, burst: [1, 2]}
  svc/conf:
    type: yaml
    value:
      name: svc
  svc/blob: !!binary AAEC
`, "apply", "-f", "-").want(t, 0, "rev 1\n", "")
	for key, want := range map[string]string{
		"svc/port": "8080", "svc/enabled": "yes",
		"svc/limits": `{"burst":[1,2],"max":10}`, "svc/conf": "name: svc\n", "svc/blob": "\x00\x01\x02",
	} {
		d.run("", "get", key).want(t, 0, want, "")
	}

	tests := []struct {
		name, file, stderr string
	}{
		{"not yaml", "keys: [", `~^configctl: <stdin>: yaml: line 1:`},
		{"empty", "", "configctl: <stdin>: the file is empty\n"},
		{"unknown field", "keys: {}\nextra: 1\n", "configctl: <stdin>:2: unknown field \"extra\" (want rev, prefix, keys)\n"},
		{"bad key", "keys:\n  a//b: x\n", `~^configctl: <stdin>:2: invalid key: key "a//b" has an empty segment`},
		{"null value", "keys:\n  a:\n", `~^configctl: <stdin>:2: key "a": no value`},
		{"outside the prefix", "prefix: app\nkeys:\n  web/a: x\n", `~^configctl: <stdin>:3: key "web/a" is not under the file's prefix "app/"`},
		{"bad type", "keys:\n  a: {type: csv, value: x}\n", `~^configctl: <stdin>:2: key "a": type: content type "csv"`},
		{"structure as text", "keys:\n  a: {value: [1]}\n", `~needs type json or yaml`},
		{"invalid JSON", "keys:\n  a: {type: json, value: '{'}\n", `~^configctl: .*JSON`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.run(tt.file, "apply", "-f", "-").want(t, ExitError, "", tt.stderr)
		})
	}
	d.run("keys: {}\n", "apply", "-f", "-").want(t, 0, "nothing to apply: <stdin> has no keys\n", "")
	if st, _ := d.c.Status(context.Background()); st.Rev != 1 {
		t.Fatalf("a failed apply committed something: rev %d", st.Rev)
	}
}

func TestStatusVersionCompletionHelp(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "k", "v")
	d.run("", "status").want(t, 0, "configd v0.test at "+d.url+", rev 1\n", "")
	d.run("", "status", "-o", "json").want(t, 0, "{\n  \"rev\": 1,\n  \"version\": \"v0.test\"\n}\n", "")

	runCLI("", "version").want(t, 0, "~^configctl \\S+\n$", "")
	runCLI("", "--version").want(t, 0, "~^configctl \\S+\n$", "")
	runCLI("", "completion", "bash").want(t, 0, "~bash completion", "")
	runCLI("", "completion", "zsh").want(t, 0, "~compdef", "")
	runCLI("", "completion", "fish").want(t, 0, "~complete -c configctl", "")

	r := runCLI("", "--help")
	r.want(t, 0, "", "")
	for _, want := range []string{"Exit codes:", "3  not found", "4  conflict", "--addr", "CONFIGD_ADDR", "set", "rollback", "export"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	if !strings.Contains(runCLI("", "apply", "--help").stdout, "encoding: base64") {
		t.Errorf("apply --help does not describe the file format")
	}
}

func TestDefaultActor(t *testing.T) {
	host, _ := os.Hostname()
	if got := defaultActor(func(string) string { return "" }); got != "unknown@"+host {
		t.Errorf("defaultActor without USER = %q", got)
	}
	if got := defaultActor(func(k string) string { return map[string]string{"USER": "alice"}[k] }); got != "alice@"+host {
		t.Errorf("defaultActor = %q", got)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSourcesAndLayers(t *testing.T) {
	d := newConfigd(t)
	d.ok("set", "app/db/host", "db1")
	d.run("", "sources").want(t, 0, "~^NAME +TYPE +MOUNT +STATE.*\nstore +store +- +ok", "")
	d.run("", "ls", "--layers", "app/db/host").want(t, 0, "~\\* +store +text +db1\n", "")
	d.run("", "ls", "--layers", "app/none").want(t, 0, "", "no layer defines \"app/none\"\n")
	d.run("", "ls", "--layers", "app/", "--tree").want(t, 2, "", "~--layers takes one KEY")
	d.run("", "ls", "--layers", "a//b").want(t, 2, "", "~empty segment")
	var l api.LayersResponse
	if err := json.Unmarshal([]byte(d.ok("ls", "--layers", "app/db/host", "-o", "json")), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Layers) != 1 || l.Layers[0].Layer != "store" || !l.Layers[0].Effective || l.Layers[0].Value != "db1" {
		t.Fatalf("layers = %+v", l)
	}
}
