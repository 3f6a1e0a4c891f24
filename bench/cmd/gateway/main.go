// Command gateway is issue 16's gateway benchmark: the talk's `hey -z 5s -c 50` through an HTTP
// gateway to the example service (POST /example/call {"name":"hobo"} → {"msg":"Hello hobo"}),
// every stack in one run, side by side:
//
//   - grpc-gateway: grpc-gateway v2's reverse proxy in front of grpc-go;
//   - go-micro v4 api: go-micro.dev/v4's API gateway (registry router, rpc handler) in front of
//     go-micro's rpc server on its http transport.
//
// Each stack is two processes of this program (-role): the backend service and the gateway, on
// loopback ports of their own, as the talk runs `micro api` and the service. The gateway finds
// its backend by address (a static registry entry where the gateway wants a registry), so no
// registry is in the measured path. Each case is warmed by -warmup of hey, then measured by
// -duration of hey with -concurrency clients; the stacks take turns, -rounds times over (their
// order rotates each round), and the tables show the medians: the talk's columns (avg, median,
// max, min, p90, p99, TPS) and the TPS ratio to grpc-gateway.
//
//	cd bench && go run ./cmd/gateway                      # rewrites docs/bench/gateway.md and BENCHMARKS.md
//	go run ./cmd/gateway --stack grpc-gateway --rounds 1 --out ''
//	go run ./cmd/gateway --quick                          # checked calls through every stack, no hey
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The stacks, in the order of the tables.
const (
	stackGRPCGateway = "grpc-gateway"
	stackGoMicro     = "go-micro v4 api"
	baseline         = stackGRPCGateway
)

// stack is one gateway in front of one backend.
type stack struct {
	Name    string
	Table   string   // the table it is a row of
	Backend []string // the backend's role and options
	Gateway []string // the gateway's role and options
}

var stacks = []stack{
	{Name: stackGRPCGateway, Table: tablePeers, Backend: []string{"grpc-backend"}, Gateway: []string{"grpc-gateway"}},
	{Name: stackGoMicro, Table: tablePeers, Backend: []string{"gomicro-backend"}, Gateway: []string{"gomicro-api"}},
}

const tablePeers = "Peers a user would pick instead"

// The request every case sends, and the answer it must get.
const (
	path     = "/example/call"
	body     = `{"name":"hobo"}`
	wantMsg  = "Hello hobo"
	roleEnv  = "GATEWAY_BENCH_ROLE" // set: this process is a role of a stack (tests use it)
	readyFmt = "listening %s\n"
)

