package server_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/server"
)

func envFunc(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "configd.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedenceFlagOverEnvOverFileOverDefault(t *testing.T) {
	def := server.DefaultConfig()
	file := "data_dir: /file/data\nhttp_addr: 127.0.0.1:1001\nlog_format: json\nlog_level: warn\nmax_value_size: 1000\nshutdown_timeout: 1s\n"
	tlsFile := "tls:\n  cert: /file/cert.pem\n  key: /file/key.pem\n  client_ca: /file/ca.pem\n"
	for _, tc := range []struct {
		name string
		file string // "" for no --config
		env  map[string]string
		args []string
		want func(c *server.Config)
	}{
		{name: "defaults", want: func(c *server.Config) {}},
		{name: "file", file: file, want: func(c *server.Config) {
			c.DataDir, c.HTTPAddr, c.LogFormat, c.LogLevel, c.MaxValueSize, c.ShutdownTimeout =
				"/file/data", "127.0.0.1:1001", "json", "warn", 1000, time.Second
		}},
		{name: "env over file", file: file,
			env: map[string]string{"CONFIGD_DATA_DIR": "/env/data", "CONFIGD_MAX_VALUE_SIZE": "2000", "CONFIGD_LOG_LEVEL": "debug"},
			want: func(c *server.Config) {
				c.DataDir, c.HTTPAddr, c.LogFormat, c.LogLevel, c.MaxValueSize, c.ShutdownTimeout =
					"/env/data", "127.0.0.1:1001", "json", "debug", 2000, time.Second
			}},
		{name: "flag over env over file", file: file,
			env:  map[string]string{"CONFIGD_DATA_DIR": "/env/data", "CONFIGD_MAX_VALUE_SIZE": "2000", "CONFIGD_HTTP_ADDR": "127.0.0.1:2002"},
			args: []string{"--data-dir", "/flag/data", "--log-format=text", "-shutdown-timeout", "3s"},
			want: func(c *server.Config) {
				c.DataDir, c.HTTPAddr, c.LogFormat, c.LogLevel, c.MaxValueSize, c.ShutdownTimeout =
					"/flag/data", "127.0.0.1:2002", "text", "warn", 2000, 3*time.Second
			}},
		{name: "flag over default", args: []string{"--http-addr", "127.0.0.1:0", "--max-value-size", "10"},
			want: func(c *server.Config) { c.HTTPAddr, c.MaxValueSize = "127.0.0.1:0", 10 }},
		{name: "env over default", env: map[string]string{"CONFIGD_LOG_FORMAT": "json", "CONFIGD_SHUTDOWN_TIMEOUT": "1m"},
			want: func(c *server.Config) { c.LogFormat, c.ShutdownTimeout = "json", time.Minute }},
		{name: "empty env is unset", file: file, env: map[string]string{"CONFIGD_DATA_DIR": ""},
			want: func(c *server.Config) {
				c.DataDir, c.HTTPAddr, c.LogFormat, c.LogLevel, c.MaxValueSize, c.ShutdownTimeout =
					"/file/data", "127.0.0.1:1001", "json", "warn", 1000, time.Second
			}},
		{name: "file named by env", env: map[string]string{"CONFIGD_CONFIG": "FILE"}, file: file,
			want: func(c *server.Config) {
				c.DataDir, c.HTTPAddr, c.LogFormat, c.LogLevel, c.MaxValueSize, c.ShutdownTimeout =
					"/file/data", "127.0.0.1:1001", "json", "warn", 1000, time.Second
			}},
		{name: "empty file", file: "# nothing set\n", want: func(c *server.Config) {}},
		{name: "tls from file", file: tlsFile, want: func(c *server.Config) {
			c.TLSCert, c.TLSKey, c.TLSClientCA = "/file/cert.pem", "/file/key.pem", "/file/ca.pem"
		}},
		{name: "tls env over file", file: tlsFile,
			env: map[string]string{"CONFIGD_TLS_CERT": "/env/cert.pem", "CONFIGD_TLS_CLIENT_CA": "/env/ca.pem"},
			want: func(c *server.Config) {
				c.TLSCert, c.TLSKey, c.TLSClientCA = "/env/cert.pem", "/file/key.pem", "/env/ca.pem"
			}},
		{name: "tls flag over env over file", file: tlsFile,
			env:  map[string]string{"CONFIGD_TLS_KEY": "/env/key.pem", "CONFIGD_TLS_CLIENT_CA": "/env/ca.pem"},
			args: []string{"--tls-cert", "/flag/cert.pem", "--tls-key=/flag/key.pem"},
			want: func(c *server.Config) {
				c.TLSCert, c.TLSKey, c.TLSClientCA = "/flag/cert.pem", "/flag/key.pem", "/env/ca.pem"
			}},
		{name: "tls env over default", env: map[string]string{"CONFIGD_TLS_CERT": "/env/cert.pem", "CONFIGD_TLS_KEY": "/env/key.pem"},
			want: func(c *server.Config) { c.TLSCert, c.TLSKey = "/env/cert.pem", "/env/key.pem" }},
		{name: "empty tls section", file: "tls:\n", want: func(c *server.Config) {}},
		{name: "etcd api prefix from file", file: "etcd_api_prefix: /\n", want: func(c *server.Config) { c.EtcdAPIPrefix = "/" }},
		{name: "etcd api prefix from env", env: map[string]string{"CONFIGD_ETCD_API_PREFIX": "/env/"},
			want: func(c *server.Config) { c.EtcdAPIPrefix = "/env/" }},
		{name: "etcd api prefix flag over env over file", file: "etcd_api_prefix: /file/\n", env: map[string]string{"CONFIGD_ETCD_API_PREFIX": "/env/"},
			args: []string{"--etcd-api-prefix", "/"}, want: func(c *server.Config) { c.EtcdAPIPrefix = "/" }},
		{name: "history from file, age from env, count from flag",
			file: "history:\n  keep_revisions: 100\n  keep_age: 24h\n",
			env:  map[string]string{"CONFIGD_HISTORY_KEEP_AGE": "720h"},
			args: []string{"--history-keep-revisions", "5000"},
			want: func(c *server.Config) { c.HistoryKeepRevisions, c.HistoryKeepAge = 5000, 720*time.Hour }},
		{name: "registry from file, address from env, ttl from flag",
			file: "registry:\n  name: consul\n  address: [a:1, b:2]\n  ttl: 10s\n  metadata: {zone: a}\n",
			env:  map[string]string{"MICRO_REGISTRY": "etcd", "MICRO_REGISTRY_ADDRESS": "e:1,e:2"},
			args: []string{"--register-ttl", "20s", "--server-advertise", "10.0.0.1:7700"},
			want: func(c *server.Config) {
				c.Registry.Micro.Registry, c.Registry.Micro.RegistryAddress, c.Registry.Micro.RegisterTTL = "etcd", []string{"e:1", "e:2"}, 20*time.Second
				c.Registry.Micro.ServerMetadata, c.Registry.Micro.ServerAdvertise = map[string]string{"zone": "a"}, "10.0.0.1:7700"
			}},
		{name: "registry flag over env", env: map[string]string{"MICRO_REGISTRY": "etcd"}, args: []string{"--registry", "mdns"},
			want: func(c *server.Config) { c.Registry.Micro.Registry = "mdns" }},
		{name: "registry off by an empty flag", env: map[string]string{"MICRO_REGISTRY": "etcd"}, args: []string{"--registry="},
			want: func(c *server.Config) {}},
		{name: "limits from file, burst from env, watches from flag",
			file: "rate_limit: 2.5\nrate_burst: 3\nmax_watches_per_identity: 7\n",
			env:  map[string]string{"CONFIGD_RATE_BURST": "10"},
			args: []string{"--max-watches-per-identity", "0"},
			want: func(c *server.Config) { c.RateLimit, c.RateBurst, c.MaxWatchesPerIdentity = 2.5, 10, 0 }},
		{name: "rate limit env over default", env: map[string]string{"CONFIGD_RATE_LIMIT": "50"},
			want: func(c *server.Config) { c.RateLimit = 50 }},
		{name: "bootstrap token file from file", file: "auth:\n  bootstrap_token_file: /run/secrets/admin\n",
			want: func(c *server.Config) { c.BootstrapTokenFile = "/run/secrets/admin" }},
		{name: "bootstrap token file flag over env", env: map[string]string{"CONFIGD_BOOTSTRAP_TOKEN_FILE": "/env/tok"},
			args: []string{"--bootstrap-token-file", "/flag/tok"},
			want: func(c *server.Config) { c.BootstrapTokenFile = "/flag/tok" }},
		{name: "master key file from file", file: "secrets:\n  master_key_file: /run/secrets/master\n",
			want: func(c *server.Config) { c.MasterKeyFile = "/run/secrets/master" }},
		{name: "master key file flag over env", env: map[string]string{"CONFIGD_MASTER_KEY_FILE": "/env/mk"},
			args: []string{"--master-key-file", "/flag/mk"},
			want: func(c *server.Config) { c.MasterKeyFile = "/flag/mk" }},
		{name: "master key from env only", env: map[string]string{"CONFIGD_MASTER_KEY": "QUJD"},
			want: func(c *server.Config) { c.MasterKey = "QUJD" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = v
			}
			args := tc.args
			if tc.file != "" {
				p := writeFile(t, tc.file)
				if env["CONFIGD_CONFIG"] == "FILE" {
					env["CONFIGD_CONFIG"] = p
				} else {
					args = append([]string{"--config", p}, args...)
				}
			}
			got, err := server.LoadConfig(args, envFunc(env), io.Discard)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			want := def
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestReplicaSettings: --store etcd and its settings, from each source.
func TestReplicaSettings(t *testing.T) {
	file := writeFile(t, "store: etcd\netcd:\n  endpoints: [10.0.0.1:2379, https://10.0.0.2:2379]\n  prefix: /prod/configd\n  lease_ttl: 3s\n  username: configd\n  forward_writes: false\n")
	got, err := server.LoadConfig([]string{"--config", file, "--replica-name", "r1", "--read-wait", "2s"},
		envFunc(map[string]string{"CONFIGD_ETCD_PASSWORD": "pw", "CONFIGD_ETCD_TIMEOUT": "3s"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := server.DefaultConfig()
	want.Store, want.ReadWait = server.StoreEtcd, 2*time.Second
	want.Etcd = server.EtcdConfig{Endpoints: []string{"10.0.0.1:2379", "https://10.0.0.2:2379"}, Prefix: "/prod/configd", Timeout: 3 * time.Second,
		Username: "configd", Password: "pw", LeaseTTL: 3 * time.Second, ReplicaName: "r1", ForwardWrites: false}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestConfigFlagFileBeatsEnvFile(t *testing.T) {
	byFlag := writeFile(t, "data_dir: /by/flag\n")
	byEnv := writeFile(t, "data_dir: /by/env\n")
	got, err := server.LoadConfig([]string{"--config", byFlag}, envFunc(map[string]string{"CONFIGD_CONFIG": byEnv}), io.Discard)
	if err != nil || got.DataDir != "/by/flag" {
		t.Errorf("data dir %q (%v), want /by/flag", got.DataDir, err)
	}
}

func TestConfigErrorsNameTheirSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		env  map[string]string
		args []string
		want []string
	}{
		{name: "unknown file key", file: "data_dir: x\ndatadir: y\n", want: []string{"line 2", `"datadir"`, "data_dir"}},
		{name: "bad file value", file: "max_value_size: big\n", want: []string{"line 1", "max_value_size", "big"}},
		{name: "nested file value", file: "log_level:\n  a: b\n", want: []string{"log_level", "single value"}},
		{name: "duplicate file key", file: "log_level: info\nlog_level: warn\n", want: []string{"line 2", "already set on line 1"}},
		{name: "file not a mapping", file: "- a\n- b\n", want: []string{"mapping"}},
		{name: "bad YAML", file: "a: [\n", want: []string{"config file"}},
		{name: "bad env", env: map[string]string{"CONFIGD_LOG_FORMAT": "xml"}, want: []string{"CONFIGD_LOG_FORMAT", "text or json"}},
		{name: "bad flag", args: []string{"--log-level", "loud"}, want: []string{"--log-level", "loud"}},
		{name: "zero size", args: []string{"--max-value-size", "0"}, want: []string{"--max-value-size"}},
		{name: "huge size", args: []string{"--max-value-size", "1000000000"}, want: []string{"--max-value-size"}},
		{name: "bad addr", args: []string{"--http-addr", "7700"}, want: []string{"host:port"}},
		{name: "bad timeout", args: []string{"--shutdown-timeout", "-1s"}, want: []string{"positive"}},
		{name: "positional", args: []string{"serve"}, want: []string{`"serve"`}},
		{name: "unknown flag", args: []string{"--port", "1"}, want: []string{"port"}},
		{name: "missing file", args: []string{"--config", "/no/such/configd.yaml"}, want: []string{"/no/such/configd.yaml"}},
		{name: "tls cert without key", args: []string{"--tls-cert", "c.pem"}, want: []string{"tls.cert", "--tls-key"}},
		{name: "tls key without cert", env: map[string]string{"CONFIGD_TLS_KEY": "k.pem"}, want: []string{"--tls-cert"}},
		{name: "client CA without TLS", file: "tls:\n  client_ca: ca.pem\n", want: []string{"tls.client_ca", "--tls-cert"}},
		{name: "unknown tls key", file: "tls:\n  cert: c.pem\n  certfile: k.pem\n", want: []string{"line 3", `"tls.certfile"`, "tls.key"}},
		{name: "tls not a mapping", file: "tls: on\n", want: []string{"line 1", "tls", "mapping"}},
		{name: "duplicate tls key", file: "tls:\n  cert: a\n  cert: b\n", want: []string{"line 3", "tls.cert", "already set on line 2"}},
		{name: "tls key flat", file: "tls_cert: c.pem\n", want: []string{`"tls_cert"`, "tls.cert"}},
		{name: "unknown registry", args: []string{"--registry", "zookeeper"}, want: []string{"zookeeper", "etcd", "consul"}},
		{name: "registry address without name", env: map[string]string{"MICRO_REGISTRY_ADDRESS": "x:1"}, want: []string{"--registry", "MICRO_REGISTRY"}},
		{name: "server address", args: []string{"--server-address", ":1"}, want: []string{"--server-address", "--http-addr"}},
		{name: "bad register ttl", env: map[string]string{"MICRO_REGISTER_TTL": "0s"}, want: []string{"MICRO_REGISTER_TTL", "> 0"}},
		{name: "interval not under ttl", args: []string{"--registry", "etcd", "--register-ttl", "3s", "--register-interval", "3s"}, want: []string{"--register-interval", "--register-ttl"}},
		{name: "unknown registry key", file: "registry:\n  name: etcd\n  adress: x:1\n", want: []string{"registry", "adress", "address"}},
		{name: "registry not a mapping", file: "registry: etcd\n", want: []string{"line 1", "registry", "mapping"}},
		{name: "negative rate limit", args: []string{"--rate-limit", "-1"}, want: []string{"--rate-limit", ">= 0"}},
		{name: "bad rate burst", env: map[string]string{"CONFIGD_RATE_BURST": "lots"}, want: []string{"CONFIGD_RATE_BURST", "lots"}},
		{name: "negative max watches", file: "max_watches_per_identity: -3\n", want: []string{"line 1", "max_watches_per_identity", ">= 0"}},
		{name: "bootstrap token and file", env: map[string]string{"CONFIGD_BOOTSTRAP_TOKEN": "0123456789abcdef0123", "CONFIGD_BOOTSTRAP_TOKEN_FILE": "/run/secrets/admin"},
			want: []string{"CONFIGD_BOOTSTRAP_TOKEN", "CONFIGD_BOOTSTRAP_TOKEN_FILE", "both"}},
		{name: "unknown auth key", file: "auth:\n  bootstrap_token: x\n", want: []string{"line 2", `"auth.bootstrap_token"`, "auth.bootstrap_token_file"}},
		{name: "master key twice", env: map[string]string{"CONFIGD_MASTER_KEY": "QUJD"}, args: []string{"--master-key-file", "/run/mk"},
			want: []string{"secrets.master_key_file", "CONFIGD_MASTER_KEY", "not both"}},
		{name: "etcd store without endpoints", args: []string{"--store", "etcd"}, want: []string{"--store", "--etcd-endpoints", "CONFIGD_ETCD_ENDPOINTS"}},
		{name: "unknown store", env: map[string]string{"CONFIGD_STORE": "raft"}, want: []string{"CONFIGD_STORE", "sqlite or etcd"}},
		{name: "endpoints without the etcd store", args: []string{"--etcd-endpoints", "a:2379"}, want: []string{"store is sqlite", "--store etcd"}},
		{name: "endpoint without a port", args: []string{"--store", "etcd", "--etcd-endpoints", "a:2379,b"}, want: []string{"--etcd-endpoints", `"b"`, "host:port"}},
		{name: "endpoint of another scheme", file: "store: etcd\netcd:\n  endpoints: [unix://x]\n", want: []string{"etcd.endpoints", "unix://x"}},
		{name: "relative etcd prefix", args: []string{"--store", "etcd", "--etcd-endpoints", "a:2379", "--etcd-prefix", "configd"}, want: []string{"--etcd-prefix", "absolute"}},
		{name: "etcd cert without key", args: []string{"--store", "etcd", "--etcd-endpoints", "a:2379", "--etcd-cert", "c.pem"}, want: []string{"--etcd-cert", "--etcd-key"}},
		{name: "peer CA without TLS", args: []string{"--store", "etcd", "--etcd-endpoints", "a:2379", "--peer-ca", "ca.pem"}, want: []string{"--peer-ca", "--tls-cert", "serves no TLS"}},
		{name: "peer CA without the etcd store", file: "tls:\n  cert: c.pem\n  key: k.pem\netcd:\n  peer_ca: ca.pem\n", want: []string{"store is sqlite", "--store etcd"}},
		{name: "etcd password twice", env: map[string]string{"CONFIGD_ETCD_PASSWORD": "pw"},
			args: []string{"--store", "etcd", "--etcd-endpoints", "a:2379", "--etcd-username", "u", "--etcd-password-file", "/run/pw"},
			want: []string{"CONFIGD_ETCD_PASSWORD", "--etcd-password-file", "not both"}},
		{name: "etcd password without user", env: map[string]string{"CONFIGD_ETCD_PASSWORD": "pw"}, args: []string{"--store", "etcd", "--etcd-endpoints", "a:2379"},
			want: []string{"--etcd-username"}},
		{name: "etcd password in the file", file: "etcd:\n  password: pw\n", want: []string{"line 2", `"etcd.password"`, "etcd.password_file"}},
		{name: "lease in milliseconds", args: []string{"--store", "etcd", "--etcd-endpoints", "a:2379", "--etcd-lease-ttl", "1500ms"}, want: []string{"--etcd-lease-ttl", "whole seconds"}},
		{name: "master key in the file", file: "secrets:\n  master_key: QUJD\n", want: []string{"line 2", `"secrets.master_key"`, "secrets.master_key_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			_, err := server.LoadConfig(args, envFunc(tc.env), io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A config file with an unknown key, or a value of the wrong type, is
// refused with the file, the line, the key and what was expected, whatever
// the key's section (registry: too).
func TestConfigFileRefusesUnknownKeysAndWrongTypes(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       string
	}{
		{"unknown key", "log_level: info\nhttp_adr: 127.0.0.1:1\n", `line 2: unknown key "http_adr" (known: `},
		{"list for an address", "http_addr: [1]\n", "line 1: http_addr: want a single value (host:port), got a list"},
		{"word for a size", "max_value_size: big\n", `line 1: max_value_size: want a whole number of bytes, got "big"`},
		{"word for a switch", "auth_enabled: maybe\n", `line 1: auth_enabled: want true or false, got "maybe"`},
		{"mapping for a duration", "history:\n  keep_age: {h: 1}\n", "line 2: history.keep_age: want a single value (a duration (such as 10s)), got a mapping"},
		{"word for a registry duration", "registry:\n  name: etcd\n  ttl: soon\n", `line 3: registry.ttl: want a duration (such as 10s), got "soon"`},
		{"list for registry metadata", "registry:\n  metadata: [a]\n", "line 2: registry.metadata: want a mapping, or k=v pairs separated by commas, got a list"},
		{"unknown registry key", "registry:\n  service: a\n  services: b\n", `line 3: unknown key "registry.services" (known: registry.address, `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file)
			_, err := server.LoadConfig([]string{"--config", path}, envFunc(nil), io.Discard)
			if want := "config file " + path + ": " + tc.want; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v\nwant it to contain %q", err, want)
			}
		})
	}
}

// README's table of configd's settings, and docs/registry.md's of the
// registry: section, list every setting with its flag, variable and key.
func TestDocsListEverySetting(t *testing.T) {
	rows := func(path string) []string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "|") {
				out = append(out, l)
			}
		}
		return out
	}
	readme, registry := rows("../README.md"), rows("../docs/registry.md")
	cfg := server.DefaultConfig()
	for _, s := range cfg.Settings() {
		doc, key, where := readme, s.Key(), "README.md"
		if k, ok := strings.CutPrefix(key, "registry."); ok {
			doc, key, where = registry, k, "docs/registry.md"
		} else if key == "" && strings.HasPrefix(s.Env(), "MICRO_") {
			continue // read only to be refused (MICRO_SERVER_ADDRESS)
		}
		var want []string
		if s.Flag() {
			want = append(want, "`--"+s.Name()+"`")
		}
		if s.Env() != "" {
			want = append(want, "`"+s.Env()+"`")
		}
		if key != "" {
			want = append(want, "`"+key+"`")
		}
		found := false
		for _, r := range doc {
			found = found || !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(r, w) })
		}
		if !found {
			t.Errorf("%s has no row with %s", where, strings.Join(want, ", "))
		}
	}
}

