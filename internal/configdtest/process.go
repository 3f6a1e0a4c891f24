package configdtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// WaitLimit bounds every wait for a process or a daemon, so that a broken
// one fails the test instead of hanging it.
const WaitLimit = 60 * time.Second

// ListeningRE matches configd's "listening" log line; its group is the
// address it listens on (useful with --http-addr 127.0.0.1:0).
var ListeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// Main builds each package of bins (import path) into a temporary folder,
// sets the string each key points to to the binary's path, runs the tests
// and exits. Call it from TestMain, for tests that run configd's binaries
// as a user would.
func Main(m *testing.M, bins map[*string]string) {
	dir, err := os.MkdirTemp("", "configd-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for path, pkg := range bins {
		*path = filepath.Join(dir, filepath.Base(pkg))
		build := exec.Command("go", "build", "-o", *path, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n", pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// CleanEnv is the test's environment without CONFIGD_* variables (and
// without those starting with any of drop), so that only what a test sets
// configures the processes it starts.
func CleanEnv(drop ...string) []string {
	prefixes := append([]string{"CONFIGD_"}, drop...)
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// Log collects a process's or a daemon's output and wakes waiters on every
// write.
type Log struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{}
}

// NewLog returns an empty Log.
func NewLog() *Log { return &Log{notify: make(chan struct{})} }

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.notify)
	l.notify = make(chan struct{})
	return len(p), nil
}

// Snapshot returns the text so far and a channel closed at the next write.
func (l *Log) Snapshot() (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String(), l.notify
}

func (l *Log) String() string { s, _ := l.Snapshot(); return s }

// Wait waits until the output matches re and returns the match. It fails
// when exited is closed first (the process ended without logging it) or
// WaitLimit passes, saying which.
func (l *Log) Wait(re *regexp.Regexp, exited <-chan struct{}) ([]string, error) {
	deadline := time.After(WaitLimit)
	for {
		s, more := l.Snapshot()
		if m := re.FindStringSubmatch(s); m != nil {
			return m, nil
		}
		select {
		case <-more:
		case <-exited:
			if m := re.FindStringSubmatch(l.String()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("it ended before logging %s; output:\n%s", re, l)
		case <-deadline:
			return nil, fmt.Errorf("no %s within %s; output:\n%s", re, WaitLimit, l)
		}
	}
}

// Process is a configd binary running as a process of its own.
type Process struct {
	t testing.TB
	// Cmd is the command that runs it.
	Cmd *exec.Cmd
	// Log is its output, stdout and stderr.
	Log *Log
	// Addr is the host:port it listens on, once Listening has seen it.
	Addr   string
	exited chan struct{} // closed when it has exited and its output is read
}

// Spawn starts cmd, which runs a configd binary, and returns without
// waiting for it; it is killed when the test ends if still running. Unless
// cmd.Env is set, only the command line configures it (CleanEnv).
func Spawn(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{t: t, Cmd: cmd, Log: NewLog(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	if cmd.Env == nil {
		cmd.Env = CleanEnv()
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			if l := p.Log.Troubles(maxTroubles); l != "" {
				t.Logf("%s %s logged (warnings and errors, the last %d at most):\n%s", filepath.Base(cmd.Path), strings.Join(cmd.Args[1:], " "), maxTroubles, l)
			}
		}
	})
	return p
}

// maxTroubles is how many of a failed test's process's warnings and errors
// its log shows.
const maxTroubles = 40

// troubleMarks mark a line of a process's output worth showing when its
// test fails: a warning or an error in either log format, or a panic.
var troubleMarks = []string{"level=WARN", "level=ERROR", `"level":"WARN"`, `"level":"ERROR"`, "panic"}

// Troubles are the last n lines of the output logged at level WARN or
// ERROR: what a failed test shows of a process, which the test's own
// message cannot (a 500's cause is in the server's log).
func (l *Log) Troubles(n int) string {
	var out []string
	for line := range strings.Lines(l.String()) {
		if slices.ContainsFunc(troubleMarks, func(m string) bool { return strings.Contains(line, m) }) {
			out = append(out, line)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "")
}

// StartProcess runs the configd binary bin with args and returns once it
// listens.
func StartProcess(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	p := Spawn(t, exec.Command(bin, args...))
	p.Listening()
	return p
}

// Listening waits for the "listening" line, sets Addr and returns it.
func (p *Process) Listening() string {
	p.t.Helper()
	p.Addr = p.WaitLog(ListeningRE)[1]
	return p.Addr
}

// Exited is closed when the process has exited and its output is read.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// WaitLog waits until the output matches re and returns the match; it
// fails the test if the process exits first or WaitLimit passes.
func (p *Process) WaitLog(re *regexp.Regexp) []string {
	p.t.Helper()
	m, err := p.Log.Wait(re, p.exited)
	if err != nil {
		p.t.Fatalf("%s (%v): %v", filepath.Base(p.Cmd.Path), p.Cmd.ProcessState, err)
	}
	return m
}

// Wait waits for the process to exit and returns its exit code.
func (p *Process) Wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(WaitLimit):
		p.t.Fatalf("%s did not exit within %s; output:\n%s", filepath.Base(p.Cmd.Path), WaitLimit, p.Log)
	}
	return p.Cmd.ProcessState.ExitCode()
}

// Stop asks the process to stop (SIGTERM), unless it has exited, waits for
// it and returns its exit code.
func (p *Process) Stop() int {
	p.t.Helper()
	select {
	case <-p.exited:
	default:
		_ = p.Cmd.Process.Signal(syscall.SIGTERM) // fails only if it has just exited
	}
	return p.Wait()
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}
