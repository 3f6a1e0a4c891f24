// Command cluster measures configd's replicated mode (docs/ha.md) on one
// 3-member etcd cluster on this machine, beside bare etcd on the same
// cluster, in one run:
//
//   - durable writes: W writers spread over the configd replicas (HTTP
//     PUT, round robin) against W goroutines putting through one etcd
//     client (etcd's clients share one gRPC connection), interleaved runs,
//     the median ratio;
//
//   - fan-out: one write reaching N SDK watchers spread over the replicas
//     (p50, p99 from the write's acknowledgement);
//
//   - etcd's watchers (etcd_debugging_mvcc_watcher_total, summed over the
//     members) with 0, 100 and N SDK clients connected;
//
//   - fail-over: kill -9 of the replica a third of the watchers use, while
//     a writer on another replica writes the watched key every few
//     milliseconds: how long until each of those watchers has a write made
//     after the kill, how many acknowledged writes any watcher missed or
//     got twice, and how long writes on the survivors were refused.
//
//     make build && cd bench && go run ./cmd/cluster --configd ../bin/configd --watchers 3000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/bench/internal/daemon"
	"github.com/configd/configd/bench/internal/load"
	"github.com/configd/configd/bench/internal/machine"
	"github.com/configd/configd/bench/internal/servers"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/config"
)

