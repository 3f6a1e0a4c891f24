package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
)

// configdBin, configctlBin and watchExampleBin (examples/watch) are the binaries the tests run, built once by
// TestMain with go build, as a user would.
var configdBin, configctlBin, watchExampleBin string

func TestMain(m *testing.M) {
	if os.Getenv(sdkClientEnv) != "" {
		os.Exit(sdkClient()) // the test binary as an SDK client (rollout_test.go)
	}
	configdtest.Main(m, map[*string]string{
		&configdBin:      "github.com/configd/configd/cmd/configd",
		&configctlBin:    "github.com/configd/configd/cmd/configctl",
		&watchExampleBin: "github.com/configd/configd/examples/watch",
	})
}

const waitLimit = configdtest.WaitLimit

// startConfigd runs configd on a fresh data directory and a free port and
// returns its address once it listens, and a function that stops it with
// SIGTERM and returns its exit code.
func startConfigd(t *testing.T) (addr string, stop func() int) {
	t.Helper()
	cmd := exec.Command(configdBin, "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0")
	cmd.Env = cleanEnv()
	p := configdtest.Spawn(t, cmd)
	return p.Listening(), p.Stop
}

// cleanEnv is the test's environment without CONFIGD_* and USER, so that
// only what a test sets configures the processes.
func cleanEnv() []string { return configdtest.CleanEnv("USER=") }

// configctl runs the binary like a shell would, with CONFIGD_ADDR=addr and
// USER=tour, and returns its stdout, stderr and exit code.
func configctl(t *testing.T, addr string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(configctlBin, args...)
	cmd.Env = append(cleanEnv(), "CONFIGD_ADDR="+addr, "USER=tour")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run configctl %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// must runs configctl and fails unless it exits 0 with wantOut on stdout
// (wantOut "" is not checked).
func must(t *testing.T, addr, wantOut string, args ...string) string {
	t.Helper()
	out, errOut, code := configctl(t, addr, args...)
	if code != 0 {
		t.Fatalf("configctl %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	if wantOut != "" && out != wantOut {
		t.Fatalf("configctl %s printed %q, want %q", strings.Join(args, " "), out, wantOut)
	}
	return out
}

// TestTour runs the README's tour with the real binaries, literally.
func TestTour(t *testing.T) {
	addr, stop := startConfigd(t)

	// configctl set key1 hello --reason "first value"   → prints "rev 1"
	must(t, addr, "rev 1\n", "set", "key1", "hello", "--reason", "first value")
	// configctl set app/db/timeout 5s
	must(t, addr, "rev 2\n", "set", "app/db/timeout", "5s")
	// configctl get key1                                 → "hello"
	must(t, addr, "hello", "get", "key1")

	// configctl ls app/ -o json
	var lr api.ListResponse
	if err := json.Unmarshal([]byte(must(t, addr, "", "ls", "app/", "-o", "json")), &lr); err != nil {
		t.Fatalf("ls app/ -o json: %v", err)
	}
	if lr.Rev != 2 || lr.Prefix != "app/" || len(lr.KVs) != 1 || lr.KVs[0].Key != "app/db/timeout" ||
		lr.KVs[0].Value != "5s" || lr.KVs[0].ContentType != api.TypeText || lr.KVs[0].ModRev != 2 {
		t.Fatalf("ls app/ -o json = %+v", lr)
	}

	// configctl history key1
	host, _ := os.Hostname()
	hist := must(t, addr, "", "history", "key1")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^REV\s+TIME\s+ACTOR\s+ORIGIN\s+CHANGES\s+REASON$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+`+regexp.QuoteMeta("tour@"+host)+`\s+api\s+\+key1\s+first value$`).MatchString(lines[1]) {
		t.Fatalf("history key1:\n%s", hist)
	}

	// configctl set key1 oops && configctl rollback key1 --to 1   → key1 is "hello" again, a new revision
	must(t, addr, "rev 3\n", "set", "key1", "oops")
	must(t, addr, "rev 4 (rollback to 1)\n", "rollback", "key1", "--to", "1")
	must(t, addr, "hello", "get", "key1")
	if out := must(t, addr, "", "rev", "4"); !strings.Contains(out, "rollback to rev 1\n") || !strings.Contains(out, `  key1: "oops" → "hello"`) {
		t.Fatalf("rev 4:\n%s", out)
	}
	rev4 := must(t, addr, "", "rev", "4", "-o", "json")
	var r api.Revision
	if err := json.Unmarshal([]byte(rev4), &r); err != nil || r.RollbackTo != 1 || len(r.Changes) != 1 ||
		r.Changes[0].Old.Value != "oops" || r.Changes[0].New.Value != "hello" {
		t.Fatalf("rev 4 = %s (%v)", rev4, err)
	}

	// configctl diff 1 3
	must(t, addr, `--- app/db/timeout (absent at rev 1)
+++ app/db/timeout (rev 3)
+ 5s
--- key1 (rev 1)
+++ key1 (rev 3)
- hello
+ oops
`, "diff", "1", "3")

	// configctl propose app/ -f change.yaml --reason "raise limits"; request approve 1 --as bob && request publish 1
	change := t.TempDir() + "/change.yaml"
	if err := os.WriteFile(change, []byte("set:\n  app/db/timeout: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, addr, "request 1 by tour@"+host+": 1 key under app/ (diff: configctl request show 1)\n",
		"propose", "app/", "-f", change, "--reason", "raise limits")
	must(t, addr, "request 1: open (1 approval, none needed)\n", "request", "approve", "1", "--as", "bob")
	must(t, addr, "request 1 published: rev 7\n", "request", "publish", "1")
	must(t, addr, "10s", "get", "app/db/timeout")

	// Exit codes as a shell sees them.
	if _, errOut, code := configctl(t, addr, "get", "nope"); code != 3 || errOut != "configctl: key \"nope\" not found\n" {
		t.Errorf("get nope: exit %d, stderr %q; want 3 and a not-found line", code, errOut)
	}
	if _, errOut, code := configctl(t, addr, "set", "key1", "x", "--if-mod-rev", "1"); code != 4 || !strings.HasPrefix(errOut, "configctl: conflict") {
		t.Errorf("stale --if-mod-rev: exit %d, stderr %q; want 4", code, errOut)
	}
	if _, _, code := configctl(t, addr, "set"); code != 2 {
		t.Errorf("set without arguments: exit %d, want 2", code)
	}
	if code := stop(); code != 0 {
		t.Errorf("configd exit code %d after SIGTERM", code)
	}
	if _, errOut, code := configctl(t, addr, "status"); code != 1 || !strings.HasPrefix(errOut, "configctl: cannot reach configd at "+addr+": ") {
		t.Errorf("status with configd stopped: exit %d, stderr %q", code, errOut)
	}
}
