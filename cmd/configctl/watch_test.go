package main_test

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startWatching runs a watching program and returns its stdout lines as
// they come, once it has said on stderr (or stdout) that it watches.
func startWatching(t *testing.T, cmd *exec.Cmd, ready string) (lines <-chan string, wait func() int) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	out := make(chan string, 100)
	readyc := make(chan struct{})
	scan := func(r io.Reader, toOut bool) {
		sc := bufio.NewScanner(r)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			if !signalled && strings.Contains(line, ready) {
				signalled = true
				close(readyc)
				continue
			}
			if toOut {
				out <- line
			}
		}
		if toOut {
			close(out)
		}
	}
	go scan(stderr, false)
	go scan(stdout, true)
	select {
	case <-readyc:
	case <-time.After(waitLimit):
		t.Fatalf("%s never said %q", cmd.Path, ready)
	}
	return out, func() int { _ = cmd.Wait(); return cmd.ProcessState.ExitCode() }
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("the watcher's output ended")
		}
		return l
	case <-time.After(waitLimit):
		t.Fatal("no line from the watcher")
	}
	return ""
}

func TestConfigctlWatchPrintsEachChangeOnceInOrder(t *testing.T) {
	addr, _ := startConfigd(t)
	must(t, addr, "rev 1\n", "set", "key1", "v1")
	cmd := exec.Command(configctlBin, "watch", "key1", "--count", "3", "-o", "json")
	cmd.Env = append(cleanEnv(), "CONFIGD_ADDR="+addr, "USER=tour")
	lines, wait := startWatching(t, cmd, "watching key1 at rev 1")
	must(t, addr, "rev 2\n", "set", "key1", "v2", "--as", "alice")
	must(t, addr, "rev 3\n", "set", "other", "x")
	must(t, addr, "", "del", "key1")
	must(t, addr, "", "set", "key1", "v3")
	want := []struct {
		rev       int64
		op, value string
	}{{2, "put", "v2"}, {4, "delete", ""}, {5, "put", "v3"}}
	for _, w := range want {
		var u struct {
			Rev     int64  `json:"rev"`
			Actor   string `json:"actor"`
			Changes []struct{ Key, Op, Value string }
		}
		line := nextLine(t, lines)
		if err := json.Unmarshal([]byte(line), &u); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		if u.Rev != w.rev || len(u.Changes) != 1 || u.Changes[0].Op != w.op || u.Changes[0].Value != w.value || u.Changes[0].Key != "key1" {
			t.Fatalf("got %s, want rev %d %s %q", line, w.rev, w.op, w.value)
		}
		if w.rev == 2 && u.Actor != "alice" {
			t.Fatalf("actor %q, want alice", u.Actor)
		}
	}
	if code := wait(); code != 0 {
		t.Fatalf("configctl watch --count 3 exited %d", code)
	}
}

func TestConfigctlWatchFailsClearlyWithoutConfigd(t *testing.T) {
	_, errOut, code := configctl(t, "127.0.0.1:1", "watch", "key1", "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	_, _, code = configctl(t, "127.0.0.1:1", "watch", "a//b")
	if code != 2 {
		t.Fatalf("invalid key: exit %d, want 2", code)
	}
}

// TestSDKExampleSeesConfigctlSet is the watch issue's "done when": a
// program using only the SDK (examples/watch) watches key1, and
// configctl set key1 v2 makes its Next return v2.
func TestSDKExampleSeesConfigctlSet(t *testing.T) {
	addr, _ := startConfigd(t)
	must(t, addr, "rev 1\n", "set", "key1", "v1")
	cmd := exec.Command(watchExampleBin, "key1")
	cmd.Env = append(cleanEnv(), "CONFIGD_ADDR="+addr)
	lines, _ := startWatching(t, cmd, "rev 1: ")
	must(t, addr, "rev 2\n", "set", "key1", "v2", "--as", "bob")
	if l := nextLine(t, lines); l != "rev 2 by bob: key1 = v2" {
		t.Fatalf("example printed %q", l)
	}
}
