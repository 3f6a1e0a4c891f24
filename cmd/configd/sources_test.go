package main_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/testserver"
)

// waitValue follows key with the watch long poll until its value is want
// ("" for absent), and returns the revision that made it so.
func (d *daemon) waitValue(key, want string) int64 {
	d.t.Helper()
	var since int64
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		var wr api.WatchResponse
		if err := d.call(http.MethodGet, fmt.Sprintf("/v1/watch?key=%s&since=%d&wait=5s", key, since), nil, &wr); err != nil {
			d.t.Fatal(err)
		}
		for _, b := range wr.Batches {
			for _, e := range b.Events {
				got := e.Value
				if e.Op == "delete" {
					got = ""
				}
				if got == want {
					return b.Rev
				}
			}
			if b.Kind == api.WatchSnapshot && len(b.Events) == 0 && want == "" {
				return b.Rev
			}
		}
		since = wr.Rev
	}
	d.t.Fatalf("%s never became %q", key, want)
	return 0
}

func consulPut(t testing.TB, addr, key, value string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/kv/"+key, bytes.NewReader([]byte(value)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("consul kv put %s: %s", key, resp.Status)
	}
}

// TestSourcesScenario is the sources issue's scenario with real Consul and
// etcd servers, a directory of files and the environment, merged under
// prefixes with the store on top.
func TestSourcesScenario(t *testing.T) {
	consul := testserver.Consul(t)
	etcd := testserver.Etcd(t)
	dir := t.TempDir()
	cfgDir := filepath.Join(dir, "config")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "db.yaml"), []byte("host: db1\nport: 5432\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The example configd.yaml shipped in the repo, pointed at this test's
	// servers, files and environment.
	example, err := os.ReadFile("../../examples/configd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer(
		"127.0.0.1:8500", consul.Addr,
		"127.0.0.1:2379", etcd.Addr,
		"./examples/config/", cfgDir,
		"prefix: APP_", "prefix: TESTAPP_",
		"data_dir: ./data\n", "",
		"http_addr: 127.0.0.1:7700\n", "",
	).Replace(string(example))
	for _, want := range []string{consul.Addr, etcd.Addr, cfgDir, "TESTAPP_"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("examples/configd.yaml no longer has the line that %s replaces", want)
		}
	}
	confPath := filepath.Join(dir, "configd.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TESTAPP_LOG_LEVEL", "debug")
	d := launch(t, "--data-dir", filepath.Join(dir, "data"), "--http-addr", "127.0.0.1:0", "--config", confPath)
	d.Listening()

	d.waitValue("app/db/host", "db1")     // from the file
	d.waitValue("app/log/level", "debug") // from the environment

	// consul kv put micro/config/db/host db2: Consul is above the file.
	consulPut(t, consul.Addr, "micro/config/db/host", "db2")
	rev := d.waitValue("app/db/host", "db2")
	var r api.Revision
	d.mustCall(http.MethodGet, fmt.Sprintf("/v1/revisions/%d", rev), nil, &r)
	if r.Actor != "source:shared" || r.Origin != "source:shared" {
		t.Fatalf("revision %d by %q from %q, want source:shared", rev, r.Actor, r.Origin)
	}
	var hist api.HistoryResponse
	d.mustCall(http.MethodGet, "/v1/history?key=app/db/host", nil, &hist)
	if len(hist.Revisions) < 2 || hist.Revisions[0].Actor != "source:shared" || hist.Revisions[1].Actor != "source:defaults" {
		t.Fatalf("history of app/db/host = %+v", hist.Revisions)
	}

	// The store is on top: a write wins, and the stack shows what lies under.
	d.mustCall(http.MethodPut, "/v1/kv/app/db/host", []byte("db3"), nil)
	var layers api.LayersResponse
	d.mustCall(http.MethodGet, "/v1/layers/app/db/host", nil, &layers)
	got := []string{}
	for _, l := range layers.Layers {
		got = append(got, fmt.Sprintf("%s=%s%v", l.Layer, l.Value, map[bool]string{true: "*", false: ""}[l.Effective]))
	}
	if strings.Join(got, " ") != "store=db3* shared=db2 defaults=db1" {
		t.Fatalf("layers of app/db/host: %v", got)
	}

	// etcd, under its own mount.
	etcdPut(t, etcd.Addr, "/infra/dns", "10.0.0.53")
	d.waitValue("infra/dns", "10.0.0.53")

	var srcs api.SourcesResponse
	d.mustCall(http.MethodGet, "/v1/sources", nil, &srcs)
	names := []string{}
	for _, s := range srcs.Sources {
		names = append(names, s.Name+":"+s.State)
	}
	if strings.Join(names, " ") != "store:ok env:ok infra:ok shared:ok defaults:ok" {
		t.Fatalf("sources = %v", names)
	}

	// Consul goes away: configd keeps its keys and says it is degraded.
	consul.Stop()
	// configd sets the status, records the event, then logs this line.
	d.WaitLog(regexp.MustCompile(`msg="source degraded; serving its last good snapshot" source=shared`))
	d.mustCall(http.MethodGet, "/v1/sources", nil, &srcs)
	if srcs.Sources[3].Name != "shared" || srcs.Sources[3].State != "degraded" {
		t.Fatalf("consul stopped, sources say %+v", srcs.Sources[3])
	}
	var kv api.KeyValue
	d.mustCall(http.MethodGet, "/v1/layers/app/db/host", nil, &layers)
	if len(layers.Layers) != 3 {
		t.Fatalf("consul's layer was dropped while it is down: %+v", layers.Layers)
	}
	d.mustCall(http.MethodGet, "/v1/kv/app/db/host", nil, &kv)
	if kv.Value != "db3" {
		t.Fatalf("app/db/host = %q", kv.Value)
	}
}

