package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/configd/configd/bench/internal/machine"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// section is the name of the generated section (mdsection) of BENCHMARKS.md.
const section = "side-by-side"

type envT struct {
	machine.Info
	loadStart, loadEnd string
	took               time.Duration
	versions           map[string]string
}

func describeMachine() *envT {
	return &envT{Info: machine.Describe(), loadStart: machine.LoadAvg()}
}

// column is one figure of a workload's table.
type column struct {
	metric, header string
	ratio          bool // also show peer ÷ configd
	spread         bool // show min–max of the runs
}

var tables = map[string][]column{
	"writes":  {{"ops/s", "writes/s", true, true}, {"p50 ms", "p50 ms", false, false}, {"p99 ms", "p99 ms", true, false}, {"cpu us/write", "server CPU µs/write", true, false}, {"errors", "errors", false, false}},
	"reads":   {{"ops/s", "reads/s", true, true}, {"p50 ms", "p50 ms", false, false}, {"p99 ms", "p99 ms", true, false}, {"errors", "errors", false, false}},
	"fanout":  {{"p50 ms", "p50 ms", false, false}, {"p99 ms", "p99 ms", true, true}, {"max ms", "max ms", false, false}, {"send p99 ms", "p99 from the write's send, ms", true, false}, {"KiB/watcher", "server RSS KiB/watcher", true, false}, {"missed", "missed", false, false}},
	"catchup": {{"catchup ms", "catch-up ms", true, true}, {"received", "changes received", false, false}, {"received %", "received %", false, false}, {"wait ms", "client's reconnect wait ms", false, false}},
	"churn":   {{"writes/s", "writes/s", false, false}, {"lag p50 ms", "lag p50 ms", false, false}, {"lag p99 ms", "lag p99 ms", true, true}, {"missed", "missed updates", false, false}, {"missed %", "missed %", false, false}},
}

var methods = map[string]string{
	"writes": "Each writer sends a 200-byte value to a new key and waits for the acknowledgement, in a closed loop, for %s per run. " +
		"configd: `PUT /v1/kv/{key}` over HTTP/1.1 keep-alive (one connection per writer), answered once its record, with its audit hash, is fdatasync'd to the journal (SQLite takes it within 250 ms); " +
		"configd grpc: the gRPC API's `Put`, every writer on one gRPC connection (as etcd's clients), answered after the same sync; " +
		"etcd: `Put` through one `clientv3` client (one gRPC connection, as etcd is used), answered after the WAL fsync; " +
		"Consul: `PUT /v1/kv/{key}` over HTTP keep-alive, answered after the raft commit. " +
		"Server CPU µs/write is the server process's user and system CPU time over the run (`/proc/PID/stat`) divided by its writes: " +
		"the clients run in the harness and share the two cores, so at 64 writers this, more than the disk, sets the rate.",
	"reads": "64 readers in a closed loop for %s per run, of one hot key or of a random key among 10,000 (written once before the first run). " +
		"configd: `GET /v1/kv/{key}` (JSON); etcd: `Get` through one client, serializable (`WithSerializable`) and linearizable (the default); " +
		"Consul: `GET /v1/kv/{key}` (JSON), default consistency and `?stale`.",
	"fanout": "N clients, each on its own connection, watch one key; then 5 writes, one at a time, each waiting until every client is told. " +
		"Latency is from the write's acknowledgement (the writer's HTTP or gRPC answer) to each client's notification (0 when the notification came first, which is common for etcd and Consul at small N); the column \"from the write's send\" also counts the write's own commit. " +
		"configd: an SDK client (`config.New` with the key's parent as prefix, `Watch`, `NextUpdate`); etcd: one `clientv3` client per watcher, `Watch`; " +
		"Consul: a blocking query loop (`?index=`) per client with its own `http.Transport`. " +
		"Memory is the server's resident set after opening the watchers minus before, divided by N.",
	"catchup": "One client watches a prefix through a TCP proxy in the harness; the proxy cuts it off; 10,000 changes (10 to each of 1,000 keys, 16 writers) are written; the proxy lets it back. " +
		"Catch-up is from the client's first new connection (its reconnect backoff is not counted; that wait is the last column) to its having seen the last value of every key. " +
		"configd: SDK client with the prefix, which resumes from the revision it had; etcd: `Watch` with `WithPrefix`, which the client resumes from its last revision (nothing is compacted here); " +
		"Consul: blocking query with `?recurse`, which only sees the current values.",
	"churn": "%s clients watch prefixes (10 prefixes of 100 keys, so each write concerns a tenth of the clients) while %s of writes at 100 writes/s go to random keys among the 1,000. " +
		"Lag is from each write's acknowledgement to each concerned client's notification of that very value; a missed update is a value a concerned client never saw (counted after up to 10 s of drain). " +
		"configd: SDK client with the prefix, `Watch()`; etcd: `Watch` with `WithPrefix`; Consul: blocking query with `?recurse`, reporting the keys whose `ModifyIndex` moved " +
		"(Consul answers with the prefix's current state, so changes between two answers merge: that is the missed count).",
}

