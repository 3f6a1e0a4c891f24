package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/consul"
	"github.com/configd/configd/sdk/go/micro/registry/etcd"
	"github.com/configd/configd/sdk/go/micro/registry/mdns"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/registry/remote"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// roleEnv makes the test binary act as the greeter command, so the test can start real
// processes without a separate build.
const roleEnv = "GREETER_TEST_ROLE"

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) != "" {
		ctx, stop := signalContext()
		defer stop()
		if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "greeter:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is a greeter started as a separate OS process.
type process struct {
	cmd    *exec.Cmd
	id     string
	addr   string
	stderr *bytes.Buffer
	waited chan struct{} // closed when the process has exited
	err    error         // its exit status, once waited is closed
}

// startGreeter starts "greeter serve" registered as service in its own process and waits for
// its ready line.
func startGreeter(t *testing.T, registryName, registryAddr, service, id string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--registry", registryName, "--registry-address", registryAddr,
		"--server-name", service, "--server-id", id, "--register-ttl", "2s", "-grace", "0s")
	cmd.Env = append(os.Environ(), roleEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, id: id, stderr: &bytes.Buffer{}, waited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				ready <- sc.Text()
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.waited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.waited
		if t.Failed() {
			t.Logf("%s stderr:\n%s", id, p.stderr)
		}
	})
	select {
	case line := <-ready:
		p.addr = strings.Fields(line)[1]
	case <-p.waited:
		t.Fatalf("greeter %s exited before ready: %v\n%s", id, p.err, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("greeter %s not ready within 30s", id)
	}
	return p
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// startRegistry serves an in-memory registry from the test process over tcp.
func startRegistry(t *testing.T) (addr string, local *memory.Registry) {
	t.Helper()
	local = memory.New()
	h, err := remote.NewHandler(local)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Name(remote.ServiceName), server.Transport(tcp.New()), server.GracePeriod(0), server.DrainTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle(h, server.HandlerName("Registry")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		srv.Stop(context.Background())
	})
	return srv.Addr(), local
}

