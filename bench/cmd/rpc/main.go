// Command rpc compares one echo call across RPC stacks over loopback: micro (sdk/go/micro) on
// its tcp transport with the protobuf codec, micro on its grpc transport, plain grpc-go, and
// go-micro v4 (its default rpc server and client on the http transport, protobuf codec). Each
// case (payload 16 B or 1 KiB, 1 or 64 concurrent callers) runs -duration after a warm-up;
// the cases are interleaved, -rounds times over, and the table reports the median of each
// figure: calls/s, p50 and p99 latency, and calls/s as a ratio of micro tcp's.
//
//	cd bench && go run ./cmd/rpc [-duration 1s] [-rounds 3] [-out ../docs/bench/rpc.md]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	gmbroker "go-micro.dev/v4/broker"
	gmclient "go-micro.dev/v4/client"
	gmlogger "go-micro.dev/v4/logger"
	gmregistry "go-micro.dev/v4/registry"
	gmserver "go-micro.dev/v4/server"
	gmtransport "go-micro.dev/v4/transport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport"
	tgrpc "github.com/configd/configd/sdk/go/micro/transport/grpc"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

// callFunc makes one echo call of payload.
type callFunc func(ctx context.Context, payload []byte) error

type peer struct {
	name string
	call callFunc
	stop func()
}

// Echo is the handler of micro and go-micro.
type Echo struct{}

// Say echoes the request.
func (Echo) Say(_ context.Context, req *wrapperspb.BytesValue, rsp *wrapperspb.BytesValue) error {
	rsp.Value = req.Value
	return nil
}

func check(req []byte, rsp *wrapperspb.BytesValue) error {
	if !bytes.Equal(req, rsp.Value) {
		return fmt.Errorf("echo: sent %d bytes, got %d", len(req), len(rsp.Value))
	}
	return nil
}

func microPeer(name string, tr transport.Transport) (*peer, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Name("echo"), server.Transport(tr), server.GracePeriod(0), server.Logger(quiet))
	if err != nil {
		return nil, err
	}
	if err := srv.Handle(Echo{}); err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	c, err := client.New(client.Transport(tr), client.PoolSize(128), client.Logger(quiet))
	if err != nil {
		return nil, err
	}
	addr := srv.Addr()
	return &peer{
		name: name,
		call: func(ctx context.Context, p []byte) error {
			var rsp wrapperspb.BytesValue
			if err := c.Call(ctx, "echo", "Echo.Say", &wrapperspb.BytesValue{Value: p}, &rsp, client.WithAddress(addr)); err != nil {
				return err
			}
			return check(p, &rsp)
		},
		stop: func() {
			c.Close()
			srv.Stop(context.Background())
			if cl, ok := tr.(io.Closer); ok {
				cl.Close()
			}
		},
	}, nil
}

const grpcMethod = "/bench.Echo/Say"

func grpcPeer() (*peer, error) {
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "bench.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Say", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.BytesValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		}}},
	}, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(lis)
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &peer{
		name: "grpc-go",
		call: func(ctx context.Context, p []byte) error {
			var rsp wrapperspb.BytesValue
			if err := cc.Invoke(ctx, grpcMethod, &wrapperspb.BytesValue{Value: p}, &rsp); err != nil {
				return err
			}
			return check(p, &rsp)
		},
		stop: func() { cc.Close(); srv.Stop() },
	}, nil
}

func goMicroPeer() (*peer, error) {
	gmlogger.DefaultLogger = gmlogger.NewLogger(gmlogger.WithLevel(gmlogger.ErrorLevel), gmlogger.WithOutput(io.Discard))
	reg := gmregistry.NewMemoryRegistry()
	tr := gmtransport.NewHTTPTransport()
	srv := gmserver.NewRPCServer(gmserver.Name("echo"), gmserver.Address("127.0.0.1:0"), gmserver.Registry(reg),
		gmserver.Transport(tr), gmserver.Broker(gmbroker.NewMemoryBroker()))
	if err := srv.Handle(srv.NewHandler(Echo{})); err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	addr := srv.Options().Address
	c := gmclient.NewClient(gmclient.Registry(reg), gmclient.Transport(tr), gmclient.PoolSize(128),
		gmclient.ContentType("application/protobuf"), gmclient.RequestTimeout(5*time.Second), gmclient.Retries(0))
	return &peer{
		name: "go-micro v4",
		call: func(ctx context.Context, p []byte) error {
			var rsp wrapperspb.BytesValue
			req := c.NewRequest("echo", "Echo.Say", &wrapperspb.BytesValue{Value: p})
			if err := c.Call(ctx, req, &rsp, gmclient.WithAddress(addr)); err != nil {
				return err
			}
			return check(p, &rsp)
		},
		stop: func() { srv.Stop() },
	}, nil
}