type options struct {
	bin      string
	replicas int
	writers  int
	dur      time.Duration
	reps     int
	watchers int
	rounds   int
	extra    string
	pace     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.bin, "configd", "../bin/configd", "the configd binary to start (make build)")
	flag.IntVar(&o.replicas, "replicas", 3, "configd replicas")
	flag.IntVar(&o.writers, "writers", 64, "concurrent writers, for configd and for etcd")
	flag.DurationVar(&o.dur, "duration", 5*time.Second, "length of each write run")
	flag.IntVar(&o.reps, "reps", 3, "interleaved write runs of each (0: no write runs, only the watchers' measurements)")
	flag.IntVar(&o.watchers, "watchers", 3000, "SDK watchers spread over the replicas (at most ~19,000 in one process)")
	flag.IntVar(&o.rounds, "rounds", 5, "writes per fan-out measurement")
	flag.DurationVar(&o.pace, "failover-pace", 5*time.Millisecond, "pause between two writes of each writer during the fail-over")
	flag.StringVar(&o.extra, "configd-args", "", "more arguments for each replica, space-separated (e.g. --forward-writes=false)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

type cluster struct {
	etcd     []*servers.Server
	eps      []string
	replicas []*daemon.Daemon
}

func (c *cluster) stop() {
	for _, r := range c.replicas {
		if r != nil {
			r.Stop()
		}
	}
	for _, m := range c.etcd {
		m.Stop()
	}
}

func run(o options) error {
	m := machine.Describe()
	progress("starting a %d-member etcd cluster", 3)
	ms, err := servers.EtcdCluster(3)
	if err != nil {
		return err
	}
	c := &cluster{etcd: ms}
	defer c.stop()
	for _, m := range ms {
		c.eps = append(c.eps, "http://"+m.Addr)
	}
	for i := range o.replicas {
		progress("starting configd replica %d", i+1)
		args := append([]string{"--store", "etcd", "--etcd-endpoints", strings.Join(c.eps, ","), "--etcd-prefix", "/configd-bench",
			"--replica-name", fmt.Sprintf("r%d", i+1)}, strings.Fields(o.extra)...)
		d, err := daemon.Start(context.Background(), o.bin, args...)
		if err != nil {
			return fmt.Errorf("replica %d: %w", i+1, err)
		}
		c.replicas = append(c.replicas, d)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()

	fmt.Printf("%s, %d cores, %s, %s, load %s; etcd %s, 3 members; %d configd replicas\n\n",
		m.Date, m.Cores, m.CPU, m.Mem, machine.LoadAvg(), ms[0].Version, o.replicas)

	// Writes, interleaved.
	val := bytes.Repeat([]byte("v"), 200)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.writers, MaxConnsPerHost: o.writers}, Timeout: 30 * time.Second}
	// A short run of each first, not counted: connections, caches and
	// the writers' batches settle.
	progress("warming up")
	closedLoop(o.writers, 2*time.Second, func(ctx context.Context, g, i int) error {
		_, err := cli.Put(ctx, fmt.Sprintf("bench/warm/%d/%d", g, i%100), string(val))
		return err
	})
	closedLoop(o.writers, 2*time.Second, func(ctx context.Context, g, i int) error {
		_, err := put(ctx, hc, c.replicas[g%len(c.replicas)].Addr, fmt.Sprintf("bench/warm/%d/%d", g, i%100), val)
		return err
	})
	var cfgRuns, etcdRuns []float64
	for rep := range o.reps {
		progress("writes %d/%d: etcd", rep+1, o.reps)
		e := closedLoop(o.writers, o.dur, func(ctx context.Context, g, i int) error {
			_, err := cli.Put(ctx, fmt.Sprintf("bench/etcd/%d/%d", g, i%100), string(val))
			return err
		})
		progress("writes %d/%d: configd", rep+1, o.reps)
		cf := closedLoop(o.writers, o.dur, func(ctx context.Context, g, i int) error {
			r := c.replicas[g%len(c.replicas)]
			_, err := put(ctx, hc, r.Addr, fmt.Sprintf("bench/w/%d/%d", g, i%100), val)
			return err
		})
		etcdRuns, cfgRuns = append(etcdRuns, e.Rate), append(cfgRuns, cf.Rate)
		fmt.Printf("writes run %d: etcd %.0f/s (p99 %.1f ms, %d errors), configd %.0f/s (p99 %.1f ms, %d errors)\n",
			rep+1, e.Rate, ms1(e.P99), e.Errors, cf.Rate, ms1(cf.P99), cf.Errors)
	}
	if o.reps > 0 {
		fmt.Printf("\n| %d writers | median/s | ratio to etcd |\n|---|---|---|\n", o.writers)
		fmt.Printf("| bare etcd Put, one client | %.0f | 1.00× |\n", median(etcdRuns))
		fmt.Printf("| configd, over %d replicas | %.0f | %.2f× |\n\n", o.replicas, median(cfgRuns), median(cfgRuns)/median(etcdRuns))
	}

	if o.watchers == 0 {
		return nil
	}
	// etcd's watchers before any SDK client.
	w0, err := etcdWatchers(ms)
	if err != nil {
		return err
	}
	progress("opening 100 watchers")
	small, err := openWatchers(c, 100)
	if err != nil {
		return err
	}
	w100, _ := etcdWatchers(ms)
	small.close()
	progress("opening %d watchers", o.watchers)
	ws, err := openWatchers(c, o.watchers)
	if err != nil {
		return err
	}
	defer ws.close()
	wN, _ := etcdWatchers(ms)
	fmt.Printf("etcd watchers (all members): %d with no SDK client, %d with 100, %d with %d\n\n", w0, w100, wN, o.watchers)

	// Fan-out.
	var lat []time.Duration
	for r := range o.rounds {
		rev, err := put(context.Background(), hc, c.replicas[0].Addr, fanoutKey, []byte(fmt.Sprint("round-", r)))
		if err != nil {
			return err
		}
		ack := time.Now()
		got, err := ws.waitAll(rev, 60*time.Second)
		if err != nil {
			return fmt.Errorf("fan-out round %d: %w", r, err)
		}
		for _, t := range got {
			lat = append(lat, max(t.Sub(ack), 0))
		}
	}
	slices.Sort(lat)
	fmt.Printf("fan-out of one write to %d watchers over %d replicas, %d rounds: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n\n",
		o.watchers, o.replicas, o.rounds, ms1(pct(lat, .5)), ms1(pct(lat, .99)), ms1(lat[len(lat)-1]))

	return failover(c, hc, ws, o.pace)
}

