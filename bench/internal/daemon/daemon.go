// Package daemon starts a configd binary for a benchmark and tells its
// address and resident memory.
package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Daemon is a running configd.
type Daemon struct {
	Addr string
	// DebugAddr is where it serves pprof profiles, when it was started
	// with --debug-addr.
	DebugAddr string
	cmd       *exec.Cmd
	dir       string
}

var (
	listening = regexp.MustCompile(`msg=listening addr=(\S+)`)
	debugging = regexp.MustCompile(`msg="serving pprof profiles" addr=(\S+)`)
)

// Start runs bin on a fresh data dir with a free port and waits until it
// listens.
func Start(ctx context.Context, bin string, args ...string) (*Daemon, error) {
	dir, err := os.MkdirTemp("", "configd-bench-*")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--data-dir", dir, "--http-addr", "127.0.0.1:0", "--log-level", "info",
		// Every benchmark client comes from one address, one identity: no cap
		// on its watches.
		"--max-watches-per-identity", "0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	d := &Daemon{cmd: cmd, dir: dir}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := debugging.FindStringSubmatch(sc.Text()); m != nil {
				d.DebugAddr = m[1] // before "listening": read after found
			}
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
		return nil, fmt.Errorf("configd did not start listening within 30s")
	}
}

// RSS returns the daemon's resident memory in bytes.
func (d *Daemon) RSS() (int64, error) { return RSS(d.cmd.Process.Pid) }

// RSS returns a process's resident memory in bytes, from /proc.
func RSS(pid int) (int64, error) { return procStatus(pid, "VmRSS:") }

// procStatus returns a size field of /proc/PID/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// Stop kills the daemon and removes its data dir.
func (d *Daemon) Stop() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
	os.RemoveAll(d.dir)
}

// HWM returns the daemon's peak resident memory so far (VmHWM) in bytes.
func (d *Daemon) HWM() (int64, error) { return procStatus(d.cmd.Process.Pid, "VmHWM:") }

// CPU returns the CPU time (user and system) the daemon has used so far.
func (d *Daemon) CPU() (time.Duration, error) { return CPU(d.cmd.Process.Pid) }

// CPU returns the CPU time (user and system) process pid has used so far.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command's name, which ends with ")": state is
	// the first, utime and stime the 12th and 13th, in clock ticks (100/s).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
