package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server"
)

// startAuthDaemon runs the whole daemon with authentication on and
// returns its address, its admin token and a token that may read app/ and
// nothing else.
func startAuthDaemon(t *testing.T) (addr, admin, appReader string) {
	t.Helper()
	admin = "test-admin-token-0123456789"
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr = "", "127.0.0.1:0"
	cfg.Auth, cfg.BootstrapToken = true, admin
	addr = configdtest.Run(t, cfg).Addr
	r := runCLI("", "--addr", addr, "--token", admin, "token", "create", "--name", "app-reader", "--grant", "read:app/")
	r.want(t, 0, "", "")
	return addr, admin, strings.TrimSpace(r.stdout)
}

// watching is a configctl watch running in-process.
type watching struct {
	stdout, stderr *configdtest.Log
	exited         chan struct{}
	code           int // once exited is closed
}

func startWatch(args ...string) *watching {
	w := &watching{stdout: configdtest.NewLog(), stderr: configdtest.NewLog(), exited: make(chan struct{})}
	go func() {
		defer close(w.exited)
		w.code = Main(context.Background(), args, strings.NewReader(""), w.stdout, w.stderr)
	}()
	return w
}

// wait waits for the watch to exit and returns its exit code.
func (w *watching) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-w.exited:
		return w.code
	case <-time.After(configdtest.WaitLimit):
		t.Fatalf("configctl watch did not exit; stderr %q", w.stderr)
	}
	return -1
}

// TestWatchWithAPrefixScopedToken is issue 13's fault 5: with a token that
// may read app/ only, configctl watch of a key and of a prefix under app/
// print the next change and exit 0.
func TestWatchWithAPrefixScopedToken(t *testing.T) {
	addr, admin, reader := startAuthDaemon(t)
	for _, tc := range []struct{ arg, name, key string }{
		{"app/x", "app/x", "app/x"},
		{"app/", "app", "app/db/host"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			w := startWatch("--addr", addr, "--token", reader, "watch", tc.arg, "--count", "1")
			if _, err := w.stderr.Wait(regexp.MustCompile(`watching `+regexp.QuoteMeta(tc.name)+` at rev \d+`), w.exited); err != nil {
				t.Fatal(err)
			}
			runCLI("", "--addr", addr, "--token", admin, "set", tc.key, "v-"+tc.arg).want(t, 0, "", "")
			if _, err := w.stdout.Wait(regexp.MustCompile(`rev \d+ by admin: `+regexp.QuoteMeta(tc.key)+` = v-`+regexp.QuoteMeta(tc.arg)), w.exited); err != nil {
				t.Fatal(err)
			}
			if code := w.wait(t); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, w.stderr)
			}
		})
	}
}

// TestWatchRefusedExits5: a watch that configd refuses for its token ends
// at once with exit 5 and configd's reason, not with endless retries.
func TestWatchRefusedExits5(t *testing.T) {
	addr, _, reader := startAuthDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"a prefix outside the grants", []string{"--token", reader, "watch", "other/"},
			[]string{`token "app-reader" lacks read on key or prefix "other/"`, "its grants: read:app/"}},
		{"a key outside the grants", []string{"--token", reader, "watch", "key1"},
			[]string{`token "app-reader" lacks read on key or prefix "key1"`}},
		{"everything", []string{"--token", reader, "watch", "/"}, []string{"lacks read on every key"}},
		{"no token", []string{"watch", "app/x"}, []string{"authentication required", "(set --token or CONFIGD_TOKEN)"}},
		{"a revoked or unknown token", []string{"--token", "cfd_unknown", "watch", "app/"}, []string{"not known"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// --timeout is far longer than the test waits: the refusal must
			// not wait for it.
			w := startWatch(append([]string{"--addr", addr, "--timeout", "1h"}, tc.args...)...)
			if code := w.wait(t); code != ExitDenied {
				t.Fatalf("exit %d, want %d; stderr %q", code, ExitDenied, w.stderr)
			}
			stderr := w.stderr.String()
			if !strings.HasPrefix(stderr, "configctl: configd refused the watch: ") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q: want one line, configctl's", stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q lacks %q", stderr, want)
				}
			}
		})
	}
}

// TestRevokingTheTokenEndsARunningWatch: a running `configctl watch` ends
// with exit 5 and configd's reason the moment its token is revoked, and
// prints nothing written after the revocation.
func TestRevokingTheTokenEndsARunningWatch(t *testing.T) {
	addr, admin, reader := startAuthDaemon(t)
	w := startWatch("--addr", addr, "--token", reader, "--timeout", "1h", "watch", "app/")
	if _, err := w.stderr.Wait(regexp.MustCompile(`watching app at rev \d+`), w.exited); err != nil {
		t.Fatal(err)
	}
	runCLI("", "--addr", addr, "--token", admin, "token", "revoke", "app-reader").want(t, 0, "", "revoked token app-reader\n")
	runCLI("", "--addr", addr, "--token", admin, "set", "app/after", "secret-after-revocation").want(t, 0, "", "")
	if code := w.wait(t); code != ExitDenied {
		t.Fatalf("exit %d, want %d; stderr %q", code, ExitDenied, w.stderr)
	}
	if !strings.Contains(w.stderr.String(), "revoked") || strings.Contains(w.stdout.String(), "secret-after-revocation") {
		t.Errorf("stdout %q, stderr %q: want the revocation named and nothing written after it", w.stdout, w.stderr)
	}
}
