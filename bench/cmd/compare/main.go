// Command compare runs the same workloads against configd, a real etcd and a
// real Consul server, all on loopback on this machine, and writes the
// side-by-side section of BENCHMARKS.md and the fan-out charts in
// docs/bench/ (issue 8). The peer configd-etcdapi is configd again, driven
// through etcd's Go client on its etcd door; the etcd-api section of
// BENCHMARKS.md sets it against etcd and configd's own API (issue 20).
//
//	cd bench && go run ./cmd/compare                 # everything (make bench)
//	go run ./cmd/compare --quick                     # a short smoke run; prints, writes nothing
//	go run ./cmd/compare --workload fanout --peer etcd
//	go run ./cmd/compare --workload writes,reads,fanout --peer configd,etcd,configd-etcdapi
//	                                                 # the etcd-api section alone
//
// Each workload runs against each peer in turn (configd, etcd, consul,
// configd, ...) --repeat times, and the report quotes the medians, because
// the machine is shared. The servers run in their own processes; the
// clients run in this one. Progress goes to stderr, the tables to stdout.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/configd/configd/bench/internal/machine"
	"github.com/configd/configd/bench/internal/mdsection"
)

type cfgT struct {
	repeat        int
	duration      time.Duration
	watchers      []int
	churnWatchers int
	churnTime     time.Duration
}

type workload struct {
	name, title string
	run         func(p peer, cfg *cfgT, rep int) []result
}

var workloads = []workload{
	{"writes", "Durable writes", runWrites},
	{"reads", "Reads", runReads},
	{"fanout", "Fan-out", runFanout},
	{"churn", "Churn", runChurn},
	{"catchup", "Catch-up", runCatchup},
}

// peerNames are the peers a run can take (--peer), in the order they run.
var peerNames = []string{"configd", "etcd", "consul", etcdAPIPeer}

var began = time.Now()

func progress(format string, args ...any) {
	el := time.Since(began).Round(time.Second)
	fmt.Fprintf(os.Stderr, "[%5s] %s\n", el, fmt.Sprintf(format, args...))
}

