package testserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestConsulKeepsDataAcrossRestart(t *testing.T) {
	s := Consul(t)
	if code, body := httpDo(t, http.MethodPut, "http://"+s.Addr+"/v1/kv/a/b", "v1"); code != 200 || body != "true" {
		t.Fatalf("put: %d %s", code, body)
	}
	s.Restart()
	code, body := httpDo(t, http.MethodGet, "http://"+s.Addr+"/v1/kv/a/b?raw", "")
	if code != 200 || body != "v1" {
		t.Fatalf("after restart: %d %q, want 200 \"v1\"", code, body)
	}
	s.Stop()
	if s.p.running() {
		t.Fatal("still running after Stop")
	}
}

func TestEtcdKeepsDataAcrossRestart(t *testing.T) {
	s := Etcd(t)
	// etcd 3.4's JSON gateway: keys and values are base64.
	put := `{"key":"YQ==","value":"djE="}` // a = v1
	if code, body := httpDo(t, http.MethodPost, s.Endpoints[0]+"/v3/kv/put", put); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	s.Restart()
	code, body := httpDo(t, http.MethodPost, s.Endpoints[0]+"/v3/kv/range", `{"key":"YQ=="}`)
	if code != 200 || !strings.Contains(body, `"value":"djE="`) {
		t.Fatalf("after restart: %d %s", code, body)
	}
}

func TestFreePortsAreDistinct(t *testing.T) {
	seen := map[int]bool{}
	for _, p := range append(FreePorts(t, 5), FreePorts(t, 5)...) {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

func TestBinaryFindsRepoTools(t *testing.T) {
	p := Binary(t, "consul")
	if !strings.Contains(p, ".tools/bin/consul") && !strings.HasSuffix(p, "/consul") {
		t.Fatalf("Binary(consul) = %q", p)
	}
}

// A test of a module nested in the repository (deploy/) finds the
// repository's tools.
func TestBinaryFindsToolsOfAnOuterModule(t *testing.T) {
	outer := t.TempDir()
	inner := filepath.Join(outer, "deploy")
	for _, d := range []string{filepath.Join(outer, ".tools", "bin"), inner} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(outer, "go.mod"), filepath.Join(inner, "go.mod")} {
		if err := os.WriteFile(f, []byte("module x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tool := filepath.Join(outer, ".tools", "bin", "outer-only-tool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(inner)
	if p := Binary(t, "outer-only-tool"); p != tool {
		t.Fatalf("Binary = %q, want %q", p, tool)
	}
}

// fatalRecorder records Fatalf instead of stopping the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.msg = fmt.Sprintf(format, args...) }

func TestMissingBinaryFailsWithInstallHint(t *testing.T) {
	r := &fatalRecorder{TB: t}
	if p := Binary(r, "no-such-server-binary"); p != "" {
		t.Fatalf("Binary = %q, want failure", p)
	}
	if !strings.Contains(r.msg, "make test-deps") {
		t.Fatalf("failure message %q does not say to run make test-deps", r.msg)
	}
}

// A 3-member cluster keeps its data when a member is killed and comes
// back, and answers on the other members meanwhile.
func TestEtcdClusterSurvivesAMemberKill(t *testing.T) {
	c := EtcdCluster3(t)
	put := `{"key":"YQ==","value":"djE="}` // a = v1
	if code, body := httpDo(t, http.MethodPost, c.Endpoints[0]+"/v3/kv/put", put); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	c.Kill(0)
	if c.Members[0].p.running() {
		t.Fatal("member 0 still running after Kill")
	}
	// A linearizable read needs a leader: a member answers "leader
	// changed" (or has none yet) until the cluster has elected one, about
	// an election timeout (500 ms here).
	read := func(ep string) (int, string) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := httpDo(t, http.MethodPost, ep+"/v3/kv/range", `{"key":"YQ=="}`)
			if code == 200 || !strings.Contains(body, "leader") || time.Now().After(deadline) {
				return code, body
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if code, body := read(c.Endpoints[1]); code != 200 || !strings.Contains(body, `"value":"djE="`) {
		t.Fatalf("on member 1 while member 0 is down: %d %s", code, body)
	}
	c.Start(0)
	if code, body := read(c.Endpoints[0]); code != 200 || !strings.Contains(body, `"value":"djE="`) {
		t.Fatalf("on member 0 after its restart: %d %s", code, body)
	}
}