// failover kills the first replica while a writer on the second writes the
// watched key, and reports how the watchers that used the first fared.
func failover(c *cluster, hc *http.Client, ws *watchers, pace time.Duration) error {
	if len(c.replicas) < 2 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu      sync.Mutex
		acked   []int64 // revisions of the writes acknowledged
		refused []time.Time
		reasons = map[string]int{} // why writes were refused, for the report
		took    []time.Duration    // how long each acknowledged write of the watched key took
		// firstAfter is the revision of the first write of the watched
		// key made (sent) after the kill and acknowledged: the probe's
		// (below), or the steady writer's.
		firstAfter int64
		killedAt   time.Time
		writers    sync.WaitGroup
	)
	// note records the outcome of a write sent at t0: an acknowledged
	// write of the watched key, or a refusal (of any key).
	note := func(t0 time.Time, rev int64, err error, watched bool) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && watched:
			acked = append(acked, rev)
			took = append(took, time.Since(t0))
			if !killedAt.IsZero() && t0.After(killedAt) && (firstAfter == 0 || rev < firstAfter) {
				firstAfter = rev
			}
		case err != nil && ctx.Err() == nil:
			refused = append(refused, time.Now())
			reasons[refusal(err)]++
		}
	}
	// A writer on each survivor: the second writes the watched key, the
	// others another key (their refusals count too).
	for i, r := range c.replicas[1:] {
		writers.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				key := fanoutKey
				if i > 0 {
					key = fmt.Sprintf("bench/other/%d", i)
				}
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				t0 := time.Now()
				rev, err := put(rctx, hc, r.Addr, key, []byte(fmt.Sprint("storm-", n)))
				rcancel()
				note(t0, rev, err, i == 0)
				time.Sleep(pace) // a steady write rate, not a storm that hides the fan-out
			}
		})
	}
	// Writes before the kill: at least half a second of them, and at least
	// three acknowledged, so that every watcher has a revision from before
	// the kill to resume from. Then the kill comes at a random moment of
	// the writers' cycle (up to half a second later), not just after an
	// acknowledgement: killing the writer as it is sent a write is the
	// worst moment, not the usual one.
	time.Sleep(500 * time.Millisecond)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(rand.N(500 * time.Millisecond))
	mu.Lock()
	killedAt = time.Now()
	ackedBefore := len(acked)
	mu.Unlock()
	if ackedBefore == 0 {
		cancel()
		writers.Wait()
		return fmt.Errorf("no write was acknowledged in 30 s before the kill (refused: %v)", reasons)
	}
	progress("kill -9 of replica 1")
	c.replicas[0].Stop() // SIGKILL
	c.replicas[0] = nil
	// A probe: one write of the watched key made right after the kill, on
	// a survivor, tried again until it is acknowledged as a client would.
	// The steady writer above may still be waiting for a write it sent
	// before the kill; the probe does not wait for it.
	writers.Go(func() {
		for ctx.Err() == nil {
			t0 := time.Now()
			rev, err := put(ctx, hc, c.replicas[1].Addr, fanoutKey, []byte("probe"))
			note(t0, rev, err, true)
			if err == nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	time.Sleep(5 * time.Second) // writes after it
	cancel()
	writers.Wait()

	// Every watcher must end up with every acknowledged revision, once each.
	last := acked[len(acked)-1]
	if _, err := ws.waitAll(last, 60*time.Second); err != nil {
		return fmt.Errorf("after the kill: %w", err)
	}
	if firstAfter == 0 {
		return fmt.Errorf("no write made after the kill was acknowledged (refused: %v)", reasons)
	}
	missed, twice, back := ws.check(acked, firstAfter, killedAt)
	slices.Sort(back)
	var window time.Duration
	if len(refused) > 0 {
		window = refused[len(refused)-1].Sub(killedAt)
	}
	fmt.Printf("kill -9 of a replica with %d watchers: %d writes acknowledged; back on another replica p50 %.0f ms, p99 %.0f ms, max %.0f ms; "+
		"missed %d, twice %d; writes on the survivors refused %d times (last %.0f ms after the kill)\n",
		len(back), len(acked), ms1(pct(back, .5)), ms1(pct(back, .99)), ms1(back[len(back)-1]), missed, twice, len(refused), ms1(window))
	slices.Sort(took)
	fmt.Printf("  a write of the watched key took p50 %.0f ms, max %.0f ms, from the request to its acknowledgement (it is part of \"back\")\n",
		ms1(pct(took, .5)), ms1(took[len(took)-1]))
	for _, r := range slices.Sorted(maps.Keys(reasons)) {
		fmt.Printf("  refused %d× with: %s\n", reasons[r], r)
	}
	return nil
}

// refusal is the part of a refused write's error that says why, without
// what differs from one write to the next (its key and value).
func refusal(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); strings.HasPrefix(s, "PUT ") && i > 0 {
		s = s[i+2:]
	}
	return s
}

const fanoutKey = "bench/fanout"

// watcher is one SDK client (its own connection) watching fanoutKey, with
// the revisions it received and when.
type watcher struct {
	client  *config.Client
	replica int
	mu      sync.Mutex
	revs    []int64
	times   []time.Time
	wake    chan struct{}
}

type watchers struct{ all []*watcher }

// openWatchers opens n SDK clients, client i on replica i mod R first, with
// the other replicas after it to fail over to.
func openWatchers(c *cluster, n int) (*watchers, error) {
	ws := &watchers{all: make([]*watcher, n)}
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var (
		failMu sync.Mutex
		failed error
	)
	fail := func(err error) {
		failMu.Lock()
		defer failMu.Unlock()
		if failed == nil {
			failed = err
		}
	}
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r := i % len(c.replicas)
			var addrs []string
			for k := range c.replicas {
				if d := c.replicas[(r+k)%len(c.replicas)]; d != nil {
					addrs = append(addrs, d.Addr)
				}
			}
			// Without delivery reports (the SDK's default since issue 19): this
			// measures the fan-out alone, and thousands of clients in one process
			// would each hold a second connection for them (BENCHMARKS.md).
			cl, err := config.New(context.Background(), config.WithAddress(addrs...), config.WithKeys(fanoutKey), config.WithTimeout(time.Minute),
				config.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), config.WithoutReports())
			if err != nil {
				fail(err)
				return
			}
			w, err := cl.Watch(fanoutKey)
			if err != nil {
				cl.Close()
				fail(err)
				return
			}
			wc := &watcher{client: cl, replica: r, wake: make(chan struct{}, 1)}
			go func() {
				for {
					u, err := w.NextUpdate()
					if err != nil {
						return
					}
					wc.mu.Lock()
					wc.revs, wc.times = append(wc.revs, u.Rev), append(wc.times, time.Now())
					wc.mu.Unlock()
					select {
					case wc.wake <- struct{}{}:
					default:
					}
				}
			}()
			ws.all[i] = wc
		})
	}
	wg.Wait()
	if err := failed; err != nil {
		ws.close()
		return nil, err
	}
	return ws, nil
}