func main() {
	var cfg cfgT
	bin := flag.String("configd", "", "the configd binary to measure (default: build one from ../cmd/configd for this run)")
	only := flag.String("workload", "", "run only these workloads (comma-separated: writes, reads, fanout, churn, catchup, sdkread)")
	peersFlag := flag.String("peer", "", "run only against these peers (comma-separated: "+strings.Join(peerNames, ", ")+")")
	quick := flag.Bool("quick", false, "a short smoke run: 1 repeat, 1 s runs, 100 watchers, 2 s of churn")
	flag.IntVar(&cfg.repeat, "repeat", 3, "runs of each workload against each peer")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "length of each write or read run")
	watchersFlag := flag.String("watchers", "1000,10000", "fan-out watcher counts, comma-separated")
	flag.IntVar(&cfg.churnWatchers, "churn-watchers", 1000, "churn watchers")
	flag.DurationVar(&cfg.churnTime, "churn-time", 10*time.Second, "how long churn writes")
	write := flag.String("write", "auto", "rewrite BENCHMARKS.md and docs/bench: yes, no, or auto (only for a full run of every workload and peer, not --quick; "+
		"the etcd-api section alone also for a run of at least its workloads and peers, see etcdAPIRun)")
	mdPath := flag.String("benchmarks", "../BENCHMARKS.md", "the file whose side-by-side section to rewrite")
	chartDir := flag.String("charts", "../docs/bench", "where to write the PNG charts")
	flag.Parse()
	for _, f := range strings.Split(*watchersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fail(fmt.Errorf("bad --watchers %q", *watchersFlag))
		}
		cfg.watchers = append(cfg.watchers, n)
	}
	if *quick {
		cfg.repeat, cfg.duration, cfg.watchers, cfg.churnWatchers, cfg.churnTime = 1, time.Second, []int{100}, 100, 2*time.Second
	}
	full := *only == "" && *peersFlag == "" && !*quick
	doWrite := *write == "yes" || (*write == "auto" && full)
	doWriteEtcdAPI := *write == "yes" || (*write == "auto" && !*quick && etcdAPIRun(*only, *peersFlag))

	wls := workloads
	if *only != "" {
		wls = nil
		for _, n := range strings.Split(*only, ",") {
			if strings.TrimSpace(n) == "sdkread" {
				continue // not against a server: run after the others
			}
			i := slices.IndexFunc(workloads, func(w workload) bool { return w.name == strings.TrimSpace(n) })
			if i < 0 {
				fail(fmt.Errorf("unknown workload %q", n))
			}
			wls = append(wls, workloads[i])
		}
	}
	want := map[string]bool{}
	for _, n := range peerNames {
		want[n] = *peersFlag == ""
	}
	if *peersFlag != "" {
		for _, n := range strings.Split(*peersFlag, ",") {
			n = strings.TrimSpace(n)
			if _, ok := want[n]; !ok {
				fail(fmt.Errorf("unknown peer %q", n))
			}
			want[n] = true
		}
	}
	raiseFileLimit()

	env := describeMachine()
	var peers []peer
	stopAll := func() {
		for _, p := range peers {
			p.Stop()
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; progress("interrupted: stopping the servers"); stopAll(); os.Exit(130) }()
	var binPath, binVersion string
	if want["configd"] || want[etcdAPIPeer] {
		var err error
		if binPath, binVersion, err = buildConfigd(*bin, ".."); err != nil {
			fail(err)
		}
	}
	if want["configd"] {
		p, err := startConfigd(binPath, binVersion)
		if err != nil {
			stopAll()
			fail(err)
		}
		peers = append(peers, p)
	}
	if want["etcd"] {
		p, err := startEtcd()
		if err != nil {
			stopAll()
			fail(err)
		}
		peers = append(peers, p)
	}
	if want["consul"] {
		p, err := startConsul()
		if err != nil {
			stopAll()
			fail(err)
		}
		peers = append(peers, p)
	}
	if want[etcdAPIPeer] {
		p, err := startConfigdEtcd(binPath, binVersion)
		if err != nil {
			stopAll()
			fail(err)
		}
		peers = append(peers, p)
	}
	for _, p := range peers {
		progress("%s started: %s", p.Name(), p.Version())
	}

	var results []result
	step, steps := 0, len(wls)*cfg.repeat*len(peers)
	for _, w := range wls {
		for rep := range cfg.repeat {
			for _, p := range peers {
				step++
				progress("[%d/%d] %s · %s · run %d/%d", step, steps, w.name, p.Name(), rep+1, cfg.repeat)
				results = append(results, w.run(p, &cfg, rep)...)
			}
		}
	}
	env.loadEnd = machine.LoadAvg()
	env.took = time.Since(began)
	env.versions = map[string]string{}
	for _, p := range peers {
		env.versions[p.Name()] = p.Version()
	}
	stopAll()

	sdkRead := ""
	if *only == "" || strings.Contains(*only, "sdkread") {
		sdkRead = sdkReadSection()
	}
	rep := report(results, &cfg, env, *chartDir, doWrite, sdkRead)
	fmt.Print(rep)
	if doWrite {
		if err := mdsection.Rewrite(*mdPath, section, rep, ""); err != nil {
			fail(err)
		}
		progress("rewrote the side-by-side section of %s and the charts in %s", *mdPath, *chartDir)
	}
	if want[etcdAPIPeer] {
		etcdRep := etcdAPIReport(results, &cfg, env, *only, *peersFlag, *chartDir, doWriteEtcdAPI)
		fmt.Print(etcdRep)
		if doWriteEtcdAPI {
			if err := mdsection.Rewrite(*mdPath, etcdAPISection, etcdRep, "<!-- gateway:begin -->"); err != nil {
				fail(err)
			}
			progress("rewrote the %s section of %s", etcdAPISection, *mdPath)
		}
	}
	progress("done in %s", time.Since(began).Round(time.Second))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compare:", err)
	os.Exit(1)
}

// raiseFileLimit lifts this process's open-file limit (and so the
// servers', which inherit it) to the hard limit: each watcher is a socket.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
