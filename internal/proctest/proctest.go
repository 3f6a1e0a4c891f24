// Package proctest helps tests that run configd's binaries as separate
// processes, as a user would: it builds them once for a test binary, and
// collects a process's output so that a test can wait for a log line
// instead of sleeping.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitLimit bounds every wait for a process, so that a broken one fails
// the test instead of hanging it.
const WaitLimit = 60 * time.Second

// ListeningRE matches configd's "listening" log line; its group is the
// address it listens on (useful with --http-addr 127.0.0.1:0).
var ListeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// Main builds each package of bins (import path) into a temporary folder,
// sets the string each key points to to the binary's path, runs the tests
// and exits. Call it from TestMain.
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

// Log collects a process's output and wakes waiters on every write. Set it
// as the command's Stdout and Stderr.
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
			return nil, fmt.Errorf("the process exited before logging %s; output:\n%s", re, l)
		case <-deadline:
			return nil, fmt.Errorf("no %s within %s; output:\n%s", re, WaitLimit, l)
		}
	}
}
