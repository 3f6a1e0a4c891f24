package server_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/configd/configd/server"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/consul"
	"github.com/configd/configd/source/etcd"
	"github.com/configd/configd/source/file"
)

// A sources: entry with a field its type does not have, or a value of the
// wrong kind, is refused when the config is loaded, with the file, the
// line, the source, its type, the field and what it wants.
func TestConfigRefusesSourceFieldsItsTypeLacks(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"field of another type", "sources:\n  - name: shared\n    type: consul\n    endpoints: [127.0.0.1:2379]\n",
			[]string{"line 4", `source "shared" (type consul)`, "endpoints: unknown field", "address, prefix, datacenter, token, tls"}},
		{"typo", "sources:\n  - name: defaults\n    type: file\n    paht: ./config/\n",
			[]string{"line 4", `source "defaults" (type file)`, "paht: unknown field", "path"}},
		{"list as a number", "sources:\n  - name: infra\n    type: etcd\n    endpoints: 5\n",
			[]string{"line 4", `source "infra" (type etcd)`, "endpoints: want a list of strings, got 5"}},
		{"yes as tls", "sources:\n  - name: infra\n    type: etcd\n    endpoints: [x:1]\n    tls: yes\n",
			[]string{"line 5", `source "infra" (type etcd)`, `tls: want a mapping of ca_file, cert_file, key_file, server_name, insecure_skip_verify, got "yes"`}},
		{"unknown tls field", "sources:\n  - name: infra\n    type: etcd\n    endpoints: [x:1]\n    tls:\n      ca: ca.pem\n",
			[]string{"line 6", `source "infra" (type etcd)`, "tls.ca: unknown field", "ca_file"}},
		{"field given twice", "sources:\n  - name: env\n    type: env\n    prefix: A_\n    prefix: B_\n",
			[]string{"line 5", `source "env" (type env)`, "prefix: already set on line 4"}},
		{"unknown type", "sources:\n  - name: vault\n    type: vault\n",
			[]string{"line 2", `source "vault" (type vault)`, `unknown source type "vault" (known: consul, env, etcd, file)`}},
		{"no type", "sources:\n  - name: x\n", []string{"line 2", `source "x"`, "type is required (one of consul, env, etcd, file)"}},
		{"type's own check", "sources:\n  - name: env\n    type: env\n", []string{"line 2", `source "env" (type env)`, "prefix is required"}},
		{"store with a mount", "sources:\n  - type: store\n    mount: app/\n",
			[]string{"line 3", "the store layer (type store)", "mount: unknown field (known: name, type)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file)
			_, err := server.LoadConfig([]string{"--config", path}, envFunc(nil), io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			for _, w := range append([]string{"config file " + path + ": "}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// The example with sources decodes each entry into its type's config.
func TestConfigDecodesEachSourceIntoItsType(t *testing.T) {
	cfg, err := server.LoadConfig([]string{"--config", "../examples/configd.yaml"}, envFunc(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, c := range cfg.Sources {
		types = append(types, c.Type)
	}
	if !slices.Equal(types, []string{"file", "consul", "etcd", "env", "store"}) {
		t.Fatalf("types %v", types)
	}
	if c, ok := cfg.Sources[0].TypeConfig.(file.Config); !ok || c.Path != "./examples/config/" {
		t.Errorf("file source: %#v", cfg.Sources[0].TypeConfig)
	}
	if c, ok := cfg.Sources[1].TypeConfig.(consul.Config); !ok || c.Address != "127.0.0.1:8500" || c.Prefix != "micro/config/" {
		t.Errorf("consul source: %#v", cfg.Sources[1].TypeConfig)
	}
	if c, ok := cfg.Sources[2].TypeConfig.(etcd.Config); !ok || !slices.Equal(c.Endpoints, []string{"127.0.0.1:2379"}) {
		t.Errorf("etcd source: %#v", cfg.Sources[2].TypeConfig)
	}
	for _, c := range cfg.Sources[:4] {
		if err := c.Validate(); err != nil {
			t.Error(err)
		}
	}
	if _, err := server.LoadConfig([]string{"--config", writeFile(t, "sources:\n  - {name: x, type: nope}\n")}, envFunc(nil), io.Discard); !errors.Is(err, source.ErrUnknownType) {
		t.Errorf("unknown type: %v, want source.ErrUnknownType", err)
	}
}
