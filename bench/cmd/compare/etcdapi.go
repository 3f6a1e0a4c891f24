package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// etcdAPISection is the generated section of BENCHMARKS.md that holds
// configd through its etcd door against its references (issue 20).
const etcdAPISection = "etcd-api"

// etcdAPIWorkloads and etcdAPIPeers are what a run must cover for
// --write auto to rewrite the etcd-api section on its own.
var (
	etcdAPIWorkloads = []string{"writes", "reads", "fanout"}
	etcdAPIPeers     = []string{"configd", "etcd", etcdAPIPeer}
)

// etcdAPICommand is the shortest run that writes the etcd-api section.
var etcdAPICommand = "cd bench && go run ./cmd/compare --workload " + strings.Join(etcdAPIWorkloads, ",") + " --peer " + strings.Join(etcdAPIPeers, ",")

// etcdAPIRun tells whether a run of the workloads only and peers (the
// flags; empty for all) covers the etcd-api section's goals.
func etcdAPIRun(only, peers string) bool {
	covers := func(list string, need []string) bool {
		if list == "" {
			return true
		}
		var have []string
		for _, n := range strings.Split(list, ",") {
			have = append(have, strings.TrimSpace(n))
		}
		for _, n := range need {
			if !slices.Contains(have, n) {
				return false
			}
		}
		return true
	}
	return covers(only, etcdAPIWorkloads) && covers(peers, etcdAPIPeers)
}

// etcdAPIGoal is one figure of configd through its etcd door set against
// the same figure of a reference: issue 20's speed goals, and a few
// figures shown for information (limit 0).
type etcdAPIGoal struct {
	workload     string
	ours, ref    string // peer labels of the results
	metric       string
	header       string
	higherBetter bool
	// limit is what ours ÷ ref must reach: at least limit when higher is
	// better, at most limit otherwise; 0 for no goal.
	limit float64
}

// etcdAPIGoals: reads and fan-out at least as fast as etcd (each read
// mode against the same mode); writes within 1.2× of configd's own gRPC
// Put, the door of its own shaped like etcd's (every writer on one gRPC
// connection).
var etcdAPIGoals = []etcdAPIGoal{
	{"writes", etcdAPIPeer, "configd grpc", "ops/s", "writes/s", true, 1 / 1.2},
	{"writes", etcdAPIPeer, "configd grpc", "p99 ms", "p99 ms", false, 1.2},
	{"writes", etcdAPIPeer, "etcd", "ops/s", "writes/s", true, 0},
	{"reads", etcdAPIPeer + " serializable", "etcd serializable", "ops/s", "reads/s", true, 1},
	{"reads", etcdAPIPeer + " linearizable", "etcd linearizable", "ops/s", "reads/s", true, 1},
	{"reads", etcdAPIPeer + " serializable", "etcd serializable", "p99 ms", "p99 ms", false, 0},
	{"fanout", etcdAPIPeer, "etcd", "p99 ms", "p99 ms", false, 1},
	{"fanout", etcdAPIPeer, "etcd", "send p99 ms", "p99 from the write's send, ms", false, 1},
	{"fanout", etcdAPIPeer, "etcd", "KiB/watcher", "server RSS KiB/watcher", false, 0},
	{"churn", etcdAPIPeer, "etcd", "lag p99 ms", "lag p99 ms", false, 0},
	{"catchup", etcdAPIPeer, "etcd", "catchup ms", "catch-up ms", false, 0},
}

func (g etcdAPIGoal) goal() string {
	switch {
	case g.limit == 0:
		return "–"
	case g.higherBetter && g.limit < 1:
		return fmt.Sprintf("≥ %s (within %s×)", num(g.limit), num(1/g.limit))
	case g.higherBetter:
		return "≥ " + num(g.limit)
	}
	return "≤ " + num(g.limit)
}

// met says whether ratio reaches the goal: "yes", "**no**", or "–" when
// there is no goal or no ratio.
func (g etcdAPIGoal) met(ratio float64) string {
	if g.limit == 0 || math.IsNaN(ratio) {
		return "–"
	}
	if g.higherBetter && ratio >= g.limit || !g.higherBetter && ratio <= g.limit {
		return "yes"
	}
	return "**no**"
}

// etcdAPIReport renders the etcd-api section from the run's results: one
// row per goal and case that both peers ran. With write, it copies the
// profiles of configd-etcdapi it quotes to chartDir.
func etcdAPIReport(results []result, cfg *cfgT, env *envT, only, peers, chartDir string, write bool) string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("## configd through the etcd API (issue 20)\n\n")
	run := "cd bench && go run ./cmd/compare"
	if only != "" {
		run += " --workload " + only
	}
	if peers != "" {
		run += " --peer " + peers
	}
	w("_Written by `%s` (%s) on %s; a full `make bench` writes it too, and `%s` rewrites this section alone. The harness rewrites it, do not edit it by hand._\n\n",
		run, time.Duration(env.took).Round(time.Second), env.Date, etcdAPICommand)
	w("%s", machineLine(env, cfg))
	w("**Servers:** %s. %s is a configd of its own (the same binary as the configd peer's, on a fresh data directory) driven through etcd's Go client on configd's port, "+
		"with the very client code that drives etcd (one `clientv3` client for the writers, one for the readers, one per watcher): "+
		"the workloads, their cases and their methods are the side-by-side section's. "+
		"**Ratio** is %s ÷ the reference, of the medians; **goal** is issue 20's: reads and fan-out at least as fast as etcd, writes within 1.2× of configd's own API "+
		"(its gRPC `Put`, every writer on one connection, as etcd's client sends them). Rows without a goal are for information.\n\n",
		serverList(env), etcdAPIPeer, etcdAPIPeer)
	w("| workload | case | figure | %s | reference | reference's | ratio | goal | met |\n|---|---|---|---|---|---|---|---|---|\n", etcdAPIPeer)
	rows := 0
	for _, g := range etcdAPIGoals {
		aggs := aggregate(results, g.workload)
		for _, a := range aggs {
			if a.peer != g.ours {
				continue
			}
			k := slices.IndexFunc(aggs, func(x *agg) bool { return x.caseName == a.caseName && x.peer == g.ref })
			if k < 0 {
				continue
			}
			ours, ref := median(a.values(g.metric)), median(aggs[k].values(g.metric))
			ratio := math.NaN()
			if ref != 0 && !math.IsNaN(ref) {
				ratio = ours / ref
			}
			cell := "–"
			if !math.IsNaN(ratio) {
				cell = num(ratio) + "×"
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", g.workload, a.caseName, g.header, num(ours), g.ref, num(ref), cell, g.goal(), g.met(ratio))
			rows++
		}
	}
	if rows == 0 {
		w("| – | this run had no figure of %s with its reference | | | | | | | |\n", etcdAPIPeer)
	}
	w("\n")
	w("%s", profileSection(chartDir, write, func(name string) bool { return strings.HasPrefix(name, etcdAPIPeer) }))
	return b.String()
}
