// Command gateway is issue 16's gateway benchmark: the talk's `hey -z 5s -c 50` through an HTTP
// gateway to the example service (POST /example/call {"name":"hobo"} → {"msg":"Hello hobo"}),
// every stack in one run, side by side:
//
//   - this project's gateway (`micro api`, sdk/go/micro/gateway) in front of the RPC core's
//     server: the talk's two tables, transport + server (tcp+rpc, grpc+rpc) and codecs (the
//     codec the gateway calls its backend with: grpc, grpc+json, protobuf, json, json-rpc,
//     proto-rpc), and tcp+protobuf behind the policy chain (JWT, limits, metrics, 1% tracing);
//   - grpc-gateway: grpc-gateway v2's reverse proxy in front of grpc-go;
//   - go-micro v4 api: go-micro.dev/v4's API gateway (registry router, rpc handler) in front of
//     go-micro's rpc server on its http transport (bench/internal/gomicro mends a fault of it).
//
// A JSON case sends the talk's JSON body; a protobuf case (the protobuf-family codecs: the
// gateway has no schema to turn JSON into protobuf) the same request as protobuf
// (`hey -D FILE -T application/protobuf`) and gets a protobuf answer.
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
//
// A role runs alone with its flags in GATEWAY_BENCH_ROLE, -cpuprofile FILE to profile it:
//
//	GATEWAY_BENCH_ROLE='micro-api -backend ADDR -content-type application/protobuf -cpuprofile gw.prof' go run ./cmd/gateway
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
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/configd/configd/bench/internal/examplepb"
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
	Proto   bool     // the request and the answer are protobuf, not JSON
	Auth    bool     // the request carries a bearer token (benchToken)
}

// microStack is this project's gateway in front of the core's server on transport, calling
// it in contentType; gw adds options of the gateway role.
func microStack(name, table, transport, contentType string, proto bool, gw ...string) stack {
	return stack{Name: name, Table: table, Proto: proto,
		Backend: []string{"micro-backend", "-transport", transport},
		Gateway: append([]string{"micro-api", "-transport", transport, "-content-type", contentType}, gw...)}
}

var stacks = []stack{
	microStack("tcp+rpc", tableTransport, "tcp", "application/json", false),
	microStack("grpc+rpc", tableTransport, "grpc", "application/json", false),
	microStack("grpc", tableCodecs, "tcp", "application/grpc+proto", true),
	microStack("grpc+json", tableCodecs, "tcp", "application/grpc+json", false),
	microStack(stackPolicyBare, tableCodecs, "tcp", "application/protobuf", true),
	microStack("json", tableCodecs, "tcp", "application/json", false),
	microStack("json-rpc", tableCodecs, "tcp", "application/json-rpc", false),
	microStack("proto-rpc", tableCodecs, "tcp", "application/proto-rpc", true),
	func() stack {
		s := microStack(stackPolicy, tablePolicy, "tcp", "application/protobuf", true, "-policy")
		s.Auth = true
		return s
	}(),
	{Name: stackGRPCGateway, Table: tablePeers, Backend: []string{"grpc-backend"}, Gateway: []string{"grpc-gateway"}},
	{Name: "grpc-gateway (protobuf body)", Table: tablePeers, Backend: []string{"grpc-backend"}, Gateway: []string{"grpc-gateway"}, Proto: true},
	{Name: stackGoMicro, Table: tablePeers, Backend: []string{"gomicro-backend"}, Gateway: []string{"gomicro-api"}},
}

// The policy chain's row, and the row of the same stack without it.
const (
	stackPolicy     = "tcp+protobuf with the policy chain"
	stackPolicyBare = "protobuf"
)

// The tables, in the order of their first stack, and the notes under them.
const (
	tableTransport = "Transport + server (the talk's first table): `micro api` in front of the core's server, JSON"
	tableCodecs    = "Codecs (the talk's second table): `micro api` over tcp, calling in each codec"
	tablePolicy    = "The policy chain: JWT, client and route limits, metrics, 1% tracing"
	tablePeers     = "Peers a user would pick instead"
)

