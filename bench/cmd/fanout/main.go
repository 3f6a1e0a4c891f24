// Command fanout measures how fast one write reaches many watchers: it
// starts configd, opens N config SDK clients each on its own connection (in
// this process, separate from the server) watching one key, then writes the
// key R times and records, for each client, the time from the write's
// acknowledgement to its Watcher.Next returning. It also reports
// configd's resident memory per connected watcher.
//
// With --rollout, a rollout runs over another key of the clients' scope
// while the writes are measured (docs/rollouts.md): its first step holds
// a tenth of the clients (each client has its own instance name), which
// the hub then sends that key's new value; the writes measured are
// unrelated to it, as the speed goal asks.
//
//	go run ./cmd/fanout --configd ../bin/configd --clients 1000,10000 --rounds 5 [--rollout]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/configd/configd/bench/internal/daemon"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/sdk/go/config"
)

func main() {
	bin := flag.String("configd", "../bin/configd", "the configd binary to start")
	clientsFlag := flag.String("clients", "1000", "comma-separated watcher counts")
	rounds := flag.Int("rounds", 5, "writes per watcher count")
	cpuprofile := flag.String("cpuprofile", "", "write this process's CPU profile (the clients' side) to `file`")
	withRollout := flag.Bool("rollout", false, "measure with a rollout running over another key of the clients' scope, its step holding 10% of them")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fanout:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	for _, s := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "fanout: bad --clients %q\n", s)
			os.Exit(2)
		}
		if err := run(*bin, n, *rounds, *withRollout); err != nil {
			fmt.Fprintln(os.Stderr, "fanout:", err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
	}
}

// watcherConn is one SDK client (its own connection) watching the key.
type watcherConn struct {
	client *config.Client
	got    chan time.Time // when each Next returned
}

func run(bin string, n, rounds int, withRollout bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := daemon.Start(ctx, bin)
	if err != nil {
		return err
	}
	defer d.Stop()
	put := func(v string) (time.Time, error) {
		req, _ := http.NewRequest(http.MethodPut, "http://"+d.Addr+"/v1/kv/bench/fanout", bytes.NewReader([]byte(v)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return time.Time{}, err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return time.Time{}, fmt.Errorf("PUT: %s", resp.Status)
		}
		return time.Now(), nil
	}
	if _, err := put("initial"); err != nil {
		return err
	}
	runtime.GC()
	rss0, _ := d.RSS()

	ws := make([]*watcherConn, n)
	var wg sync.WaitGroup
	errc := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range ws {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			w, err := openWatcher(ctx, d.Addr, i, rounds)
			if err != nil {
				errc <- err
				return
			}
			ws[i] = w
		}(i)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	defer func() {
		for _, w := range ws {
			w.client.Close()
		}
	}()
	if withRollout {
		if err := startRollout(d.Addr, ws); err != nil {
			return err
		}
	}
	rss1, _ := d.RSS()
	if os.Getenv("FANOUT_DEBUG") != "" {
		resp, err := http.Get("http://" + d.Addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "go_goroutines") || strings.HasPrefix(line, "go_memstats_stack_inuse") || strings.HasPrefix(line, "go_memstats_heap_inuse") || strings.HasPrefix(line, "go_memstats_sys") {
					fmt.Println(line)
				}
			}
		}
	}

	var lat []time.Duration
	for r := 0; r < rounds; r++ {
		ack, err := put(fmt.Sprint("value-", r))
		if err != nil {
			return err
		}
		timeout := time.After(60 * time.Second)
		for _, w := range ws {
			select {
			case t := <-w.got:
				l := t.Sub(ack)
				if l < 0 {
					l = 0 // pushed before the HTTP answer reached the writer
				}
				lat = append(lat, l)
			case <-timeout:
				return fmt.Errorf("round %d: not every watcher got the write within 60s", r)
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	fmt.Printf("rollout=%v watchers=%d rounds=%d p50=%s p99=%s max=%s configd_rss_per_watcher=%.1fKiB configd_rss=%.0fMiB\n",
		withRollout, n, rounds, pct(.5).Round(time.Microsecond), pct(.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond),
		float64(rss1-rss0)/float64(n)/1024, float64(rss1)/(1<<20))
	return nil
}

func openWatcher(ctx context.Context, addr string, i, rounds int) (*watcherConn, error) {
	// Without delivery reports (the SDK's default since issue 19): this
	// measures the fan-out alone, and thousands of clients in one process
	// would each hold a second connection for them (BENCHMARKS.md).
	c, err := config.New(ctx, config.WithAddress(addr), config.WithTimeout(time.Minute),
		config.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), config.WithoutReports(),
		config.WithInstance(instance(i)))
	if err != nil {
		return nil, err
	}
	w, err := c.Watch("bench/fanout")
	if err != nil {
		c.Close()
		return nil, err
	}
	wc := &watcherConn{client: c, got: make(chan time.Time, rounds)}
	go func() {
		for {
			if _, err := w.Next(); err != nil {
				return
			}
			wc.got <- time.Now()
		}
	}()
	return wc, nil
}

// startRollout rolls bench/rollout out to a tenth of the clients: a change
// request, then a rollout of it whose first step is 10% (started with
// allow_empty: the clients do not report, so configd knows of none), and
// waits until the clients in the step have the new value.
func startRollout(addr string, ws []*watcherConn) error {
	post := func(path, body string) ([]byte, error) {
		resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, b)
		}
		return b, nil
	}
	if _, err := post("/v1/txn", `{"ops":[{"op":"put","key":"bench/rollout","value":"old"}]}`); err != nil {
		return err
	}
	b, err := post("/v1/requests", `{"scope":"bench/","reason":"fan-out bench","ops":[{"op":"put","key":"bench/rollout","value":"new"}]}`)
	if err != nil {
		return err
	}
	var req struct{ ID int64 }
	if err := json.Unmarshal(b, &req); err != nil {
		return err
	}
	if _, err := post("/v1/rollouts", fmt.Sprintf(`{"request":%d,"steps":["10%%","100%%"],"allow_empty":true}`, req.ID)); err != nil {
		return err
	}
	// The clients whose instance hashes below 10 are in the step
	// (rollout.Bucket): wait until exactly they have the new value.
	want := 0
	for i := range ws {
		if rollout.Bucket(instance(i)) < 10 {
			want++
		}
	}
	count := func() (in int) {
		for _, w := range ws {
			if w.client.Get("bench/rollout").String("") == "new" {
				in++
			}
		}
		return in
	}
	for deadline := time.Now().Add(time.Minute); count() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("rollout: %d clients have its value after a minute, want the %d of its 10%% step", count(), want)
		}
	}
	fmt.Printf("rollout: %d of %d clients in its 10%% step\n", want, len(ws))
	return nil
}

// instance is client i's instance name.
func instance(i int) string { return fmt.Sprintf("fanout-%05d", i) }