func (ws *watchers) close() {
	for _, w := range ws.all {
		if w != nil {
			w.client.Close()
		}
	}
}

// waitAll waits until every watcher has received rev, and returns when each
// did.
func (ws *watchers) waitAll(rev int64, timeout time.Duration) ([]time.Time, error) {
	deadline := time.After(timeout)
	out := make([]time.Time, 0, len(ws.all))
	for i, w := range ws.all {
		for {
			w.mu.Lock()
			k := slices.Index(w.revs, rev)
			var t time.Time
			if k >= 0 {
				t = w.times[k]
			}
			w.mu.Unlock()
			if k >= 0 {
				out = append(out, t)
				break
			}
			select {
			case <-w.wake:
			case <-deadline:
				return nil, fmt.Errorf("watcher %d (replica %d) did not get rev %d within %s", i, w.replica+1, rev, timeout)
			}
		}
	}
	return out, nil
}

// check counts, over every watcher, the acknowledged revisions it missed
// and those it got twice, and returns for each watcher of the killed
// replica how long after killedAt it received the first write made after
// the kill (revision firstAfter), or a newer one.
func (ws *watchers) check(acked []int64, firstAfter int64, killedAt time.Time) (missed, twice int, back []time.Duration) {
	for _, w := range ws.all {
		w.mu.Lock()
		seen := map[int64]int{}
		for _, r := range w.revs {
			seen[r]++
		}
		for _, r := range acked { // every watcher was open before the first
			if seen[r] == 0 {
				missed++
			}
		}
		for _, n := range seen {
			if n > 1 {
				twice += n - 1
			}
		}
		if w.replica == 0 {
			for k, r := range w.revs {
				if r >= firstAfter {
					back = append(back, w.times[k].Sub(killedAt))
					break
				}
			}
		}
		w.mu.Unlock()
	}
	return missed, twice, back
}

// put writes key on the replica at addr and returns the revision.
func put(ctx context.Context, hc *http.Client, addr, key string, val []byte) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+addr+"/v1/kv/"+key, bytes.NewReader(val))
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("PUT %s: %s: %.200s", key, resp.Status, b)
	}
	var wr struct {
		Rev int64 `json:"rev"`
	}
	if err := json.Unmarshal(b, &wr); err != nil {
		return 0, fmt.Errorf("PUT %s: %w", key, err)
	}
	return wr.Rev, nil
}

// etcdWatchers sums etcd_debugging_mvcc_watcher_total over the members.
func etcdWatchers(ms []*servers.Server) (int, error) {
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.Addr)
	}
	return testserver.EtcdWatchers(context.Background(), addrs...)
}

// closedLoop runs conc goroutines calling op until d passes.
func closedLoop(conc int, d time.Duration, op func(ctx context.Context, g, i int) error) load.Result {
	r := load.ClosedLoop(conc, d, op)
	if r.FirstErr != nil {
		progress("  first error: %v", r.FirstErr)
	}
	return r
}

func pct(sorted []time.Duration, p float64) time.Duration { return load.Pct(sorted, p) }

func ms1(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
