package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfigFileExits2: a config file with an unknown key, or a value of
// the wrong type, stops configd at start with exit code 2 (a bad
// configuration, as a bad flag), and the message names the file, the line,
// the key and what it wants. Nothing is opened: the data dir is not
// created.
func TestBadConfigFileExits2(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       string
	}{
		{"unknown key", "log_level: info\nhttp_adr: 127.0.0.1:0\n", `line 2: unknown key "http_adr" (known: `},
		{"list for an address", "http_addr: [1]\n", "line 1: http_addr: want a single value (host:port), got a list"},
		{"word for a size", "log_level: info\nmax_value_size: big\n", `line 2: max_value_size: want a whole number of bytes, got "big"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			confPath := filepath.Join(dir, "configd.yaml")
			if err := os.WriteFile(confPath, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(dir, "data")
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--data-dir", data, "--config", confPath)
			cmd.Env = []string{} // only the flags and the file configure it
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil {
				t.Fatalf("run configd: %v", err)
			}
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("exit %d, want 2; output:\n%s", code, out)
			}
			if want := "configd: config file " + confPath + ": " + tc.want; !strings.Contains(configdLine(string(out)), want) {
				t.Errorf("output %q does not contain %q", out, want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("data dir created for a bad config: %v", err)
			}
		})
	}
}
