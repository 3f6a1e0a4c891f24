package server_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/configd/configd/server"
)

func TestAuthIsOnWithTheFlagEnvFileOrANonLoopbackAddress(t *testing.T) {
	file := filepath.Join(t.TempDir(), "configd.yaml")
	if err := os.WriteFile(file, []byte("auth_enabled: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"dev mode", nil, nil, false},
		{"flag", []string{"--auth"}, nil, true},
		{"flag false", []string{"--auth=false"}, map[string]string{"CONFIGD_AUTH": "true"}, false},
		{"env", nil, map[string]string{"CONFIGD_AUTH": "true"}, true},
		{"file", []string{"--config", file}, nil, true},
		{"localhost", []string{"--http-addr", "localhost:7700"}, nil, false},
		{"ipv6 loopback", []string{"--http-addr", "[::1]:7700"}, nil, false},
		{"every interface", []string{"--http-addr", ":7700"}, nil, true},
		{"public address", []string{"--http-addr", "10.0.0.5:7700"}, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := server.LoadConfig(c.args, env(c.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.AuthOn() != c.want {
				t.Errorf("AuthOn() = %v, want %v", cfg.AuthOn(), c.want)
			}
		})
	}
	cfg, err := server.LoadConfig(nil, env(map[string]string{"CONFIGD_BOOTSTRAP_TOKEN": "from-the-environment"}), io.Discard)
	if err != nil || cfg.BootstrapToken != "from-the-environment" {
		t.Errorf("bootstrap token: %q, %v", cfg.BootstrapToken, err)
	}
}