func TestConfigVersionAndHelp(t *testing.T) {
	if _, err := server.LoadConfig([]string{"--version"}, envFunc(nil), io.Discard); !errors.Is(err, server.ErrVersion) {
		t.Errorf("--version: %v, want ErrVersion", err)
	}
	var usage strings.Builder
	if _, err := server.LoadConfig([]string{"-h"}, envFunc(nil), &usage); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	for _, w := range []string{"-data-dir", "CONFIGD_DATA_DIR", "data_dir", "-http-addr", "-max-value-size", "-log-format", "-log-level", "-config", "-version",
		"-tls-cert", "CONFIGD_TLS_CERT", "tls.cert", "-tls-key", "CONFIGD_TLS_KEY", "-tls-client-ca", "CONFIGD_TLS_CLIENT_CA", "tls.client_ca",
		"-history-keep-revisions", "CONFIGD_HISTORY_KEEP_REVISIONS", "history.keep_revisions", "-history-keep-age", "history.keep_age"} {
		if !strings.Contains(usage.String(), w) {
			t.Errorf("usage does not mention %s", w)
		}
	}
}

// The example file documents every key with its default, so loading it
// must give exactly the defaults.
func TestExampleConfigFileHoldsTheDefaults(t *testing.T) {
	got, err := server.LoadConfig([]string{"--config", "../configd.example.yaml"}, envFunc(nil), io.Discard)
	if err != nil {
		t.Fatalf("load configd.example.yaml: %v", err)
	}
	if !reflect.DeepEqual(got, server.DefaultConfig()) {
		t.Errorf("configd.example.yaml gives %+v, want the defaults %+v", got, server.DefaultConfig())
	}
	b, err := os.ReadFile("../configd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"data_dir", "http_addr", "log_format", "log_level", "max_value_size", "shutdown_timeout"} {
		if !strings.Contains(string(b), "\n"+key+":") {
			t.Errorf("configd.example.yaml does not set %s", key)
		}
	}
}

func TestNewLogger(t *testing.T) {
	var b strings.Builder
	l, err := server.NewLogger(&b, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "addr", "x")
	if got := b.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"shown"`) {
		t.Errorf("json warn logger wrote %q", got)
	}
	if _, err := server.NewLogger(&b, "xml", "info"); err == nil {
		t.Error("log format xml accepted")
	}
	if _, err := server.NewLogger(&b, "text", "loud"); err == nil {
		t.Error("log level loud accepted")
	}
}

func TestDebugAddrIsChecked(t *testing.T) {
	if _, err := server.LoadConfig([]string{"--debug-addr", "nonsense"}, envFunc(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "debug-addr") {
		t.Errorf("--debug-addr nonsense: %v, want an error naming the flag", err)
	}
	cfg, err := server.LoadConfig(nil, envFunc(map[string]string{"CONFIGD_DEBUG_ADDR": "127.0.0.1:0"}), io.Discard)
	if err != nil || cfg.DebugAddr != "127.0.0.1:0" {
		t.Fatalf("CONFIGD_DEBUG_ADDR: %+v, %v", cfg.DebugAddr, err)
	}
}