var tableNotes = map[string]string{
	tableTransport: "No `grpc+grpc` row: the core's grpc transport is go-micro's, one generic bidirectional stream " +
		"(`go.micro.transport.grpc.Transport/Stream`) carrying the core's messages, and the core's client cannot " +
		"call a grpc-go service's own methods (`/example.Example/Call`); grpc-gateway in front of grpc-go, below, " +
		"is that stack.\n",
	tableCodecs: "`grpc`, `protobuf` and `proto-rpc` carry a protobuf request (`hey -D FILE -T application/protobuf`) " +
		"and answer protobuf, passed through untouched: the gateway has no schema to turn JSON into protobuf. " +
		"`grpc+json`, `json` and `json-rpc` carry the talk's JSON body. No `bsonrpc` row: the core has no BSON codec.\n",
	tablePolicy: "`micro api --policy --metrics prometheus` as built by the command (HS256 token on every request, " +
		"limits never reached, Prometheus metrics, 1% of the traces recorded, the client's metrics, tracing, " +
		"breaker and retry wrappers), the access log off; the same request as the `protobuf` row.\n",
}

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
	fs.StringVar(&o.contentType, "content-type", "", "the codec the gateway calls its backend with (micro-api)")
	fs.BoolVar(&o.policy, "policy", false, "put micro api's policy chain in front of the gateway (micro-api)")
	cpuprofile := fs.String("cpuprofile", "", "write the role's CPU profile to this file until it stops")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	r, ok := roles[args[0]]
	if !ok {
		return fmt.Errorf("unknown role %q", args[0])
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
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
	if err := call(ctx, http.DefaultClient, s, url); err != nil {
		down()
		return "", nil, err
	}
	return url, down, nil
}

// call makes one call of s's request through a gateway and checks its answer.
func call(ctx context.Context, c *http.Client, s stack, url string) error {
	rq, err := requestOf(s)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(rq.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", rq.contentType)
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	rsp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		return err
	}
	var got examplepb.Response
	if s.Proto {
		err = proto.Unmarshal(b, &got)
	} else {
		err = json.Unmarshal(b, &got)
	}
	if rsp.StatusCode != http.StatusOK || err != nil || got.Msg != wantMsg {
		return fmt.Errorf("POST %s (%s): %s %q, want 200 with msg %q", url, rq.contentType, rsp.Status, bytes.TrimSpace(b), wantMsg)
	}
	return nil
}

// request is what a stack's case sends.
type request struct {
	contentType string
	body        []byte
	header      map[string]string
}

// requestOf is s's request: the talk's JSON, or the same as protobuf, with a bearer token
// when s wants one.
func requestOf(s stack) (request, error) {
	rq := request{contentType: "application/json", body: []byte(body), header: map[string]string{}}
	if s.Proto {
		b, err := proto.Marshal(&examplepb.Request{Name: "hobo"})
		if err != nil {
			return rq, err
		}
		rq.contentType, rq.body = "application/protobuf", b
	}
	if s.Auth {
		tok, err := benchToken()
		if err != nil {
			return rq, err
		}
		rq.header["Authorization"] = "Bearer " + tok
	}
	return rq, nil
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
				if err := call(ctx, c, s, url); err != nil {
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
	args, cleanup, err := heyArgs(s)
	if err != nil {
		return result{}, err
	}
	defer cleanup()
	if warmup > 0 {
		if _, err := hey(ctx, url, args, warmup, conc); err != nil {
			return result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	return hey(ctx, url, args, d, conc)
}

// heyArgs are hey's flags that send s's request: the talk's (-m POST -T application/json -d
// BODY), or a protobuf body from a file (-D), and the token (-H).
func heyArgs(s stack) (args []string, cleanup func(), err error) {
	rq, err := requestOf(s)
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() {}
	args = []string{"-m", "POST", "-T", rq.contentType}
	if s.Proto {
		f, err := os.CreateTemp("", "gateway-bench-*.pb")
		if err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.Remove(f.Name()) }
		if _, err := f.Write(rq.body); err != nil {
			f.Close()
			cleanup()
			return nil, nil, err
		}
		f.Close()
		args = append(args, "-D", f.Name())
	} else {
		args = append(args, "-d", string(rq.body))
	}
	for k, v := range rq.header {
		args = append(args, "-H", k+": "+v)
	}
	return args, cleanup, nil
}

// hey runs Debian's hey, the talk's load generator, with the talk's flags and args.
func hey(ctx context.Context, url string, args []string, d time.Duration, conc int) (result, error) {
	out, err := exec.CommandContext(ctx, "hey", slices.Concat([]string{"-z", d.String(), "-c", fmt.Sprint(conc)}, args, []string{url})...).CombinedOutput()
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
