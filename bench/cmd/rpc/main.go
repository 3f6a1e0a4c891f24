// Command rpc is issue 6's RPC benchmark: an echo of a 600-byte protobuf message (a configd
// ListResponse of four keys) over loopback with 50 and 256 concurrent callers, on
//
//   - micro tcp: sdk/go/micro's server and client on its tcp transport, protobuf codec;
//   - micro grpc: the same on its grpc transport;
//   - micro tcp + wrappers: micro tcp with every built-in wrapper (metrics, tracing with the
//     OpenTelemetry SDK, breaker, rate limits off), every call traced;
//   - micro tcp + wrappers, 1% traced: the same with 1% of the traces sampled, by the Tracing
//     wrapper (wrapper.WithSampler: the other calls start no span);
//   - micro tcp + wrappers, 1% traced by the provider: the same sampler on the tracer provider;
//   - grpc-go: plain google.golang.org/grpc, one ClientConn, a unary method;
//   - go-micro v4: go-micro.dev/v4's rpc server and client (http transport, protobuf).
//
// Every case (peer × callers) runs -duration after -warmup; the cases are interleaved, -rounds
// times over (the order of the peers rotates each round), and the tables show the median of each
// figure: calls/s, p50 and p99, and their ratios to grpc-go. Each case runs in a fresh process
// of this program (-case), client and server together in it, so that no other peer's
// connections, goroutines or garbage are in its way.
//
// Then issue 6's goals are measured in pairs, since the machine's speed drifts by ±25% over
// seconds, more than some of the differences measured: for each concurrency, micro tcp, micro
// grpc, grpc-go and the three wrapped peers each run in one long-lived process of this program
// (-serve: it builds the peer once and runs it for each "run DURATION" line on its stdin),
// warmed by one -warmup slice, and take turns in -slice (250 ms) slices, one process running at
// a time, -slices (30) times, the order rotating each turn. Each goal's ratio is the median over
// the turns of the ratio within a turn (calls/s, p99; a wrapper's cost is 1 − wrapped ÷ micro
// tcp calls/s). That adds about 2 × 30 × 6 × 0.25 s = 90 s and the warm-ups. (Micro tcp paired
// with an unwrapped copy of itself this way gives 0% ± 2%.)
//
// A full run rewrites -out (docs/bench/rpc.md) and the rpc section of -benchmarks
// (BENCHMARKS.md) and takes about seven minutes:
//
//	cd bench && go run ./cmd/rpc
//	go run ./cmd/rpc --peer tcp,wrappers-sampled --concurrency 50 --rounds 1 --slices 10
//	go run ./cmd/rpc --peer tcp --concurrency 256 --rounds 1 -cpuprofile /tmp/tcp.pprof
//	go run ./cmd/rpc --quick        # a few hundred checked calls per peer, no timing
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/bench/internal/machine"
	"github.com/configd/configd/bench/internal/mdsection"
)

// result is one case of one round.
type result struct {
	callsPerSec float64
	p50, p99    time.Duration
	// cpuPerCall is the CPU time this process (clients and server) spent in the measured
	// part, divided by the calls timed in it: what a call costs, whatever else ran on the
	// machine (time the cores spent on other processes is not counted).
	cpuPerCall time.Duration
	errors     int // calls that failed (each bounded by callTimeout); not in the latencies
	firstErr   error
}

// callTimeout bounds each call, so a stack that loses a call costs a case this much at most.
const callTimeout = 2 * time.Second