type agg struct {
	caseName, peer string
	runs           []result
}

// aggregate groups the results of workload by case and peer: the rows
// grouped by case, in the order the cases ran, peers in the order they ran.
func aggregate(results []result, workload string) []*agg {
	var aggs []*agg
	for _, r := range results {
		if r.Workload != workload {
			continue
		}
		i := slices.IndexFunc(aggs, func(a *agg) bool { return a.caseName == r.Case && a.peer == r.Peer })
		if i < 0 {
			aggs = append(aggs, &agg{caseName: r.Case, peer: r.Peer})
			i = len(aggs) - 1
		}
		aggs[i].runs = append(aggs[i].runs, r)
	}
	var caseOrder []string
	for _, a := range aggs {
		if !slices.Contains(caseOrder, a.caseName) {
			caseOrder = append(caseOrder, a.caseName)
		}
	}
	slices.SortStableFunc(aggs, func(x, y *agg) int {
		return slices.Index(caseOrder, x.caseName) - slices.Index(caseOrder, y.caseName)
	})
	return aggs
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (a *agg) values(metric string) []float64 {
	var v []float64
	for _, r := range a.runs {
		if r.Err == "" {
			v = append(v, r.Metrics[metric])
		}
	}
	return v
}

func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "–"
	case x == 0:
		return "0"
	case math.Abs(x) >= 1000:
		return thousands(x)
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	case math.Abs(x) >= 1:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.3f", x)
}

func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", math.Round(x))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// report renders the section (and writes the charts when write is set).
func report(results []result, cfg *cfgT, env *envT, chartDir string, write bool, sdkRead string) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("## Side by side: configd, etcd and Consul (issue 8)\n\n")
	w("_Written by `make bench` (`cd bench && go run ./cmd/compare`, %s) on %s; the harness rewrites this section, do not edit it by hand._\n\n",
		time.Duration(env.took).Round(time.Second), env.Date)
	w("%s", machineLine(env, cfg))
	w("**Servers:** %s, each a single node on loopback with a temporary data directory, started once for the writes and reads and afresh for each fan-out, churn and catch-up run (so that its memory figure and state are that run's own); "+
		"the clients run in the harness process, so clients and servers share the two cores. "+
		"**Ratios** are peer ÷ configd of the medians: for throughput below 1 means configd is faster; for latency and memory above 1 means configd is better.\n\n",
		serverList(env))

	for _, wl := range workloads {
		aggs := aggregate(results, wl.name)
		if len(aggs) == 0 {
			continue
		}
		w("### %s\n\n", wl.title)
		switch wl.name {
		case "writes", "reads":
			w(methods[wl.name]+"\n\n", cfg.duration)
		case "churn":
			w(methods[wl.name]+"\n\n", thousands(float64(cfg.churnWatchers)), cfg.churnTime)
		default:
			w("%s\n\n", methods[wl.name])
		}
		cols := tables[wl.name]
		w("| case | peer | runs |")
		for _, c := range cols {
			w(" %s |", c.header)
		}
		for _, c := range cols {
			if c.ratio {
				w(" %s ÷ configd |", c.header)
			}
		}
		w("\n|---|---|---|%s\n", strings.Repeat("---|", len(cols)+countRatios(cols)))
		for _, a := range aggs {
			var ref *agg
			if k := slices.IndexFunc(aggs, func(x *agg) bool { return x.caseName == a.caseName && x.peer == "configd" }); k >= 0 {
				ref = aggs[k]
			}
			ok := len(a.values(cols[0].metric))
			w("| %s | %s | %d", a.caseName, a.peer, ok)
			if ok < len(a.runs) {
				w(" (%d failed: %.80s)", len(a.runs)-ok, firstErr(a.runs))
			}
			w(" |")
			for _, c := range cols {
				v := a.values(c.metric)
				cell := num(median(v))
				if c.spread && len(v) > 1 {
					cell = fmt.Sprintf("**%s** (%s–%s)", cell, num(slices.Min(v)), num(slices.Max(v)))
				} else if c.spread {
					cell = "**" + cell + "**"
				}
				w(" %s |", cell)
			}
			for _, c := range cols {
				if !c.ratio {
					continue
				}
				if ref == nil || a.peer == "configd" {
					w(" |")
					continue
				}
				den := median(ref.values(c.metric))
				if den == 0 || math.IsNaN(den) {
					w(" – |")
					continue
				}
				w(" %s× |", num(median(a.values(c.metric))/den))
			}
			w("\n")
		}
		w("\n")
		if wl.name == "fanout" {
			for _, n := range cfg.watchers {
				name := fmt.Sprintf("fanout-%d.png", n)
				var of []*agg
				for _, a := range aggs {
					if a.caseName == plural(n, "watcher") {
						of = append(of, a)
					}
				}
				if write {
					if err := fanoutChart(filepath.Join(chartDir, name), of, n); err != nil {
						progress("chart: %v", err)
					}
				}
				w("![Fan-out latency distribution, %s watchers](docs/bench/%s)\n\n", thousands(float64(n)), name)
			}
			w("Each chart is the cumulative distribution of every notification's latency over all runs (log scale).\n\n")
		}
	}
	w("%s", sdkRead)
	w("%s", profileSection(chartDir, write, func(name string) bool { return !strings.HasPrefix(name, etcdAPIPeer) }))
	return b.String()
}