func main() {
	log.SetFlags(0)
	if args := os.Getenv(roleEnv); args != "" {
		if err := runRole(strings.Fields(args)); err != nil {
			log.Fatal(err)
		}
		return
	}
	var (
		only        = flag.String("stack", "", "comma-separated stacks to run (default: all)")
		duration    = flag.Duration("duration", 5*time.Second, "hey -z: how long each case is measured")
		warmup      = flag.Duration("warmup", time.Second, "hey -z of the warm-up before each case")
		concurrency = flag.Int("concurrency", 50, "hey -c")
		rounds      = flag.Int("rounds", 3, "how many times each case runs (the tables show medians)")
		quick       = flag.Bool("quick", false, "make a few hundred checked calls through each stack, no hey")
		out         = flag.String("out", "../docs/bench/gateway.md", "report to rewrite (empty: none)")
		benchmarks  = flag.String("benchmarks", "../BENCHMARKS.md", "file whose gateway section a full run rewrites (empty: none)")
	)
	flag.Parse()
	chosen, err := choose(*only)
	if err != nil {
		log.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *quick {
		for _, s := range chosen {
			if err := quickCheck(ctx, self, s, 300, 16); err != nil {
				log.Fatalf("%s: %v", s.Name, err)
			}
			fmt.Fprintf(os.Stderr, "%-20s 300 calls from 16 clients, all answered %q\n", s.Name, wantMsg)
		}
		return
	}
	if _, err := exec.LookPath("hey"); err != nil {
		log.Fatal("hey is not installed (Debian: apt-get install hey)")
	}
	results := map[string][]result{}
	for r := range *rounds {
		order := slices.Clone(chosen)
		k := r % len(order)
		order = append(order[k:], order[:k]...)
		for _, s := range order {
			res, err := measure(ctx, self, s, *warmup, *duration, *concurrency)
			if err != nil {
				log.Fatalf("%s: %v", s.Name, err)
			}
			fmt.Fprintf(os.Stderr, "round %d/%d %-20s %8.0f req/s  p50 %s  p99 %s\n", r+1, *rounds, s.Name, res.TPS, ms(res.Median), ms(res.P99))
			results[s.Name] = append(results[s.Name], res)
		}
	}
	rep := newReport(chosen, results, *duration, *concurrency, *rounds)
	fmt.Print(rep.body("##"))
	if *only == "" && *out != "" {
		if err := rep.write(*out, *benchmarks); err != nil {
			log.Fatal(err)
		}
	}
}

func choose(list string) ([]stack, error) {
	if list == "" {
		return stacks, nil
	}
	var out []stack
	for _, name := range strings.Split(list, ",") {
		i := slices.IndexFunc(stacks, func(s stack) bool { return s.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("unknown stack %q", name)
		}
		out = append(out, stacks[i])
	}
	return out, nil
}

// runRole serves one role until stdin closes (the harness ends it so) or a signal.
func runRole(args []string) error {
	fs := flag.NewFlagSet("role", flag.ContinueOnError)
	var o roleOptions
	fs.StringVar(&o.backend, "backend", "", "address of the backend")
	fs.StringVar(&o.transport, "transport", "tcp", "the RPC core's transport: tcp or grpc")
	fs.StringVar(&o.contentType, "content-type", "application/protobuf", "the codec the gateway calls its backend with")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	r, ok := roles[args[0]]
	if !ok {
		return fmt.Errorf("unknown role %q", args[0])
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	addr, stop, err := r(ctx, o)
	if err != nil {
		return fmt.Errorf("role %s: %w", args[0], err)
	}
	defer stop()
	fmt.Printf(readyFmt, addr)
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	<-ctx.Done()
	return nil
}

// proc is a running role.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// start runs self as the role args (with the backend's address, if any) and waits until it
// listens.
func start(ctx context.Context, self string, args []string, backend string) (*proc, error) {
	if backend != "" {
		args = append(slices.Clone(args), "-backend", backend)
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), roleEnv+"="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if _, err2 := fmt.Sscanf(line, readyFmt, &p.addr); err != nil || err2 != nil {
		p.stop()
		return nil, fmt.Errorf("role %s did not start: %q (%v)", args[0], line, errors.Join(err, err2))
	}
	go io.Copy(io.Discard, stdout)
	return p, nil
}

// stop ends the role: stdin closed, then killed if it lingers.
func (p *proc) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// up starts the stack's backend and gateway, and checks one call through them.
func up(ctx context.Context, self string, s stack) (url string, down func(), err error) {
	be, err := start(ctx, self, s.Backend, "")
	if err != nil {
		return "", nil, err
	}
	gw, err := start(ctx, self, s.Gateway, be.addr)
	if err != nil {
		be.stop()
		return "", nil, err
	}
	down = func() { gw.stop(); be.stop() }
	url = "http://" + gw.addr + path
	if err := call(ctx, http.DefaultClient, url); err != nil {
		down()
		return "", nil, err
	}
	return url, down, nil
}

// call makes one call through a gateway and checks its answer.
func call(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	rsp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		return err
	}
	var got struct{ Msg string }
	if rsp.StatusCode != http.StatusOK || json.Unmarshal(b, &got) != nil || got.Msg != wantMsg {
		return fmt.Errorf("POST %s %s: %s %s, want 200 {\"msg\":%q}", url, body, rsp.Status, bytes.TrimSpace(b), wantMsg)
	}
	return nil
}

// quickCheck makes n checked calls from conc clients through the stack.
func quickCheck(ctx context.Context, self string, s stack, n, conc int) error {
	url, down, err := up(ctx, self, s)
	if err != nil {
		return err
	}
	defer down()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	defer c.CloseIdleConnections()
	errs := make(chan error, conc)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += conc {
				if err := call(ctx, c, url); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// measure brings the stack up, warms it and measures it with hey.
func measure(ctx context.Context, self string, s stack, warmup, d time.Duration, conc int) (result, error) {
	url, down, err := up(ctx, self, s)
	if err != nil {
		return result{}, err
	}
	defer down()
	if warmup > 0 {
		if _, err := hey(ctx, url, warmup, conc); err != nil {
			return result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	return hey(ctx, url, d, conc)
}

// hey runs Debian's hey, the talk's load generator, with the talk's flags.
func hey(ctx context.Context, url string, d time.Duration, conc int) (result, error) {
	out, err := exec.CommandContext(ctx, "hey", "-z", d.String(), "-c", fmt.Sprint(conc),
		"-m", "POST", "-T", "application/json", "-d", body, url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("hey: %w: %s", err, out)
	}
	r, err := parseHey(string(out))
	if err != nil {
		return r, err
	}
	if r.Failed > 0 || r.OK == 0 {
		return r, fmt.Errorf("hey: %d answers of 200, %d others:\n%s", r.OK, r.Failed, out)
	}
	return r, nil
}
