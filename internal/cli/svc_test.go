package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/sdk/go/micro/catalog"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/server"
)

// greeterBin is examples/greeter, built once for this test binary.
var greeterBin string

func TestMain(m *testing.M) {
	configdtest.Main(m, map[*string]string{&greeterBin: "github.com/configd/configd/examples/greeter"})
}

var readyRE = regexp.MustCompile(`ready (\S+) (\S+)`)

// startGreeter runs the greeter example with args until the test ends and
// returns the address and id of its "ready ADDR ID" line.
func startGreeter(t *testing.T, args ...string) (addr, id string) {
	t.Helper()
	cmd := exec.Command(greeterBin, args...)
	cmd.Env = configdtest.CleanEnv("MICRO_")
	log := configdtest.NewLog()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
	})
	m, err := log.Wait(readyRE, exited)
	if err != nil {
		t.Fatal(err)
	}
	return m[1], m[2]
}

// runSvc runs configctl with only the environment env.
func runSvc(env map[string]string, args ...string) result {
	var out, errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return env[k] }}
	code := a.run(context.Background(), a.rootCmd(), args)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// configctl svc against the greeter example and a configd, both in a
// remote registry served by the greeter's registry role.
func TestSvcCommandsAgainstGreeter(t *testing.T) {
	regAddr, _ := startGreeter(t, "registry", "-addr", "127.0.0.1:0")
	gAddr, gID := startGreeter(t, "serve", "--registry", "remote", "--registry-address", regAddr, "--server-id", "greeter-a", "-grace", "0s")
	if gID != "greeter-a" {
		t.Fatalf("greeter id %q", gID)
	}
	// A watch of the registry tells when configd has registered.
	reg, err := catalog.Default().NewRegistry("remote", registry.Addrs(regAddr))
	if err != nil {
		t.Fatal(err)
	}
	w, err := reg.Watch(registry.WatchService("configd"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr = filepath.Join(t.TempDir(), "data"), "127.0.0.1:0"
	cfg.Registry.Micro.Registry, cfg.Registry.Micro.RegistryAddress, cfg.Registry.Micro.ServerID = "remote", []string{regAddr}, "configd-1"
	cAddr := configdtest.Run(t, cfg).Addr
	if ev, err := w.Next(); err != nil || ev.Action != registry.Create {
		t.Fatalf("registry watch: %+v, %v; want configd created", ev, err)
	}

	// The flags, or the variables: the same.
	flags := []string{"--registry", "remote", "--registry-address", regAddr}
	env := map[string]string{"MICRO_REGISTRY": "remote", "MICRO_REGISTRY_ADDRESS": regAddr}

	runSvc(env, "svc", "ls").want(t, ExitOK, "NAME     VERSION  NODES\nconfigd  "+server.Version()+"      1\ngreeter  v1       1\n", "")
	r := runSvc(env, "svc", "ls", "-o", "json")
	var ls []svcEntry
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ls) != nil || len(ls) != 2 || ls[1] != (svcEntry{"greeter", "v1", 1}) {
		t.Fatalf("svc ls -o json: %+v", r)
	}

	runSvc(nil, append([]string{"svc", "get", "greeter"}, flags...)...).want(t, ExitOK,
		"~^service  greeter\nversion  v1\nendpoints Debug.Health, Debug.Stats, Greeter.Hello\n\nID +ADDRESS +METADATA\ngreeter-a +"+regexp.QuoteMeta(gAddr)+" ", "")
	runSvc(env, "svc", "get", "configd").want(t, ExitOK,
		"~ID +ADDRESS +METADATA\nconfigd-1 +"+regexp.QuoteMeta(cAddr)+" +api=http\\+grpc,tls=off,version=", "")

	runSvc(env, "svc", "health", "greeter").want(t, ExitOK, "~^ID +ADDRESS +VERSION +STATUS\ngreeter-a +"+regexp.QuoteMeta(gAddr)+" +v1 +ok\n$", "")
	runSvc(env, "svc", "health", "configd").want(t, ExitOK, "~configd-1 +"+regexp.QuoteMeta(cAddr)+" .* ok\n$", "")
	r = runSvc(env, "svc", "health", "greeter", "-o", "json")
	var hs []nodeHealth
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &hs) != nil || len(hs) != 1 || hs[0].Status != "ok" || hs[0].ID != "greeter-a" {
		t.Fatalf("svc health -o json: %+v", r)
	}

	runSvc(env, "svc", "call", "greeter", "Greeter.Hello", `{"name": "Alice"}`).want(t, ExitOK,
		"{\n  \"msg\": \"Hello Alice\",\n  \"node\": \"greeter-a\"\n}\n", "")
	runSvc(env, "svc", "call", "greeter", "Greeter.Hello", `{"name": "Bob"}`, "-o", "yaml").want(t, ExitOK,
		"msg: Hello Bob\nnode: greeter-a\n", "")

	// Stats count the calls above.
	r = runSvc(env, "svc", "stats", "greeter", "-o", "json")
	var ss []nodeStats
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ss) != nil || len(ss) != 1 || ss[0].Stats == nil || ss[0].Stats.Requests < 2 || ss[0].Stats.Goroutines == 0 {
		t.Fatalf("svc stats -o json: %+v", r)
	}
	runSvc(env, "svc", "stats", "greeter").want(t, ExitOK,
		"~^ID +ADDRESS +UPTIME +REQUESTS +ERRORS +INFLIGHT +GOROUTINES +HEAP\ngreeter-a +"+regexp.QuoteMeta(gAddr)+" +\\S+ +[2-9] +0 +0 +\\d+ +[0-9.]+ \\w+\n$", "")

	// Not found: exit 3; usage: exit 2.
	runSvc(env, "svc", "get", "nosuch").want(t, ExitNotFound, "", "~service nosuch: not found")
	runSvc(env, "svc", "health", "nosuch").want(t, ExitNotFound, "", "")
	runSvc(env, "svc", "call", "nosuch", "X.Y").want(t, ExitNotFound, "", "")
	runSvc(env, "svc", "call", "greeter", "Greeter.Nope").want(t, ExitNotFound, "", "~Greeter.Nope")
	runSvc(env, "svc", "call", "greeter", "Greeter.Hello", "{not json").want(t, ExitUsage, "", "~not JSON")
	runSvc(env, "svc", "get").want(t, ExitUsage, "", "")
	runSvc(nil, "svc", "ls").want(t, ExitUsage, "", "~no registry: set --registry or MICRO_REGISTRY")
	runSvc(nil, "svc", "ls", "--registry", "zookeeper").want(t, ExitUsage, "", "~zookeeper")
	runSvc(nil, "svc", "ls", "--registry-address", "x:1").want(t, ExitUsage, "", "")
	// A flag wins over its variable.
	runSvc(map[string]string{"MICRO_REGISTRY": "zookeeper", "MICRO_REGISTRY_ADDRESS": "x:1"}, append([]string{"svc", "ls"}, flags...)...).want(t, ExitOK, "~greeter", "")
	// configd answers no micro calls: stats says so, exit 1.
	runSvc(env, "svc", "stats", "configd").want(t, ExitError, "~/metrics", "")
}