func etcdPut(t testing.TB, addr, key, value string) {
	t.Helper()
	// etcd's JSON gateway: keys and values are base64.
	body, _ := json.Marshal(map[string]string{"key": b64(key), "value": b64(value)})
	resp, err := http.Post("http://"+addr+"/v3/kv/put", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("etcd put %s: %s", key, resp.Status)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestABrokenFileKeepsTheLastGoodStateAndIsReported: a file source whose
// YAML stops parsing records no revision, keeps its keys, shows as degraded
// with the error in /v1/sources and /readyz, and leaves an event in the
// audit trail; fixed, it recovers.
func TestABrokenFileKeepsTheLastGoodStateAndIsReported(t *testing.T) {
	dir := t.TempDir()
	cfgDir := filepath.Join(dir, "config")
	os.MkdirAll(cfgDir, 0o755)
	file := filepath.Join(cfgDir, "db.yaml")
	if err := os.WriteFile(file, []byte("host: db1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "configd.yaml")
	conf := fmt.Sprintf("sources:\n  - {name: defaults, type: file, path: %s, mount: app/}\n", cfgDir)
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := launch(t, "--data-dir", filepath.Join(dir, "data"), "--http-addr", "127.0.0.1:0", "--config", confPath)
	d.Listening()
	rev := d.waitValue("app/db/host", "db1")

	if err := os.WriteFile(file, []byte("host: [db2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.WaitLog(regexp.MustCompile(`msg="source degraded; serving its last good snapshot" source=defaults`))
	var srcs api.SourcesResponse
	d.mustCall(http.MethodGet, "/v1/sources", nil, &srcs)
	if srcs.Sources[1].Name != "defaults" || srcs.Sources[1].State != "degraded" || !strings.Contains(srcs.Sources[1].LastError, "db.yaml") {
		t.Fatalf("sources = %+v", srcs.Sources)
	}
	if len(srcs.Events) == 0 || srcs.Events[0].State != "degraded" || !strings.Contains(srcs.Events[0].Message, "db.yaml") {
		t.Fatalf("events = %+v", srcs.Events)
	}
	var st api.Status
	d.mustCall(http.MethodGet, "/v1/status", nil, &st)
	var kv api.KeyValue
	d.mustCall(http.MethodGet, "/v1/kv/app/db/host", nil, &kv)
	if st.Rev != rev || kv.Value != "db1" {
		t.Fatalf("a broken file changed the config: rev %d (was %d), app/db/host %q", st.Rev, rev, kv.Value)
	}
	resp, err := http.Get(d.url("/readyz"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "source defaults (file): degraded") {
		t.Fatalf("/readyz = %q", body)
	}

	if err := os.WriteFile(file, []byte("host: db2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitValue("app/db/host", "db2")
	d.mustCall(http.MethodGet, "/v1/sources", nil, &srcs)
	if srcs.Sources[1].State != "ok" {
		t.Fatalf("fixed file: %+v", srcs.Sources[1])
	}
}

// TestSourceFieldOfAnotherTypeExits2: a sources: entry with a field its
// type does not have, or a value of the wrong kind, stops configd at start
// with exit code 2 (a bad configuration, as a bad flag), and the message
// names the file, the line, the source, its type, the field and what it
// wants. Nothing is opened: the data dir is not created.
func TestSourceFieldOfAnotherTypeExits2(t *testing.T) {
	for _, tc := range []struct {
		name, entry string
		want        []string
	}{
		{"endpoints on consul", "  - name: shared\n    type: consul\n    endpoints: [127.0.0.1:2379]\n",
			[]string{"line 5", `source "shared" (type consul)`, "endpoints: unknown field", "address"}},
		{"endpoints: 5", "  - name: infra\n    type: etcd\n    endpoints: 5\n",
			[]string{"line 5", `source "infra" (type etcd)`, "endpoints: want a list of strings, got 5"}},
		{"tls: yes", "  - name: shared\n    type: consul\n    tls: yes\n",
			[]string{"line 5", `source "shared" (type consul)`, `tls: want a mapping of ca_file, cert_file, key_file, server_name, insecure_skip_verify, got "yes"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			confPath := filepath.Join(dir, "configd.yaml")
			if err := os.WriteFile(confPath, []byte("log_level: info\nsources:\n"+tc.entry), 0o644); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(dir, "data")
			d := launch(t, "--data-dir", data, "--http-addr", "127.0.0.1:0", "--config", confPath)
			code := d.Wait()
			line := configdLine(d.Log.String())
			if code != 2 {
				t.Errorf("exit %d, want 2; output:\n%s", code, d.Log)
			}
			for _, w := range append([]string{"config file " + confPath + ": "}, tc.want...) {
				if !strings.Contains(line, w) {
					t.Errorf("message %q does not mention %q", line, w)
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("data dir created for a bad config: %v", err)
			}
		})
	}
}
