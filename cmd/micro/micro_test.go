package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/micro/gateway"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/consul"
)

var microBin, exampleBin, configctlBin string

func TestMain(m *testing.M) {
	configdtest.Main(m, map[*string]string{
		&microBin:     "github.com/configd/configd/cmd/micro",
		&exampleBin:   "github.com/configd/configd/examples/example",
		&configctlBin: "github.com/configd/configd/cmd/configctl",
	})
}

// start runs bin with args, only they and the test's environment without MICRO_* variables
// configuring it, and waits for a line of its output that ready matches, returning its groups.
func start(t *testing.T, ready *regexp.Regexp, bin string, args ...string) (*configdtest.Process, []string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = configdtest.CleanEnv("MICRO_")
	p := configdtest.Spawn(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s %s output:\n%s", filepath.Base(bin), strings.Join(args, " "), p.Log)
		}
	})
	return p, p.WaitLog(ready)
}

// logged waits until one of ps logs a line containing text and returns it.
func logged(t *testing.T, text string, ps ...*configdtest.Process) *configdtest.Process {
	t.Helper()
	deadline := time.After(configdtest.WaitLimit)
	for {
		cases := make([]reflect.SelectCase, 0, len(ps)+1)
		for _, p := range ps {
			out, next := p.Log.Snapshot()
			if strings.Contains(out, text) {
				return p
			}
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(next)})
		}
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline)})
		if i, _, _ := reflect.Select(cases); i == len(ps) {
			t.Fatalf("no process logged %q within %v", text, configdtest.WaitLimit)
		}
	}
}

var (
	exampleReady = regexp.MustCompile(`(?m)^ready (\S+) (\S+) (\S+)$`)
	listening    = regexp.MustCompile(`(?m)^listening on (\S+)$`)
)

// example starts an example instance registered in consul at addr with id; ttl is its
// registration's TTL.
func example(t *testing.T, addr, name, id, ttl string) (p *configdtest.Process, webAddr string) {
	p, m := start(t, exampleReady, exampleBin, "--registry", "consul", "--registry-address", addr,
		"--server-name", name, "--server-id", id, "--register-ttl", ttl, "--register-interval", "500ms")
	return p, m[3]
}

// gatewayProc starts micro's api or web on a free port and returns its base URL.
func gatewayProc(t *testing.T, consulAddr, kind string, args ...string) string {
	_, m := start(t, listening, microBin, append([]string{"--registry", "consul", "--registry-address", consulAddr,
		kind, "--address", "127.0.0.1:0"}, args...)...)
	return "http://" + m[1]
}

// waitNodes waits until the registry lists n passing nodes of service.
func waitNodes(t *testing.T, w registry.Watcher, service string, n int) {
	t.Helper()
	deadline := time.After(configdtest.WaitLimit)
	for {
		ev := make(chan *registry.Result, 1)
		go func() { r, _ := w.Next(); ev <- r }()
		select {
		case r := <-ev:
			if r == nil {
				t.Fatal("registry watch ended")
			}
			if r.Service.Name == service && (r.Action != registry.Delete && len(r.Service.Nodes) == n || r.Action == registry.Delete && n == 0) {
				return
			}
		case <-deadline:
			t.Fatalf("%s never had %d nodes", service, n)
		}
	}
}

type answer struct {
	code   int
	body   string
	node   string
	header http.Header
}

