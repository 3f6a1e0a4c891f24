// Package configdtest starts a real configd for the adapters' tests: the
// binary built from this repository's cmd/configd, on a fresh data dir and
// a loopback port, and writes keys through its HTTP API.
package configdtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"
)

// bin is the configd binary Main built.
var bin string

// Main builds configd into a temporary directory, runs the package's
// tests and examples, removes the directory and exits: call it from
// TestMain.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "configd-adapter-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bin, err = Build(dir); err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// New starts a configd (Main's binary) for the test and stops it when the
// test ends.
func New(t testing.TB) *Daemon {
	t.Helper()
	d, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// Build builds configd from this repository into dir and returns the
// binary's path.
func Build(dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("configdtest: no caller information to find the repository")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	bin := filepath.Join(dir, "configd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/configd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("configdtest: go build ./cmd/configd: %w\n%s", err, out)
	}
	return bin, nil
}

// Daemon is a running configd.
type Daemon struct {
	// Addr is its HTTP address, host:port.
	Addr string
	cmd  *exec.Cmd
	dir  string
}

// Start runs Main's configd binary on a fresh data dir and a free loopback
// port and waits until it listens.
func Start(ctx context.Context) (*Daemon, error) {
	if bin == "" {
		return nil, fmt.Errorf("configdtest: no configd binary: call configdtest.Main from TestMain")
	}
	dir, err := os.MkdirTemp("", "configd-adapter-*")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--log-level", "info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("configdtest: start %s: %w", bin, err)
	}
	d := &Daemon{cmd: cmd, dir: dir}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case d.Addr = <-found:
		return d, nil
	case <-time.After(30 * time.Second):
		d.Stop()
		return nil, fmt.Errorf("configdtest: configd did not listen within 30s")
	}
}

// Stop kills the daemon and removes its data dir.
func (d *Daemon) Stop() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
	os.RemoveAll(d.dir)
}

// MustPut writes key as Put does and fails the test on an error.
func (d *Daemon) MustPut(t testing.TB, key, contentType, value string) {
	t.Helper()
	if err := d.Put(key, contentType, value); err != nil {
		t.Fatal(err)
	}
}

// MustDelete deletes key as Delete does and fails the test on an error.
func (d *Daemon) MustDelete(t testing.TB, key string) {
	t.Helper()
	if err := d.Delete(key); err != nil {
		t.Fatal(err)
	}
}

// Put writes key with the content type through PUT /v1/kv/<key>.
func (d *Daemon) Put(key, contentType, value string) error {
	return d.do(http.MethodPut, key, contentType, value)
}

// Delete deletes key through DELETE /v1/kv/<key>.
func (d *Daemon) Delete(key string) error {
	return d.do(http.MethodDelete, key, "", "")
}

func (d *Daemon) do(method, key, contentType, value string) error {
	req, err := http.NewRequest(method, "http://"+d.Addr+"/v1/kv/"+key, bytes.NewBufferString(value))
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("configdtest: %s %s: %w", method, key, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("configdtest: %s %s: %s: %s", method, key, resp.Status, body)
	}
	return nil
}
