package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/configd/configd/bench/internal/machine"
	"github.com/configd/configd/bench/internal/mdsection"
)

// section is the name of the generated section (mdsection) of BENCHMARKS.md and -out.
const section = "gateway"

const docTitle = "# Gateway benchmark: `micro api` against grpc-gateway and go-micro (issue 16)\n\n"

// report holds the medians of every stack's runs.
type report struct {
	machine  machine.Info
	rev      string
	stacks   []stack
	med      map[string]result
	runs     map[string][]result // by stack, round by round
	duration time.Duration
	conc     int
	rounds   int
}

func newReport(stacks []stack, runs map[string][]result, d time.Duration, conc, rounds int) *report {
	r := &report{machine: machine.Describe(), stacks: stacks, med: map[string]result{}, runs: runs, duration: d, conc: conc, rounds: rounds}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		r.rev = strings.TrimSpace(string(out))
	}
	for name, rs := range runs {
		r.med[name] = medianResult(rs)
	}
	return r
}

// tpsRatio is the median over the rounds of a's TPS over b's in the same round: the stacks of a
// round run minutes apart at most, so a ratio within a round is spared most of the drift of a
// shared machine's load, which medians of each stack over the rounds are not. ok is false when
// either has no run.
func (r *report) tpsRatio(a, b string) (ratio float64, ok bool) {
	ra, rb := r.runs[a], r.runs[b]
	var v []float64
	for i := range min(len(ra), len(rb)) {
		if rb[i].TPS > 0 {
			v = append(v, ra[i].TPS/rb[i].TPS)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	return v[len(v)/2], true
}

// medianResult is the median of each figure over the runs.
func medianResult(rs []result) result {
	d := func(f func(result) time.Duration) time.Duration {
		v := make([]time.Duration, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	tps := make([]float64, len(rs))
	for i, r := range rs {
		tps[i] = r.TPS
	}
	slices.Sort(tps)
	return result{
		Avg: d(func(r result) time.Duration { return r.Avg }), Median: d(func(r result) time.Duration { return r.Median }),
		Max: d(func(r result) time.Duration { return r.Max }), Min: d(func(r result) time.Duration { return r.Min }),
		P90: d(func(r result) time.Duration { return r.P90 }), P99: d(func(r result) time.Duration { return r.P99 }),
		TPS: tps[len(tps)/2],
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// body is the generated part of the report, its headings at level h.
func (r *report) body(h string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s Setup\n\n", h)
	fmt.Fprintf(&b, "`cd bench && go run ./cmd/gateway --rounds %d` at %s, %s: %s, %d cores, %s, %s. Each case: `hey -z %s -c %d -m POST -T application/json -d '%s'` on `%s` (a protobuf case: `-T application/protobuf -D FILE`, the same request as protobuf; the policy chain's: `-H 'Authorization: Bearer JWT'`), after a warm-up; the median of %d rounds, the stacks in turns; the TPS ratio is the median of each round's ratio (the machine is shared: its load drifts between rounds more than within one).\n\n",
		r.rounds,
		r.rev, r.machine.Date, r.machine.CPU, r.machine.Cores, r.machine.Mem, r.machine.Kernel, r.duration, r.conc, body, path, r.rounds)
	var tables []string
	for _, s := range r.stacks {
		if !slices.Contains(tables, s.Table) {
			tables = append(tables, s.Table)
		}
	}
	for _, t := range tables {
		fmt.Fprintf(&b, "%s %s\n\n", h, t)
		b.WriteString("| stack | avg (ms) | median (ms) | max (ms) | min (ms) | P90 (ms) | P99 (ms) | TPS | TPS ÷ " + baseline + " |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, s := range r.stacks {
			if s.Table != t {
				continue
			}
			m := r.med[s.Name]
			ratio := "–"
			if q, ok := r.tpsRatio(s.Name, baseline); ok {
				ratio = fmt.Sprintf("%.2f×", q)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.0f | %s |\n",
				s.Name, ms(m.Avg), ms(m.Median), ms(m.Max), ms(m.Min), ms(m.P90), ms(m.P99), m.TPS, ratio)
		}
		b.WriteString("\n")
		if n := tableNotes[t]; n != "" {
			b.WriteString(n + "\n")
		}
		if t == tablePolicy {
			b.WriteString(r.chainCost())
		}
	}
	return b.String()
}

// write rewrites the generated section of the report at out (the whole file when it has none)
// and the gateway section of benchmarks.
func (r *report) write(out, benchmarks string) error {
	body := r.body("##")
	if err := mdsection.Rewrite(out, section, body, ""); errors.Is(err, mdsection.ErrNoSection) || os.IsNotExist(err) {
		begin, end := mdsection.Markers(section)
		if err := os.WriteFile(out, []byte(docTitle+begin+"\n"+body+end+"\n"), 0o644); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if benchmarks == "" {
		return nil
	}
	sec := "## The gateway against grpc-gateway and go-micro (issue 16)\n\n" + r.body("###") +
		"_Notes and profiles: [docs/bench/gateway.md](docs/bench/gateway.md)._\n\n"
	rpcBegin, _ := mdsection.Markers("rpc") // before the RPC core's section, outside it
	return mdsection.Rewrite(benchmarks, section, sec, rpcBegin)
}

// chainCost compares the policy chain's row with the same stack without it (the goal: the
// chain costs < 15% of the TPS).
func (r *report) chainCost() string {
	q, ok := r.tpsRatio(stackPolicy, stackPolicyBare)
	if !ok {
		return ""
	}
	with, without := r.med[stackPolicy], r.med[stackPolicyBare]
	return fmt.Sprintf("The chain's cost against the `%s` row (the same stack without it): TPS %+.1f%% (the median of the rounds' ratios), p99 %+.3f ms (goal: < 15%%).\n\n",
		stackPolicyBare, 100*(q-1), float64(with.P99-without.P99)/float64(time.Millisecond))
}