// run calls p.call from conc goroutines for warm then d, and measures the second part. When
// during is set, it is called at the start of the measured part and its result at the end.
func run(p *peer, req *configdpb.ListResponse, conc int, warm, d time.Duration, during func() func()) (result, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lats []time.Duration
		res  result
	)
	start := time.Now()
	measureFrom, end := start.Add(warm), start.Add(warm+d)
	var cpu0, cpu1 time.Duration
	stopped := make(chan struct{})
	time.AfterFunc(warm, func() {
		cpu0 = processCPU()
		done := func() {}
		if during != nil {
			done = during()
		}
		time.AfterFunc(d, func() { cpu1 = processCPU(); done(); close(stopped) })
	})
	defer func() { <-stopped }() // the profile is complete before run returns
	for range conc {
		wg.Go(func() {
			own := make([]time.Duration, 0, 8192)
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				err := p.call(ctx, req)
				cancel()
				t1 := time.Now()
				if err != nil {
					mu.Lock()
					res.errors++
					res.firstErr = cmp(res.firstErr, err)
					mu.Unlock()
					continue
				}
				if !t0.Before(measureFrom) && !t1.After(end) {
					own = append(own, t1.Sub(t0))
				}
			}
			mu.Lock()
			lats = append(lats, own...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(lats) == 0 {
		return res, fmt.Errorf("%s: no call completed: %w", p.name, res.firstErr)
	}
	slices.Sort(lats)
	<-stopped
	res.cpuPerCall = (cpu1 - cpu0) / time.Duration(len(lats))
	res.callsPerSec = float64(len(lats)) / d.Seconds()
	res.p50, res.p99 = lats[len(lats)/2], lats[min(len(lats)-1, len(lats)*99/100)]
	return res, nil
}

// caseResult is a result as a child process prints it.
type caseResult struct {
	CallsPerSec float64       `json:"calls_per_sec"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	CPUPerCall  time.Duration `json:"cpu_per_call_ns"`
	Errors      int           `json:"errors"`
	FirstErr    string        `json:"first_error,omitempty"`
}

// runCase runs one case in a child process of this program (self -case) and returns its result.
func runCase(self, name string, conc, pool int, warm, d time.Duration, cpuprofile string) (result, error) {
	args := []string{"-case", fmt.Sprintf("%s@%d", name, conc), "-pool", strconv.Itoa(pool),
		"-warmup", warm.String(), "-duration", d.String()}
	if cpuprofile != "" {
		args = append(args, "-cpuprofile", cpuprofile)
	}
	cmd := exec.Command(self, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%s, %d callers: %w", name, conc, err)
	}
	var cr caseResult
	if err := json.Unmarshal(out.Bytes(), &cr); err != nil {
		return result{}, fmt.Errorf("%s, %d callers: the child's result %q: %w", name, conc, out.Bytes(), err)
	}
	return cr.result(), nil
}

// caseResult is r as a child prints it.
func (r result) caseResult() caseResult {
	cr := caseResult{CallsPerSec: r.callsPerSec, P50: r.p50, P99: r.p99, CPUPerCall: r.cpuPerCall, Errors: r.errors}
	if r.firstErr != nil {
		cr.FirstErr = r.firstErr.Error()
	}
	return cr
}

// result is the result a child printed as cr.
func (cr caseResult) result() result {
	res := result{callsPerSec: cr.CallsPerSec, p50: cr.P50, p99: cr.P99, cpuPerCall: cr.CPUPerCall, errors: cr.Errors}
	if cr.FirstErr != "" {
		res.firstErr = errors.New(cr.FirstErr)
	}
	return res
}

// parseCase splits PEER@CALLERS (PEER as for --peer) into a peer's name and the callers.
func parseCase(c string) (string, int, error) {
	peerArg, concArg, _ := strings.Cut(c, "@")
	name, err := peerName(peerArg)
	if err != nil {
		return "", 0, err
	}
	conc, err := strconv.Atoi(concArg)
	if err != nil || conc < 1 {
		return "", 0, fmt.Errorf("case %q: want PEER@CALLERS", c)
	}
	return name, conc, nil
}

// casePeer builds the peer of the case PEER@CALLERS given to -flag (-case, -serve).
func casePeer(flag, c string, pool int) (*peer, int, error) {
	name, conc, err := parseCase(c)
	if err != nil {
		return nil, 0, fmt.Errorf("-%s: %w", flag, err)
	}
	p, err := newPeer(name, peerOptions{pool: pool})
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	return p, conc, nil
}

// runChild is a child process's work: run the case PEER@CALLERS and print its result.
func runChild(c string, pool int, warm, d time.Duration, cpuprofile string) error {
	p, conc, err := casePeer("case", c, pool)
	if err != nil {
		return err
	}
	defer p.stop()
	var during func() func()
	if cpuprofile != "" {
		during = func() func() {
			f, err := os.Create(cpuprofile)
			if err != nil {
				log.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				log.Fatal(err)
			}
			return func() { pprof.StopCPUProfile(); f.Close() }
		}
	}
	res, err := run(p, message(), conc, warm, d, during)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res.caseResult())
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// quick makes calls checked calls from conc goroutines and returns the first error.
func quick(p *peer, calls, conc int) error {
	req := message()
	var (
		left  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	left.Store(int64(calls))
	for range conc {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				err := p.call(ctx, req)
				cancel()
				if err != nil {
					mu.Lock()
					first = cmp(first, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("%s: %w", p.name, first)
	}
	return nil
}

type caseKey struct {
	peer string
	conc int
}

// peerAliases are short names for --peer and -profile-case.
var peerAliases = map[string]string{"tcp": peerTCP, "grpc": peerGRPC, "wrappers": peerWrapped, "wrappers-sampled": peerSampled, "wrappers-provider": peerProvider, "grpc-go": peerGRPCGo, "go-micro": peerGoMicro}

// peerName resolves a peer's name or alias, case-insensitively.
func peerName(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if n, ok := peerAliases[s]; ok {
		return n, nil
	}
	if i := slices.Index(peerNames, s); i >= 0 {
		return peerNames[i], nil
	}
	return "", fmt.Errorf("unknown peer %q (one of %q, or %s)", s, peerNames, aliasList())
}

// aliasList is the short names of the peers, sorted and comma-separated.
func aliasList() string {
	return strings.Join(slices.Sorted(maps.Keys(peerAliases)), ", ")
}

// selectPeers returns the peers named in list (comma-separated), all when empty.
func selectPeers(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return peerNames, nil
	}
	var out []string
	for _, s := range strings.Split(list, ",") {
		n, err := peerName(s)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func parseInts(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad concurrency %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// rotate returns xs starting at xs[k%len(xs)].
func rotate[T any](xs []T, k int) []T {
	k %= len(xs)
	return append(slices.Clone(xs[k:]), xs[:k]...)
}

func main() {
	var (
		duration    = flag.Duration("duration", 1500*time.Millisecond, "measured time per case and round")
		warm        = flag.Duration("warmup", 500*time.Millisecond, "unmeasured time before each case")
		rounds      = flag.Int("rounds", 9, "interleaved rounds; the tables show medians")
		peerList    = flag.String("peer", "", "run only these peers (comma-separated): "+aliasList()+" (or their full names)")
		concList    = flag.String("concurrency", "50,256", "concurrent callers (comma-separated)")
		out         = flag.String("out", "../docs/bench/rpc.md", "report to rewrite after a full run (empty: none)")
		benchmarks  = flag.String("benchmarks", "../BENCHMARKS.md", "file whose rpc section a full run rewrites (empty: none)")
		cpuprofile  = flag.String("cpuprofile", "", "write a CPU profile of this process during the measured part of -profile-case, first round")
		profileCase = flag.String("profile-case", "tcp@256", "the case -cpuprofile profiles, PEER@CALLERS (PEER as for --peer)")
		rev         = flag.String("rev", "", "what the report says was measured (default: git rev-parse --short HEAD, noting uncommitted changes in sdk/go/micro)")
		quickMode   = flag.Bool("quick", false, "only make 300 calls per peer from 50 callers, check each answer (proto.Equal), exit 1 on any error")
		oneCase     = flag.String("case", "", "run one case, PEER@CALLERS, in this process and print its result as JSON (what a run does in a child process per case)")
		serveCase   = flag.String("serve", "", "serve one case, PEER@CALLERS: build the peer once, then for each line \"run DURATION\" on stdin run it that long and print its result as a line of JSON; exit at EOF (what the paired measurement runs in its child processes)")
		pool        = flag.Int("pool", 256, "with -case or -serve: the clients' connection pool")
		nSlices     = flag.Int("slices", 30, "turns of the paired measurement behind the goals, per concurrency (0: none)")
		sliceLen    = flag.Duration("slice", 250*time.Millisecond, "each slice of the paired measurement")
	)
	flag.Parse()
	log.SetFlags(0)
	if *oneCase != "" {
		if err := runChild(*oneCase, *pool, *warm, *duration, *cpuprofile); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *serveCase != "" {
		if err := serveChild(*serveCase, *pool); err != nil {
			log.Fatal(err)
		}
		return
	}

	names, err := selectPeers(*peerList)
	if err != nil {
		log.Fatal(err)
	}
	concs, err := parseInts(*concList)
	if err != nil {
		log.Fatal(err)
	}
	profPeer, profConc, _ := strings.Cut(*profileCase, "@")
	if *cpuprofile != "" {
		if profPeer, err = peerName(profPeer); err != nil {
			log.Fatal(err)
		}
	}
	if *quickMode {
		failed := false
		for _, n := range names {
			p, err := newPeer(n, peerOptions{pool: 50, strict: true})
			if err != nil {
				log.Fatalf("%s: %v", n, err)
			}
			err = quick(p, 300, 50)
			p.stop()
			if err != nil {
				log.Print(err)
				failed = true
				continue
			}
			fmt.Fprintf(os.Stderr, "%-22s 300 calls from 50 callers, all answered correctly\n", n)
		}
		if failed {
			os.Exit(1)
		}
		return
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}

	full := *peerList == "" && slices.Equal(concs, []int{50, 256})
	env := describeMachine(*rev)
	req := message()
	results := map[caseKey][]result{}
	total := *rounds * len(concs) * len(names)
	done := 0
	began := time.Now()
	for r := range *rounds {
		for _, conc := range concs {
			for _, name := range rotate(names, r) {
				profile := ""
				if *cpuprofile != "" && r == 0 && profPeer == name && profConc == strconv.Itoa(conc) {
					profile = *cpuprofile
				}
				res, err := runCase(self, name, conc, slices.Max(concs), *warm, *duration, profile)
				if err != nil {
					log.Print(err) // the case counts as zero calls/s this round
				}
				if res.errors > 0 {
					log.Printf("%s, %d callers: %d calls failed, the first: %v", name, conc, res.errors, res.firstErr)
				}
				k := caseKey{name, conc}
				results[k] = append(results[k], res)
				done++
				fmt.Fprintf(os.Stderr, "[%2d/%d %5.0fs] round %d  %-22s %3d callers  %8.0f calls/s  p50 %9v  p99 %9v\n",
					done, total, time.Since(began).Seconds(), r+1, name, conc, res.callsPerSec,
					res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond))
			}
		}
	}
	paired := map[int][]turn{}
	if pp := pairedPeers(names); len(pp) > 0 && *nSlices > 0 {
		total, done := *nSlices*len(concs), 0
		for _, conc := range concs {
			ts, err := runPaired(self, pp, conc, slices.Max(concs), *nSlices, *warm, *sliceLen, func(i int, t turn) {
				done++
				line := fmt.Sprintf("[%2d/%d %5.0fs] paired %3d callers, turn %d:  %s %.0f calls/s", done, total,
					time.Since(began).Seconds(), conc, i+1, peerTCP, t[peerTCP].callsPerSec)
				for _, n := range pp[1:] {
					line += fmt.Sprintf(";  %s %.0f (%.2f×)", n, t[n].callsPerSec, t[n].callsPerSec/t[peerTCP].callsPerSec)
				}
				fmt.Fprintln(os.Stderr, line)
			})
			if err != nil {
				log.Printf("paired measurement, %d callers: %v", conc, err)
			}
			if len(ts) > 0 {
				paired[conc] = ts
			}
		}
	}
	env.loadEnd = machine.LoadAvg()
	env.took = time.Since(began).Round(time.Second)
	if *cpuprofile != "" {
		fmt.Fprintf(os.Stderr, "CPU profile of %s with %s callers, round 1, in %s (go tool pprof -top %s)\n", profPeer, profConc, *cpuprofile, *cpuprofile)
	}

	rep := &report{env: env, req: req, names: names, concs: concs, rounds: *rounds, duration: *duration, warm: *warm, results: results,
		paired: paired, sliceLen: *sliceLen}
	os.Stdout.WriteString(rep.tables())
	if g := rep.goals(); g != "" {
		fmt.Fprintf(os.Stdout, "\n**Issue 6's goals**\n\n%s", g)
	}
	if !full {
		fmt.Fprintln(os.Stderr, "partial run (--peer or --concurrency): no file rewritten")
		return
	}
	if *out != "" {
		if err := rep.writeDoc(*out); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	}
	if *benchmarks != "" {
		notes := ""
		if *out != "" {
			notes = profileNotes(*out)
		}
		if err := mdsection.Rewrite(*benchmarks, section, rep.benchmarksSection(notes), benchmarksHeading); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "wrote the rpc section of %s\n", *benchmarks)
	}
}
