package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/bench/internal/daemon"
	"github.com/configd/configd/bench/internal/load"
	"github.com/configd/configd/internal/tcpproxy"
)

// result is one run of one case against one peer (or one read mode of it).
type result struct {
	Workload string
	Case     string // "16 writers", "hot key", "1,000 watchers"
	Peer     string // "etcd", "etcd linearizable"
	Metrics  map[string]float64
	// Samples are the run's latencies (fan-out), for the charts.
	Samples []time.Duration
	Err     string
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(sorted []time.Duration, p float64) time.Duration { return load.Pct(sorted, p) }

// value is a size-byte value that starts with tag.
func value(tag string, size int) []byte {
	b := bytes.Repeat([]byte("v"), size)
	copy(b, tag)
	return b
}

// closedLoop runs conc goroutines calling op until d passes and reports
// ops/s, p50 and p99.
func closedLoop(conc int, d time.Duration, op func(ctx context.Context, g, i int) error) map[string]float64 {
	r := load.ClosedLoop(conc, d, op)
	if r.FirstErr != nil {
		progress("  first error: %v", r.FirstErr)
	}
	return map[string]float64{
		"ops/s":  r.Rate,
		"p50 ms": ms(r.P50),
		"p99 ms": ms(r.P99),
		"errors": float64(r.Errors),
	}
}

// ---- 1. durable writes -----------------------------------------------------

var writerCounts = []int{1, 16, 64}

// runWrites measures each of the peer's write doors (WriteModes), labelled
// like the read modes ("configd grpc"); each door is profiled at the most writers.
func runWrites(p peer, cfg *cfgT, rep int) []result {
	var out []result
	for _, mode := range p.WriteModes() {
		label, keys := p.Name(), fmt.Sprintf("bench/w/r%d", rep)
		if mode != "" {
			label += " " + mode
			keys += "-" + mode // new keys, not the other door's
		}
		for _, n := range writerCounts {
			put, done := p.Writer(n, mode)
			val := value("", 200)
			wait := func() {}
			if n == writerCounts[len(writerCounts)-1] && rep == 0 {
				name, title := fmt.Sprintf("configd-writes-%d", n), fmt.Sprintf("Durable writes, %d writers", n)
				if mode != "" {
					name, title = fmt.Sprintf("configd-%s-writes-%d", mode, n), fmt.Sprintf("Durable writes through %s, %d writers", mode, n)
				}
				wait = profileConfigd(p, name, title, cfg.duration-time.Second/2)
			}
			cpu0, self0 := p.CPU(), selfCPU()
			m := closedLoop(n, cfg.duration, func(ctx context.Context, g, i int) error {
				return put(ctx, fmt.Sprintf("%s/c%d/g%d/k%d", keys, n, g, i), val)
			})
			if cpu := p.CPU() - cpu0; cpu > 0 && m["ops/s"] > 0 {
				m["cpu us/write"] = float64(cpu.Microseconds()) / (m["ops/s"] * cfg.duration.Seconds())
				m["client cpu us/write"] = float64((selfCPU() - self0).Microseconds()) / (m["ops/s"] * cfg.duration.Seconds())
			}
			done()
			wait()
			out = append(out, result{Workload: "writes", Case: plural(n, "writer"), Peer: label, Metrics: m})
			progress("  %-12s %2d writers: %6.0f writes/s  p50 %6.2f ms  p99 %6.2f ms  server CPU %4.0f µs/write, clients' %4.0f", label, n, m["ops/s"], m["p50 ms"], m["p99 ms"], m["cpu us/write"], m["client cpu us/write"])
		}
	}
	return out
}

// selfCPU is the CPU time the harness, which runs the clients, has used so far.
func selfCPU() time.Duration { t, _ := daemon.CPU(os.Getpid()); return t }

// ---- 2. reads ----------------------------------------------------------------

const readKeys = 10000
const readers = 64

var loaded = map[string]bool{}

// preload writes the hot key and 10,000 keys once per peer.
func preload(p peer) error {
	if loaded[p.Name()] {
		return nil
	}
	put, done := p.Writer(64, "")
	defer done()
	val := value("", 200)
	if err := put(context.Background(), "bench/r/hot", val); err != nil {
		return err
	}
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= readKeys {
					return
				}
				if err := put(context.Background(), "bench/r/k"+strconv.FormatInt(i, 10), val); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	loaded[p.Name()] = true
	return firstErr
}

func runReads(p peer, cfg *cfgT, _ int) []result {
	if err := preload(p); err != nil {
		return []result{{Workload: "reads", Case: "hot key", Peer: p.Name(), Err: err.Error()}}
	}
	var out []result
	for _, mode := range p.ReadModes() {
		label := p.Name()
		if mode != "" {
			label += " " + mode
		}
		for _, c := range []string{"hot key", "random of 10,000"} {
			get, done := p.Reader(readers, mode)
			m := closedLoop(readers, cfg.duration, func(ctx context.Context, g, i int) error {
				if c == "hot key" {
					return get(ctx, "bench/r/hot")
				}
				return get(ctx, "bench/r/k"+strconv.Itoa(rand.IntN(readKeys)))
			})
			done()
			out = append(out, result{Workload: "reads", Case: c, Peer: label, Metrics: m})
			progress("  %-22s %-16s: %7.0f reads/s  p50 %6.2f ms  p99 %6.2f ms", label, c, m["ops/s"], m["p50 ms"], m["p99 ms"])
		}
	}
	return out
}

// ---- 3. fan-out ----------------------------------------------------------------

// openWatchers opens n watchers, 32 at a time, calling fn(i, key, val).
func openWatchers(p peer, n int, key func(i int) string, prefix bool, fn func(i int, key string, val []byte)) (stop func(), err error) {
	stops := make([]func(), n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, 32)
	var opened atomic.Int64
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for i := range n {
		sem <- struct{}{}
		select {
		case <-tick.C:
			progress("    %d/%d watchers open", opened.Load(), n)
		default:
		}
		wg.Go(func() {
			defer func() { <-sem }()
			s, e := p.Watch(context.Background(), p.Addr(), key(i), prefix, func(k string, v []byte) { fn(i, k, v) })
			if e != nil {
				mu.Lock()
				err = e
				mu.Unlock()
				return
			}
			stops[i] = s
			opened.Add(1)
		})
	}
	wg.Wait()
	stop = func() {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for _, s := range stops {
			if s != nil {
				sem <- struct{}{}
				wg.Go(func() { s(); <-sem })
			}
		}
		wg.Wait()
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

const fanoutRounds = 5

// largestFanout is the largest watcher count of the run: its fan-out is
// profiled.
var largestFanout int

func runFanout(p peer, cfg *cfgT, rep int) []result {
	largestFanout = slices.Max(cfg.watchers)
	var out []result
	for _, n := range cfg.watchers {
		out = append(out, fanout(p, n, rep)...)
	}
	return out
}

func fanout(p peer, n, rep int) []result {
	name := plural(n, "watcher")
	fail := func(err error) []result {
		progress("  %s: %v", p.Name(), err)
		return []result{{Workload: "fanout", Case: name, Peer: p.Name(), Err: err.Error()}}
	}
	if err := p.Restart(); err != nil {
		return fail(err)
	}
	key := fmt.Sprintf("fanout/n%d/r%d/key", n, rep)
	put, done := p.Writer(1, "")
	defer done()
	if err := put(context.Background(), key, value("initial", 200)); err != nil {
		return fail(err)
	}
	runtime.GC()
	time.Sleep(500 * time.Millisecond)
	rss0 := p.RSS()

	got := make([][]atomic.Int64, fanoutRounds) // unix nanos of each watcher's notification
	remaining := make([]atomic.Int64, fanoutRounds)
	alldone := make([]chan struct{}, fanoutRounds)
	for r := range got {
		got[r] = make([]atomic.Int64, n)
		remaining[r].Store(int64(n))
		alldone[r] = make(chan struct{})
	}
	t0 := time.Now()
	stop, err := openWatchers(p, n, func(int) string { return key }, false, func(i int, _ string, v []byte) {
		if len(v) < 8 {
			return
		}
		r, err := strconv.Atoi(string(bytes.TrimRight(v[:8], "v")))
		if err != nil || r < 0 || r >= fanoutRounds {
			return // the initial value
		}
		if got[r][i].CompareAndSwap(0, time.Now().UnixNano()) && remaining[r].Add(-1) == 0 {
			close(alldone[r])
		}
	})
	if err != nil {
		return fail(err)
	}
	defer stop()
	opened := time.Since(t0)
	time.Sleep(time.Second)
	rss1 := p.RSS()

	var lat, fromSend []time.Duration
	missed := 0
	wait := func() {}
	if n == largestFanout && rep == 0 {
		wait = profileConfigd(p, fmt.Sprintf("configd-fanout-%d", n), fmt.Sprintf("Fan-out to %s watchers (the %d writes)", thousands(float64(n)), fanoutRounds), 2*time.Second)
	}
	defer wait()
	for r := range fanoutRounds {
		sent := time.Now()
		if err := put(context.Background(), key, value(strconv.Itoa(r), 200)); err != nil {
			return fail(err)
		}
		ack := time.Now()
		select {
		case <-alldone[r]:
		case <-time.After(30 * time.Second):
		}
		for i := range got[r] {
			t := got[r][i].Load()
			if t == 0 {
				missed++
				continue
			}
			lat = append(lat, max(0, time.Duration(t-ack.UnixNano())))
			fromSend = append(fromSend, time.Duration(t-sent.UnixNano()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	slices.Sort(lat)
	slices.Sort(fromSend)
	m := map[string]float64{
		"send p99 ms": ms(pct(fromSend, .99)),
		"p50 ms":      ms(pct(lat, .5)), "p99 ms": ms(pct(lat, .99)), "max ms": ms(pct(lat, 1)),
		"KiB/watcher": float64(rss1-rss0) / float64(n) / 1024,
		"missed":      float64(missed),
		"open s":      opened.Seconds(),
	}
	progress("  %-8s %d watchers (opened in %.1fs): p50 %.1f ms  p99 %.1f ms  max %.1f ms  %.1f KiB/watcher  missed %d",
		p.Name(), n, opened.Seconds(), m["p50 ms"], m["p99 ms"], m["max ms"], m["KiB/watcher"], missed)
	return []result{{Workload: "fanout", Case: name, Peer: p.Name(), Metrics: m, Samples: lat}}
}

// ---- 5. catch-up -------------------------------------------------------------

const (
	catchupChanges = 10000
	catchupKeys    = 1000
)

// runCatchup: one client watches a prefix through a proxy; the proxy cuts
// it off; 10,000 changes (10 to each of 1,000 keys) are written; the proxy
// lets it back. Time is from its first new connection to its having seen
// the last value of every key; received is how many of the 10,000 changes
// it was told of.
func runCatchup(p peer, cfg *cfgT, rep int) []result {
	caseName := fmt.Sprintf("%s changes to %s keys", thousands(catchupChanges), thousands(catchupKeys))
	fail := func(err error) []result {
		progress("  %s: %v", p.Name(), err)
		return []result{{Workload: "catchup", Case: caseName, Peer: p.Name(), Err: err.Error()}}
	}
	if err := p.Restart(); err != nil {
		return fail(err)
	}
	px, err := tcpproxy.New(p.Addr())
	if err != nil {
		return fail(err)
	}
	defer px.Close()
	prefix := fmt.Sprintf("catchup/r%d", rep)
	put, done := p.Writer(16, "")
	defer done()
	if err := put(context.Background(), prefix+"/ready", value("initial", 200)); err != nil {
		return fail(err)
	}
	var mu sync.Mutex
	seen := map[int]bool{}           // seqs seen
	last := make([]int, catchupKeys) // highest seq seen per key, +1
	remaining := catchupKeys
	finished := make(chan time.Time, 1)
	ready := make(chan struct{}, 1)
	stop, err := p.Watch(context.Background(), px.Addr(), prefix, true, func(key string, v []byte) {
		if strings.HasSuffix(key, "ready") {
			select {
			case ready <- struct{}{}:
			default:
			}
			return
		}
		if len(v) < 8 {
			return
		}
		s, err := strconv.Atoi(string(bytes.TrimRight(v[:8], "v")))
		if err != nil || s < 0 || s >= catchupChanges {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		seen[s] = true
		k := s % catchupKeys
		if s+1 > last[k] {
			if last[k] < catchupChanges-catchupKeys+1+k && s >= catchupChanges-catchupKeys {
				remaining--
				if remaining == 0 {
					finished <- time.Now()
				}
			}
			last[k] = s + 1
		}
	})
	if err != nil {
		return fail(err)
	}
	defer stop()
	// Make sure the watch works through the proxy before cutting it.
	if err := put(context.Background(), prefix+"/ready", value("ready", 200)); err != nil {
		return fail(err)
	}
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		return fail(fmt.Errorf("the watcher did not see a write through the proxy"))
	}
	px.Cut()
	var next atomic.Int64
	var werr atomic.Value
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				s := int(next.Add(1) - 1)
				if s >= catchupChanges {
					return
				}
				if err := put(context.Background(), fmt.Sprintf("%s/k%d", prefix, s%catchupKeys), value(fmt.Sprintf("%08d", s), 200)); err != nil {
					werr.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := werr.Load().(error); err != nil {
		return fail(err)
	}
	time.Sleep(500 * time.Millisecond)
	px.Restore()
	var doneAt time.Time
	select {
	case doneAt = <-finished:
	case <-time.After(60 * time.Second):
		return fail(fmt.Errorf("not caught up 60 s after the proxy let it back"))
	}
	time.Sleep(500 * time.Millisecond) // let stragglers in, for the count
	from := px.Reconnected()
	mu.Lock()
	got := len(seen)
	mu.Unlock()
	m := map[string]float64{
		"catchup ms": ms(doneAt.Sub(from)),
		"wait ms":    ms(from.Sub(px.RestoredAt())),
		"received":   float64(got),
		"received %": 100 * float64(got) / catchupChanges,
	}
	progress("  %-8s catch-up: %.0f ms after reconnecting (which took %.0f ms: client backoff), received %d of %d changes",
		p.Name(), m["catchup ms"], m["wait ms"], got, catchupChanges)
	return []result{{Workload: "catchup", Case: caseName, Peer: p.Name(), Metrics: m}}
}

// ---- 4. churn --------------------------------------------------------------------

const (
	churnPrefixes  = 10
	churnKeys      = 1000 // over all prefixes
	churnRate      = 100  // writes/s
	churnWriters   = 8    // so a slow write does not hold back the pace
	churnDrainTime = 10 * time.Second
)

func runChurn(p peer, cfg *cfgT, rep int) []result {
	n := cfg.churnWatchers
	caseName := fmt.Sprintf("%s, %d writes/s", plural(n, "watcher"), churnRate)
	fail := func(err error) []result {
		progress("  %s: %v", p.Name(), err)
		return []result{{Workload: "churn", Case: caseName, Peer: p.Name(), Err: err.Error()}}
	}
	if err := p.Restart(); err != nil {
		return fail(err)
	}
	prefix := func(j int) string { return fmt.Sprintf("churn/r%d/p%d", rep, j) }
	writes := int(cfg.churnTime.Seconds() * churnRate)
	// Write every key once first, so that the watchers start on a full keyspace.
	put, done := p.Writer(churnWriters, "")
	defer done()
	for k := range churnKeys {
		if err := put(context.Background(), fmt.Sprintf("%s/k%d", prefix(k%churnPrefixes), k), value("initial", 200)); err != nil {
			return fail(err)
		}
	}
	type seen struct {
		seq int
		at  int64
	}
	recv := make([][]seen, n) // each written by its watcher's goroutine only
	var delivered atomic.Int64
	stop, err := openWatchers(p, n, func(i int) string { return prefix(i % churnPrefixes) }, true, func(i int, _ string, v []byte) {
		if len(v) < 8 {
			return
		}
		s, err := strconv.Atoi(string(bytes.TrimRight(v[:8], "v")))
		if err != nil {
			return
		}
		recv[i] = append(recv[i], seen{s, time.Now().UnixNano()})
		delivered.Add(1)
	})
	if err != nil {
		return fail(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	acks := make([]int64, writes)
	keyOf := make([]int, writes)
	tickets := make(chan int)
	var wg sync.WaitGroup
	var werrs atomic.Int64
	for range churnWriters {
		wg.Go(func() {
			for s := range tickets {
				k := keyOf[s]
				if err := put(context.Background(), fmt.Sprintf("%s/k%d", prefix(k%churnPrefixes), k), value(fmt.Sprintf("%08d", s), 200)); err != nil {
					werrs.Add(1)
					continue
				}
				acks[s] = time.Now().UnixNano()
			}
		})
	}
	start := time.Now()
	for s := range writes {
		keyOf[s] = rand.IntN(churnKeys)
		time.Sleep(time.Until(start.Add(time.Duration(s) * time.Second / churnRate)))
		tickets <- s
	}
	close(tickets)
	wg.Wait()
	wrote := time.Since(start)
	expected := int64(0)
	for s := range writes {
		if acks[s] != 0 {
			expected += int64(n / churnPrefixes)
		}
	}
	deadline := time.Now().Add(churnDrainTime)
	for delivered.Load() < expected && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	stopped = true

	var lag []time.Duration
	missed := 0
	for i := range n {
		got := map[int]int64{}
		for _, s := range recv[i] {
			if _, dup := got[s.seq]; !dup {
				got[s.seq] = s.at
			}
		}
		for s := range writes {
			if acks[s] == 0 || keyOf[s]%churnPrefixes != i%churnPrefixes {
				continue
			}
			at, ok := got[s]
			if !ok {
				missed++
				continue
			}
			lag = append(lag, max(0, time.Duration(at-acks[s])))
		}
	}
	slices.Sort(lag)
	m := map[string]float64{
		"writes/s":   float64(writes-int(werrs.Load())) / wrote.Seconds(),
		"lag p50 ms": ms(pct(lag, .5)), "lag p99 ms": ms(pct(lag, .99)), "lag max ms": ms(pct(lag, 1)),
		"missed":   float64(missed),
		"missed %": 100 * float64(missed) / float64(max(1, expected)),
	}
	progress("  %-8s churn: %.0f writes/s, lag p50 %.1f ms p99 %.1f ms, missed %d of %d (%.1f%%)",
		p.Name(), m["writes/s"], m["lag p50 ms"], m["lag p99 ms"], missed, expected, m["missed %"])
	return []result{{Workload: "churn", Case: caseName, Peer: p.Name(), Metrics: m}}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return thousands(float64(n)) + " " + what + "s"
}