func send(t *testing.T, method, url, contentType, body string) answer {
	t.Helper()
	a, err := try(method, url, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// try is send for other goroutines than the test's: a failed request is an answer with code 0.
func try(method, url, contentType, body string) (answer, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(req)
}

// do sends req and reads its answer.
func do(req *http.Request) (answer, error) {
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{body: err.Error()}, err
	}
	defer rsp.Body.Close()
	b, _ := io.ReadAll(rsp.Body)
	return answer{code: rsp.StatusCode, body: strings.TrimSpace(string(b)), node: rsp.Header.Get(gateway.ResponseHeaderPrefix + "Node"), header: rsp.Header}, nil
}

func consulWatch(t *testing.T, addr string) registry.Watcher {
	reg := consul.New(consul.Config{}, registry.Addrs(addr))
	w, err := reg.Watch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// The talk's three curl lines, through micro api in front of two example instances in a real
// Consul, answered by both; every bad input the gateway refuses; micro web's page and proxy;
// and micro's registry commands.
func TestMicroAPIAndWebInFrontOfTwoExamplesInConsul(t *testing.T) {
	srv := testserver.Consul(t)
	w := consulWatch(t, srv.Addr)
	pa, _ := example(t, srv.Addr, "example", "example-a", "2s")
	pb, _ := example(t, srv.Addr, "example", "example-b", "2s")
	waitNodes(t, w, "example", 2)
	api := gatewayProc(t, srv.Addr, "api", "--max-body", "1024", "--timeout", "1s")

	t.Run("the talk's requests", func(t *testing.T) {
		nodes := map[string]int{}
		for range 4 {
			for _, c := range []struct{ method, path, ct, body string }{
				{"GET", "/example/call?name=hobo", "", ""},
				{"POST", "/example/call", "application/x-www-form-urlencoded", "name=hobo"},
				{"POST", "/example/call", "application/json", `{"name":"hobo"}`},
				{"GET", "/example/hello/hobo", "", ""}, // declared by the example: a path parameter
			} {
				a := send(t, c.method, api+c.path, c.ct, c.body)
				if a.code != 200 || a.body != `{"msg":"Hello hobo"}` {
					t.Fatalf("%s %s %s: %d %s", c.method, c.path, c.body, a.code, a.body)
				}
				nodes[a.node]++
			}
		}
		if nodes["example-a"] == 0 || nodes["example-b"] == 0 {
			t.Fatalf("answers by node: %v, want both", nodes)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for name, c := range map[string]struct {
			method, path, ct, body string
			code                   int
			detail                 string
		}{
			"unknown service":  {"GET", "/nosuch/call?name=x", "", "", 404, "nosuch"},
			"unknown endpoint": {"GET", "/example/nope?name=x", "", "", 404, "Example.Nope"},
			"outside a route":  {"GET", "/", "", "", 404, "no route"},
			"malformed JSON":   {"POST", "/example/call", "application/json", `{"name":`, 400, "malformed JSON"},
			"malformed form":   {"POST", "/example/call", "application/x-www-form-urlencoded", "name=%zz", 400, "invalid URL escape"},
			"handler's 400":    {"POST", "/example/call", "application/json", `{}`, 400, "name is empty"},
			"over the limit":   {"POST", "/example/call", "application/json", `{"name":"` + strings.Repeat("x", 2000) + `"}`, 413, "limit"},
			"slow node":        {"POST", "/example/call", "application/json", `{"name":"x","sleep":"3s"}`, 504, "deadline"},
		} {
			t.Run(name, func(t *testing.T) {
				a := send(t, c.method, api+c.path, c.ct, c.body)
				var e gateway.Error
				if err := json.Unmarshal([]byte(a.body), &e); err != nil || a.code != c.code || e.Code != c.code || !strings.Contains(e.Detail, c.detail) {
					t.Fatalf("%d %s; want %d with %q", a.code, a.body, c.code, c.detail)
				}
			})
		}
	})

	t.Run("micro web", func(t *testing.T) {
		web := gatewayProc(t, srv.Addr, "web")
		if a := send(t, "GET", web+"/", "", ""); a.code != 200 || !strings.Contains(a.body, `<a href="/example/">example</a>`) {
			t.Fatalf("index: %d %s", a.code, a.body)
		}
		if a := send(t, "GET", web+"/example/", "", ""); a.code != 200 || !strings.Contains(a.body, "Served by node") {
			t.Fatalf("the example's page: %d %s", a.code, a.body)
		}
		if a := send(t, "GET", web+"/example/call?name=hobo", "", ""); a.code != 200 || a.body != `{"msg":"Hello hobo"}` {
			t.Fatalf("the example's call: %d %s", a.code, a.body)
		}
		// The example declares /example/hello/{name} to micro api; micro web proxies it to the
		// example's web page, which has no such path.
		if a := send(t, "GET", web+"/example/hello/hobo", "", ""); a.code != 404 || strings.Contains(a.body, "Hello") {
			t.Fatalf("a declared route on micro web: %d %s", a.code, a.body)
		}
		if a := send(t, "GET", web+"/example", "", ""); a.code != 200 || !strings.Contains(a.body, "Served by node") {
			t.Fatalf("/example (redirected to /example/): %d %s", a.code, a.body)
		}
		if a := send(t, "GET", web+"/nosuch/", "", ""); a.code != 404 || !strings.Contains(a.body, "nosuch") {
			t.Fatalf("unknown service: %d %s", a.code, a.body)
		}
	})

	// --content-type: the codec micro api calls the services with; one it cannot call with is
	// a usage error.
	t.Run("content type", func(t *testing.T) {
		for _, ct := range []string{"application/json-rpc", "application/grpc+json"} {
			api := gatewayProc(t, srv.Addr, "api", "--content-type", ct, "--name", "go.micro.api.codec")
			if a := send(t, "POST", api+"/example/call", "application/json", `{"name":"hobo"}`); a.code != 200 || a.body != `{"msg":"Hello hobo"}` {
				t.Fatalf("%s: %d %s", ct, a.code, a.body)
			}
		}
		out, err := exec.Command(microBin, "--registry", "consul", "--registry-address", srv.Addr,
			"api", "--address", "127.0.0.1:0", "--content-type", "application/octet-stream").CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), `content type "application/octet-stream"`) {
			t.Fatalf("a codec the gateway cannot call with: %v\n%s", err, out)
		}
	})

	// --filter-version and --filter-label narrow the nodes micro api sends to (which node
	// passes is sdk/go/micro/gateway's TestFiltersKeepTheNodesTheyName).
	t.Run("node filters", func(t *testing.T) {
		api := gatewayProc(t, srv.Addr, "api", "--filter-version", "no-such-version", "--name", "go.micro.api.filtered")
		if a := send(t, "GET", api+"/example/call?name=hobo", "", ""); a.code != http.StatusServiceUnavailable {
			t.Fatalf("no node of that version: %d %s, want 503", a.code, a.body)
		}
		out, err := exec.Command(microBin, "--registry", "consul", "--registry-address", srv.Addr,
			"api", "--address", "127.0.0.1:0", "--filter-label", "novalue").CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "key=value") {
			t.Fatalf("a label filter without a value: %v\n%s", err, out)
		}
	})

	t.Run("micro list, get, health, stats, call", func(t *testing.T) {
		run := func(args ...string) string {
			out, err := exec.Command(microBin, append([]string{"--registry", "consul", "--registry-address", srv.Addr}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("micro %v: %v\n%s", args, err, out)
			}
			return string(out)
		}
		if out := run("list", "services"); !strings.Contains(out, "example") {
			t.Errorf("list services:\n%s", out)
		}
		if out := run("get", "service", "example"); !strings.Contains(out, "example-a") || !strings.Contains(out, "Example.Call") {
			t.Errorf("get service:\n%s", out)
		}
		if out := run("health", "example"); strings.Count(out, " ok") != 2 {
			t.Errorf("health:\n%s", out)
		}
		if out := run("stats", "example"); !strings.Contains(out, "example-b") {
			t.Errorf("stats:\n%s", out)
		}
		// micro api registers itself, as go-micro's did, with its HTTP address.
		if out := run("get", "service", "go.micro.api"); !strings.Contains(out, "http="+strings.TrimPrefix(api, "http://")) {
			t.Errorf("get service go.micro.api (at %s):\n%s", api, out)
		}
		if out := run("health", "go.micro.api"); !strings.Contains(out, " ok") {
			t.Errorf("health go.micro.api:\n%s", out)
		}
		if out := run("call", "example", "Example.Call", `{"name":"hobo"}`); !strings.Contains(out, `"msg": "Hello hobo"`) {
			t.Errorf("call:\n%s", out)
		}
	})

	// SIGTERM: micro api deregisters, lets the request in flight finish and exits 0.
	t.Run("graceful stop", func(t *testing.T) {
		p, m := start(t, listening, microBin, "--registry", "consul", "--registry-address", srv.Addr,
			"api", "--address", "127.0.0.1:0", "--name", "go.micro.api.stopping")
		waitNodes(t, w, "go.micro.api.stopping", 1)
		got := make(chan answer, 1)
		go func() {
			a, _ := try("POST", "http://"+m[1]+"/example/call", "application/json", `{"name":"inflight","sleep":"1s"}`)
			got <- a
		}()
		logged(t, "name=inflight", pa, pb)
		p.Signal(syscall.SIGTERM)
		waitNodes(t, w, "go.micro.api.stopping", 0)
		if a := <-got; a.code != 200 || a.body != `{"msg":"Hello inflight"}` {
			t.Fatalf("the request in flight: %d %s", a.code, a.body)
		}
		if code := p.Wait(); code != 0 {
			t.Fatalf("exit code %d", code)
		}
	})

	// A node that dies while it handles a request: a GET goes to the other node; a POST (it
	// may have run) is answered 502. The "slow" instances' long TTL keeps the dead ones
	// registered meanwhile.
	t.Run("node dies mid-request", func(t *testing.T) {
		pc, _ := example(t, srv.Addr, "slow", "slow-c", "60s")
		pd, _ := example(t, srv.Addr, "slow", "slow-d", "60s")
		waitNodes(t, w, "slow", 2)
		api := gatewayProc(t, srv.Addr, "api", "--timeout", "20s")
		got := make(chan answer, 1)
		go func() { a, _ := try("GET", api+"/slow/example/call?name=get1&sleep=1s", "", ""); got <- a }()
		victim := logged(t, "name=get1", pc, pd)
		victim.Signal(syscall.SIGKILL)
		if a := <-got; a.code != 200 || a.body != `{"msg":"Hello get1"}` {
			t.Fatalf("GET to a node killed mid-request: %d %s", a.code, a.body)
		}
		go func() {
			a, _ := try("POST", api+"/slow/example/call", "application/json", `{"name":"post1","sleep":"30s"}`)
			got <- a
		}()
		victim = logged(t, "name=post1", pc, pd)
		victim.Signal(syscall.SIGKILL)
		if a := <-got; a.code != 502 {
			t.Fatalf("POST to a node killed mid-request: %d %s", a.code, a.body)
		}
		// Both nodes are dead but still registered: no live node.
		if a := send(t, "GET", api+"/slow/example/call?name=x", "", ""); a.code != 503 || !strings.Contains(a.body, "slow") {
			t.Fatalf("no live node: %d %s", a.code, a.body)
		}
	})
}

// Killing one of two example instances under load through micro api: every GET is answered
// (the gateway tries the other node for a node that cannot be reached), and once the registry
// has dropped the dead node, every answer comes from the survivor.
func TestKillingOneExampleUnderLoadThroughMicroAPI(t *testing.T) {
	srv := testserver.Consul(t)
	w := consulWatch(t, srv.Addr)
	pa, _ := example(t, srv.Addr, "example", "example-a", "2s")
	example(t, srv.Addr, "example", "example-b", "2s")
	waitNodes(t, w, "example", 2)
	api := gatewayProc(t, srv.Addr, "api")

	var noticed atomic.Bool
	var mu sync.Mutex
	before, after := map[string]int{}, map[string]int{}
	var failures []string
	// warm and done are closed once 200 answers came before the registry noticed, and 500 after.
	warm, done := make(chan struct{}), make(chan struct{})
	nBefore, nAfter := 0, 0
	stop := make(chan struct{})
	var load sync.WaitGroup
	for range 8 {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				late := noticed.Load() // the request starts after the registry dropped the node
				a, _ := try("GET", api+"/example/call?name=hobo", "", "")
				mu.Lock()
				switch {
				case a.code != 200 || a.body != `{"msg":"Hello hobo"}`:
					failures = append(failures, fmt.Sprintf("%d %s", a.code, a.body))
				case late:
					after[a.node]++
					if nAfter++; nAfter == 500 {
						close(done)
					}
				default:
					before[a.node]++
					if nBefore++; nBefore == 200 {
						close(warm)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wait := func(ch <-chan struct{}, what string) {
		select {
		case <-ch:
		case <-time.After(configdtest.WaitLimit):
			t.Fatalf("the load did not get %s within %v", what, configdtest.WaitLimit)
		}
	}
	wait(warm, "200 answers")
	killed := time.Now()
	pa.Signal(syscall.SIGKILL)
	waitNodes(t, w, "example", 1)
	noticed.Store(true)
	t.Logf("the registry dropped the killed node after %v", time.Since(killed).Round(time.Millisecond))
	wait(done, "500 answers after the registry noticed")
	close(stop)
	load.Wait()
	t.Logf("answers before the registry noticed: %v; after: %v", before, after)
	if len(failures) > 0 {
		t.Errorf("%d requests failed, first: %s", len(failures), failures[0])
	}
	if before["example-a"] == 0 || before["example-b"] == 0 {
		t.Errorf("before the kill both nodes should answer: %v", before)
	}
	if after["example-a"] != 0 || len(after) != 1 {
		t.Errorf("after the registry noticed, answers came from %v, want example-b only", after)
	}
}