// machineLine is the report's paragraph on the machine and its load.
func machineLine(env *envT, cfg *cfgT) string {
	busy := "the machine had no other work to speak of"
	if machine.Load1(env.loadStart) >= 0.7 || machine.Load1(env.loadEnd) >= 0.7+float64(env.Cores) {
		busy = "**other work shared these cores during the run**, so single runs are noisy"
	}
	return fmt.Sprintf("**Machine:** %d cores (%s), %s, %s, %s. Load average %s at the start and %s at the end: "+
		"%s; each figure is the median of %d runs, run interleaved (%s).\n\n",
		env.Cores, env.CPU, env.Mem, env.Kernel, runtime.Version(), env.loadStart, env.loadEnd, busy, cfg.repeat, interleaving(env))
}

// interleaving shows the order the run's peers ran in: "configd, etcd,
// configd, …".
func interleaving(env *envT) string {
	var ran []string
	for _, n := range peerNames {
		if _, ok := env.versions[n]; ok {
			ran = append(ran, n)
		}
	}
	if len(ran) == 0 {
		return "…"
	}
	return strings.Join(ran, ", ") + ", " + ran[0] + ", …"
}

// serverList names the run's servers and their versions.
func serverList(env *envT) string {
	var vs []string
	for _, n := range peerNames {
		if v, ok := env.versions[n]; ok {
			vs = append(vs, fmt.Sprintf("%s (%s)", n, v))
		}
	}
	return strings.Join(vs, ", ")
}

func countRatios(cols []column) int {
	n := 0
	for _, c := range cols {
		if c.ratio {
			n++
		}
	}
	return n
}

func firstErr(rs []result) string {
	for _, r := range rs {
		if r.Err != "" {
			return strings.ReplaceAll(r.Err, "|", "/")
		}
	}
	return ""
}

var peerColors = map[string]color.Color{
	"configd":   color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"etcd":      color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"consul":    color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	etcdAPIPeer: color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// fanoutChart draws each peer's latency CDF on a log x axis.
func fanoutChart(path string, aggs []*agg, n int) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Fan-out: one write to %s watchers, write ack → notification", thousands(float64(n)))
	p.X.Label.Text = "latency (ms, log scale; 0.01 = told before the writer got its ack)"
	p.Y.Label.Text = "fraction of notifications"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Millimeter * 2
	p.Legend.YOffs = vg.Millimeter * 2
	const floor = 0.01 // ms: log scale, and a notification before the ack counts as 0
	maxX := floor
	for _, a := range aggs {
		var lat []time.Duration
		for _, r := range a.runs {
			lat = append(lat, r.Samples...)
		}
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		step := max(1, len(lat)/2000)
		var pts plotter.XYs
		for i := 0; i < len(lat); i += step {
			pts = append(pts, plotter.XY{X: max(floor, ms(lat[i])), Y: float64(i+1) / float64(len(lat))})
		}
		pts = append(pts, plotter.XY{X: max(floor, ms(lat[len(lat)-1])), Y: 1})
		maxX = max(maxX, ms(lat[len(lat)-1]))
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = peerColors[a.peer]
		l.Width = vg.Points(2)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (p99 %s ms)", a.peer, num(median(a.values("p99 ms")))), l)
	}
	p.Legend.ThumbnailWidth = vg.Centimeter
	p.X.Max = maxX * 40 // room on the right for the legend
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return p.Save(18*vg.Centimeter, 11*vg.Centimeter, path)
}