type result struct {
	callsPerSec float64
	p50, p99    time.Duration
	errors      int // calls that failed (each bounded by callTimeout); not in the latencies
	firstErr    error
}

// callTimeout bounds each call, so a stack that loses a call costs a case this much at most.
const callTimeout = time.Second

// run calls p.call from conc goroutines for warm-up then d, and measures the second part.
func run(p *peer, payload []byte, conc int, warm, d time.Duration) (result, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lats []time.Duration
		res  result
	)
	start := time.Now()
	measureFrom, end := start.Add(warm), start.Add(warm+d)
	for range conc {
		wg.Go(func() {
			own := make([]time.Duration, 0, 4096)
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				err := p.call(ctx, payload)
				cancel()
				t1 := time.Now()
				if err != nil {
					mu.Lock()
					res.errors++
					res.firstErr = cmpOr(res.firstErr, err)
					mu.Unlock()
					continue
				}
				if t0.After(measureFrom) && !t1.After(end) {
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
	res.callsPerSec = float64(len(lats)) / d.Seconds()
	res.p50, res.p99 = lats[len(lats)/2], lats[min(len(lats)-1, len(lats)*99/100)]
	return res, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

type caseKey struct {
	peer    string
	payload int
	conc    int
}

func main() {
	duration := flag.Duration("duration", time.Second, "measured time per case and round")
	warm := flag.Duration("warmup", 250*time.Millisecond, "unmeasured time before each case")
	rounds := flag.Int("rounds", 3, "interleaved rounds; the table shows medians")
	out := flag.String("out", "", "also write the markdown table to this file")
	noGoMicro := flag.Bool("no-go-micro", false, "leave go-micro v4 out")
	flag.Parse()
	log.SetFlags(0)

	var peers []*peer
	add := func(p *peer, err error) {
		if err != nil {
			log.Fatal(err)
		}
		peers = append(peers, p)
	}
	add(microPeer("micro tcp", tcp.New()))
	add(microPeer("micro grpc", tgrpc.New()))
	add(grpcPeer())
	if !*noGoMicro {
		add(goMicroPeer())
	}
	defer func() {
		for _, p := range peers {
			p.stop()
		}
	}()

	payloads := []int{16, 1024}
	concs := []int{1, 64}
	results := map[caseKey][]result{}
	began := time.Now()
	for r := range *rounds {
		for _, size := range payloads {
			payload := bytes.Repeat([]byte{'x'}, size)
			for _, conc := range concs {
				for _, p := range peers {
					res, err := run(p, payload, conc, *warm, *duration)
					if err != nil {
						log.Print(err) // the case counts as zero calls/s this round
					}
					if res.errors > 0 {
						log.Printf("%s, %d B, %d callers: %d calls failed, the first: %v", p.name, size, conc, res.errors, res.firstErr)
					}
					k := caseKey{p.name, size, conc}
					results[k] = append(results[k], res)
					fmt.Fprintf(os.Stderr, "round %d  %-12s %5d B  %2d callers  %9.0f calls/s  p50 %8v  p99 %8v\n",
						r+1, p.name, size, conc, res.callsPerSec, res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond))
				}
			}
		}
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "| payload | callers | stack | calls/s | p50 | p99 | calls/s vs micro tcp | failed calls |\n")
	fmt.Fprintf(&b, "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, size := range payloads {
		for _, conc := range concs {
			base := median(collect(results[caseKey{"micro tcp", size, conc}], func(r result) float64 { return r.callsPerSec }))
			for _, p := range peers {
				rs := results[caseKey{p.name, size, conc}]
				cps := median(collect(rs, func(r result) float64 { return r.callsPerSec }))
				failed := 0
				for _, r := range rs {
					failed += r.errors
				}
				fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %v | %v | %.2f | %d |\n", sizeName(size), conc, p.name, cps,
					median(collect(rs, func(r result) time.Duration { return r.p50 })).Round(time.Microsecond),
					median(collect(rs, func(r result) time.Duration { return r.p99 })).Round(time.Microsecond),
					cps/base, failed)
			}
		}
	}
	fmt.Fprintf(&b, "\n%s, %s/%s, GOMAXPROCS %d, %d CPUs; %d interleaved rounds of %v per case (after %v warm-up), medians; failed calls (each cut at %v) summed over the rounds; whole run %v.\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), *rounds, *duration, *warm, callTimeout, time.Since(began).Round(time.Second))
	os.Stdout.Write(b.Bytes())
	if *out != "" {
		if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func collect[T any](rs []result, f func(result) T) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func sizeName(n int) string {
	if n >= 1024 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