func TestCallsSurviveSIGKILLOfOneInstance(t *testing.T) {
	regAddr, local := startRegistry(t)
	w, err := local.Watch(registry.WatchService("greeter"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	tr := tcp.New()
	regClient, err := client.New(client.Transport(tr))
	if err != nil {
		t.Fatal(err)
	}
	defer regClient.Close()
	killOne(t, "remote", regAddr, remote.New(regClient, remote.Address(regAddr)), w, "greeter")
}

// The same across processes with a real Consul agent as the registry: the killed instance
// stops passing its TTL check and leaves the passing nodes.
func TestCallsSurviveSIGKILLOfOneInstanceConsul(t *testing.T) {
	srv := testserver.Consul(t)
	reg := consul.New(consul.Config{}, registry.Addrs(srv.Addr))
	w, err := reg.Watch(registry.WatchService("greeter"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	killOne(t, "consul", srv.Addr, reg, w, "greeter")
}

// The same with a real etcd: the killed instance's lease is no longer kept alive and expires.
func TestCallsSurviveSIGKILLOfOneInstanceEtcd(t *testing.T) {
	srv := testserver.Etcd(t)
	reg := etcd.New(etcd.Config{}, registry.Addrs(srv.Endpoints...))
	defer reg.Close()
	w, err := reg.Watch(registry.WatchService("greeter"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	killOne(t, "etcd", strings.Join(srv.Endpoints, ","), reg, w, "greeter")
}

// The same with mDNS on the host's default interface, no registry server at all: the killed
// instance's responder dies with it, and the watch's next poll drops it. The service name is
// this run's own, since every test process on the host hears the multicast.
func TestCallsSurviveSIGKILLOfOneInstanceMDNS(t *testing.T) {
	service := fmt.Sprintf("greeter-kill-%d-%d", os.Getpid(), time.Now().UnixNano())
	reg := mdns.NewRegistry()
	w, err := reg.Watch(registry.WatchService(service))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	killOne(t, "mdns", "", reg, w, service)
}

// waitEvent waits until w reports an event match accepts, and fails the test naming what it
// waited for after within.
func waitEvent(t *testing.T, w registry.Watcher, within time.Duration, what string, match func(*registry.Result) bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		ev := make(chan *registry.Result, 1)
		go func() { r, _ := w.Next(); ev <- r }()
		select {
		case r := <-ev:
			if r == nil {
				t.Fatal("registry watch ended")
			}
			if match(r) {
				return
			}
		case <-deadline:
			t.Fatalf("the registry's watch did not show %s within %v", what, within)
		}
	}
}

// killOne starts two greeters registered as service in the named registry, calls them through
// a selector over reg from four goroutines, SIGKILLs one, and requires every call to succeed,
// the dead node to leave the registry by its TTL (seen on w, a watch of service), and every
// call after the kill to be answered by the survivor.
func killOne(t *testing.T, regName, regAddr string, reg registry.Registry, w registry.Watcher, service string) {
	a := startGreeter(t, regName, regAddr, service, "greeter-a")
	b := startGreeter(t, regName, regAddr, service, "greeter-b")

	// The caller finds the instances through the shared registry, like any other process would.
	tr := tcp.New()
	sel, err := selector.New(selector.Registry(reg), selector.DefaultStrategy(selector.RoundRobin()))
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Close()
	cli, err := client.New(client.Selector(sel), client.Transport(tr), client.RequestTimeout(5*time.Second),
		client.Wrap(wrapper.Retry(wrapper.MaxAttempts(3), wrapper.Backoff(time.Millisecond, 20*time.Millisecond))))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	call := func() (*Response, error) {
		var rsp Response
		var md metadata.Metadata
		ctx := metadata.NewContext(context.Background(), metadata.Metadata{"Greeting": "Hi"})
		err := cli.Call(ctx, service, "Greeter.Hello", &Request{Name: "Alice"}, &rsp, client.Idempotent(), client.WithResponseMetadata(&md))
		if err == nil && (rsp.Msg != "Hi Alice" || md["Node"] != rsp.Node) {
			err = fmt.Errorf("wrong answer %+v, metadata %v", rsp, md)
		}
		return &rsp, err
	}

	// Both instances answer.
	seen := map[string]bool{}
	for i := 0; len(seen) < 2; i++ {
		if i == 100 {
			t.Fatalf("100 calls reached only %v", seen)
		}
		rsp, err := call()
		if err != nil {
			t.Fatal(err)
		}
		seen[rsp.Node] = true
	}

	// The registry's watch has seen both instances (a polling watch, as mDNS's, may not yet).
	waitEvent(t, w, 20*time.Second, "both instances", func(r *registry.Result) bool {
		return r.Action != registry.Delete && len(r.Service.Nodes) == 2
	})

	// Callers keep calling while a is killed with SIGKILL.
	var failures atomic.Int64
	var afterKill, fromB atomic.Int64
	var killed atomic.Bool
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rsp, err := call()
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				if killed.Load() {
					afterKill.Add(1)
					if rsp.Node == b.id {
						fromB.Add(1)
					}
				}
			}
		}()
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.waited:
	case <-time.After(10 * time.Second):
		t.Fatal("killed greeter did not exit")
	}
	killed.Store(true)

	// The registry drops the dead instance once its TTL passes, with nobody deregistering it.
	waitEvent(t, w, 20*time.Second, "the killed instance gone (TTL 2s)", func(r *registry.Result) bool {
		return r.Action == registry.Update && len(r.Service.Nodes) == 1 && r.Service.Nodes[0].Id == b.id
	})
	deadline := time.After(20 * time.Second)
	// Keep calling until plenty of calls have gone through since the kill.
	for afterKill.Load() < 200 {
		if failures.Load() > 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("only %d calls after the kill within 20s", afterKill.Load())
		case <-time.After(10 * time.Millisecond): // polling a counter, not synchronising
		}
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d calls failed across the kill; first: %v", n, firstErr.Load())
	}
	if fromB.Load() != afterKill.Load() {
		t.Fatalf("%d of %d calls after the kill answered by the dead node", afterKill.Load()-fromB.Load(), afterKill.Load())
	}
}
