package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/configd/configd/bench/internal/machine"

	"google.golang.org/protobuf/proto"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/bench/internal/mdsection"
)

// section is the name of the generated section (mdsection) in BENCHMARKS.md and -out.
const section = "rpc"

const (
	// benchmarksHeading is the line of BENCHMARKS.md the markers go before, the first time.
	benchmarksHeading = `## The store and the HTTP API (issue "configd core")`
)

type envT struct {
	machine.Info
	commit, loadStart, loadEnd string
	took                       time.Duration
}

func describeMachine(rev string) *envT {
	e := &envT{Info: machine.Describe(), commit: rev, loadStart: machine.LoadAvg()}
	if e.commit != "" {
		return e
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		e.commit = strings.TrimSpace(string(out))
		// The benchmark builds the working tree: say so when sdk/go/micro differs from HEAD.
		if exec.Command("git", "diff", "--quiet", "HEAD", "--", "../sdk/go/micro").Run() != nil {
			e.commit += " with uncommitted changes in sdk/go/micro"
		}
	}
	return e
}

func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func collect[T any](rs []result, f func(result) T) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

type report struct {
	env            *envT
	req            *configdpb.ListResponse
	names          []string
	concs          []int
	rounds         int
	duration, warm time.Duration
	results        map[caseKey][]result
	// paired is the paired measurement of the wrappers' cost, per concurrency (none in a
	// partial run without micro tcp or the wrapped peers); sliceLen is its slices' length.
	paired   map[int][]turn
	sliceLen time.Duration
}

func (r *report) cps(peer string, conc int) float64 {
	return median(collect(r.results[caseKey{peer, conc}], func(x result) float64 { return x.callsPerSec }))
}

// cpu is the median CPU time per call (clients and server together).
func (r *report) cpu(peer string, conc int) time.Duration {
	return median(collect(r.results[caseKey{peer, conc}], func(x result) time.Duration { return x.cpuPerCall }))
}

func (r *report) p50(peer string, conc int) time.Duration {
	return median(collect(r.results[caseKey{peer, conc}], func(x result) time.Duration { return x.p50 }))
}

func (r *report) p99(peer string, conc int) time.Duration {
	return median(collect(r.results[caseKey{peer, conc}], func(x result) time.Duration { return x.p99 }))
}

// pairRange is the min–max over the rounds of a ÷ b's calls/s in the same round (the cases of
// one round run next to each other, so this ratio is less exposed to the load of the moment).
func (r *report) pairRange(a, b string, conc int) (lo, hi float64, ok bool) {
	xs := r.pairRatios(a, b, conc)
	if len(xs) == 0 {
		return 0, 0, false
	}
	return slices.Min(xs), slices.Max(xs), true
}

// pairMedian is the median over the rounds of a ÷ b's calls/s in the same round.
func (r *report) pairMedian(a, b string, conc int) float64 { return median(r.pairRatios(a, b, conc)) }

// pairRatios is a ÷ b's calls/s in each round both ran.
func (r *report) pairRatios(a, b string, conc int) []float64 {
	ra, rb := r.results[caseKey{a, conc}], r.results[caseKey{b, conc}]
	var xs []float64
	for i := range min(len(ra), len(rb)) {
		if rb[i].callsPerSec > 0 {
			xs = append(xs, ra[i].callsPerSec/rb[i].callsPerSec)
		}
	}
	return xs
}

func (r *report) has(peer string) bool { return slices.Contains(r.names, peer) }

func ms(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f", d.Seconds()*1e3)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f", d.Seconds()*1e3)
	}
	return fmt.Sprintf("%.2f", d.Seconds()*1e3)
}

func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// tables is the results, one table per concurrency.
func (r *report) tables() string {
	var b strings.Builder
	base := r.has(baselinePeer)
	for _, conc := range r.concs {
		fmt.Fprintf(&b, "\n**%d concurrent callers**\n\n", conc)
		b.WriteString("| peer | calls/s (min–max of the rounds) | p50 ms | p99 ms | CPU µs per call | calls/s ÷ grpc-go | p99 ÷ grpc-go | failed calls |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, n := range r.names {
			rs := r.results[caseKey{n, conc}]
			cs := collect(rs, func(x result) float64 { return x.callsPerSec })
			failed := 0
			for _, x := range rs {
				failed += x.errors
			}
			ratio, p99ratio := "", ""
			if base && n != baselinePeer {
				ratio = fmt.Sprintf("%.2f×", r.cps(n, conc)/r.cps(baselinePeer, conc))
				p99ratio = fmt.Sprintf("%.2f×", float64(r.p99(n, conc))/float64(r.p99(baselinePeer, conc)))
			}
			fmt.Fprintf(&b, "| %s | **%s** (%s–%s) | %s | %s | %.1f | %s | %s | %d |\n", n, thousands(r.cps(n, conc)),
				thousands(slices.Min(cs)), thousands(slices.Max(cs)), ms(r.p50(n, conc)), ms(r.p99(n, conc)),
				float64(r.cpu(n, conc))/float64(time.Microsecond), ratio, p99ratio, failed)
		}
	}
	return b.String()
}

func yes(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

// goals is the table of issue 6's goals against this run: the rows whose peers (and, for the
// first, 256 callers) it ran; empty when none.
func (r *report) goals() string {
	var b strings.Builder
	// 1. tcp ≥ 1.3× grpc-go's calls/s at 256 callers, p99 no worse.
	if r.has(peerTCP) && r.has(peerGRPCGo) && slices.Contains(r.concs, 256) {
		s, t, p := r.versus(peerTCP, peerGRPCGo, 256)
		fmt.Fprintf(&b, "| tcp transport ≥ 1.3× grpc-go's throughput at 256 callers, p99 no worse | %s | %s |\n", s, yes(t >= 1.3 && p <= 1))
	}
	// 2. grpc transport within 10% of grpc-go.
	if r.has(peerGRPC) && r.has(peerGRPCGo) {
		var parts []string
		ok := true
		for _, conc := range r.concs {
			s, t, p := r.versus(peerGRPC, peerGRPCGo, conc)
			ok = ok && t >= 0.9 && p <= 1.1
			parts = append(parts, fmt.Sprintf("%d callers: %s", conc, s))
		}
		fmt.Fprintf(&b, "| grpc transport within 10%% of grpc-go (throughput ≥ 0.90×, p99 ≤ 1.10×) | %s | %s |\n", strings.Join(parts, "; "), yes(ok))
	}
	// 3. every wrapper costs < 15% of throughput: with traces sampled as busy services run
	// them, and with every call traced. The machine's speed moves by ±25% over seconds, far
	// more than the cost, so the cost is taken from the paired measurement: the median over its
	// turns of the calls/s lost against micro tcp in the same turn, its slices next to each
	// other. Without it (a partial run), it is the median over the rounds of the same, per round.
	for _, w := range []struct{ peer, what string }{
		{peerSampled, fmt.Sprintf("every wrapper together (rate limit off) costs < 15%% of micro tcp's throughput, %g%% of calls traced (sampled by the wrapper: `wrapper.WithSampler`)", traceRatio*100)},
		{peerProvider, fmt.Sprintf("the same, %g%% of calls traced, sampled by the tracer provider (a span that does not record for each other call)", traceRatio*100)},
		{peerWrapped, "the same, every call traced"},
	} {
		if !r.has(peerTCP) || !r.has(w.peer) {
			continue
		}
		var parts []string
		ok := true
		for _, conc := range r.concs {
			s, cost := r.wrapperCost(w.peer, conc)
			ok = ok && cost < 0.15
			parts = append(parts, fmt.Sprintf("%d callers: %s", conc, s))
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", w.what, strings.Join(parts, "; "), yes(ok))
	}
	if b.Len() == 0 {
		return ""
	}
	return "| goal | this run | verdict |\n| --- | --- | --- |\n" + b.String()
}

// versus compares peer with base at conc callers, as goal rows show it, and returns the
// throughput and p99 ratios it is judged by: the medians over the paired measurement's turns
// of the ratios within a turn when there is one, else the ratios of the rounds' medians.
func (r *report) versus(peer, base string, conc int) (string, float64, float64) {
	t := r.cps(peer, conc) / r.cps(base, conc)
	p := float64(r.p99(peer, conc)) / float64(r.p99(base, conc))
	rounds := fmt.Sprintf("%.2f×", t)
	if lo, hi, ok := r.pairRange(peer, base, conc); ok {
		rounds += fmt.Sprintf(" (per round %.2f–%.2f×)", lo, hi)
	}
	rounds += fmt.Sprintf(", p99 %s ms vs %s ms (%.2f×)", ms(r.p99(peer, conc)), ms(r.p99(base, conc)), p)
	ts := r.paired[conc]
	cps := turnRatios(ts, peer, base, func(r result) float64 { return r.callsPerSec })
	p99s := turnRatios(ts, peer, base, func(r result) float64 { return float64(r.p99) })
	if len(cps) == 0 || len(p99s) == 0 {
		return rounds, t, p
	}
	t, p = median(cps), median(p99s)
	return fmt.Sprintf("**%.2f×** (interquartile range %.2f–%.2f×, %d turns), p99 **%.2f×** (%.2f–%.2f×); interleaved rounds: %s",
		t, quantile(cps, 0.25), quantile(cps, 0.75), len(cps), p, quantile(p99s, 0.25), quantile(p99s, 0.75), rounds), t, p
}

// wrapperCost is what peer's calls cost against micro tcp's with conc callers, as a goal row
// shows it, and the cost it is judged by: the paired measurement's when there is one, the
// interleaved rounds' otherwise.
func (r *report) wrapperCost(peer string, conc int) (string, float64) {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	rounds := "none"
	if lo, hi, ok := r.pairRange(peer, peerTCP, conc); ok {
		rounds = fmt.Sprintf("%.0f%% (per round %.0f–%.0f%%)", (1-r.pairMedian(peer, peerTCP, conc))*100, (1-hi)*100, (1-lo)*100)
	}
	ts := r.paired[conc]
	costs := turnCosts(ts, peer)
	if len(costs) == 0 {
		return fmt.Sprintf("%s, CPU per call %.1f µs vs %.1f µs", rounds, us(r.cpu(peer, conc)), us(r.cpu(peerTCP, conc))),
			1 - r.pairMedian(peer, peerTCP, conc)
	}
	cost := median(costs)
	return fmt.Sprintf("**%.1f%%** (interquartile range %.1f–%.1f%%, %d turns), CPU per call %.1f µs vs %.1f µs; interleaved rounds: %s",
		cost*100, quantile(costs, 0.25)*100, quantile(costs, 0.75)*100, len(costs), us(sliceCPU(ts, peer)), us(sliceCPU(ts, peerTCP)), rounds), cost
}

func (r *report) header(tool string) string {
	e := r.env
	return fmt.Sprintf("_Written by `%s` (%v) on %s at %s; the harness rewrites this section, do not edit it by hand._\n\n"+
		"**Machine:** %d cores (%s), %s, %s, %s. Load average %s at the start and %s at the end%s.\n",
		tool, e.took, e.Date, e.commit, e.Cores, e.CPU, e.Mem, e.Kernel, runtime.Version(), e.loadStart, e.loadEnd, busy(e))
}

// busy flags a run that started with the cores already in use (the run itself keeps both
// cores busy, so the figure at the end says little about other work).
func busy(e *envT) string {
	if machine.Load1(e.loadStart) > 0.5 {
		return ": **other work shared these cores during the run**, so single figures are noisy"
	}
	return ""
}

func (r *report) method() string {
	return fmt.Sprintf("**Method:** one echo call over loopback, client and server in one process on the same cores: each case runs in a fresh process of the harness, so no other peer's connections, goroutines or garbage are in its way. "+
		"The request is a `configd.v1.ListResponse` of four keys with JSON values, %d bytes protobuf-encoded, the same message for every peer; "+
		"the handler answers with the request's fields. Each caller calls in a closed loop, each call cut at %v (a failed call is counted, not timed). "+
		"Each case (peer × callers) runs %v after %v of warm-up; the cases run interleaved in %d rounds (the order of the peers rotating each round), "+
		"and each figure is the median of the rounds. Ratios are peer ÷ grpc-go of the medians: above 1 is better for calls/s, worse for p99. "+
		"CPU µs per call is the CPU time of the case's process (clients and server) in the measured part divided by the calls made.%s\n\n"+
		"- **micro tcp**: `sdk/go/micro` server and client, tcp transport (calls multiplexed over two shared connections per address, frames of concurrent calls coalesced into one `write`; up to %d pooled sockets), protobuf codec.\n"+
		"- **micro grpc**: the same on the grpc transport (one HTTP/2 connection, a stream per pooled socket).\n"+
		"- **micro tcp + wrappers**: micro tcp with every built-in wrapper: client metrics → rate limit → breaker → tracing, server metrics → rate limit → tracing; "+
		"Prometheus collectors on their own registry; tracing on an OpenTelemetry SDK `TracerProvider` (always sample) with a span processor that drops the spans "+
		"(every span is recorded and ended, none exported); rate limits off, as the issue measures them (the limiters in the chain at an infinite rate, which passes every call at no cost). Retry is not in the chain.\n"+
		"- **micro tcp + wrappers, 1%% traced**: the same wrappers, sampling as OpenTelemetry recommends for busy services, "+
		"`ParentBased(TraceIDRatioBased(0.01))`, given to the Tracing wrapper (`wrapper.WithSampler`; the tracer provider keeps what it is given): "+
		"1%% of the calls start a recorded trace, the server follows the caller's decision, and the other calls start no span; "+
		"every call still carries a `traceparent` with trace and span IDs and is counted by the metrics.\n"+
		"- **micro tcp + wrappers, 1%% traced by the provider**: the same sampler on the tracer provider instead of the wrapper, "+
		"so every other call starts a span that does not record, on both sides.\n"+
		"- **grpc-go**: plain `google.golang.org/grpc`, default settings, one `ClientConn`, a unary method.\n"+
		"- **go-micro v4**: `go-micro.dev/v4` v4.11.0, its rpc server and client with default settings except a memory registry and broker, "+
		"`application/protobuf`, a pool of %d, no retries (its http transport: an HTTP/1.1 request per call; "+
		"the server's sockets mended to read the request ID under the name the server looks up, without which one call in about 3,000 is never answered).\n",
		proto.Size(r.req), callTimeout, r.duration, r.warm, r.rounds, r.pairedMethod(), slices.Max(r.concs), slices.Max(r.concs))
}

// pairedMethod is the method of the paired measurement, a sentence or two; empty without one.
func (r *report) pairedMethod() string {
	n := 0
	for _, ts := range r.paired {
		n = max(n, len(ts))
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" The goals are judged apart, in pairs, because this machine's speed drifts by up to ±25%% over seconds, more than some of the differences measured: "+
		"micro tcp, micro grpc, grpc-go and the wrapped peers run in their own processes, kept alive throughout, and take turns in %v slices, never two at once "+
		"(after one %v slice of warm-up each; %d turns per number of callers, the order rotating each turn). "+
		"Each goal's ratio is the median over the turns of the ratio within a turn (calls/s, p99; a wrapper's cost is 1 − wrapped ÷ micro tcp calls/s), "+
		"shown with the interquartile range of the per-turn ratios; the figures of the interleaved rounds follow. Micro tcp paired this way with an unwrapped copy of itself gave 0%% ± 2%%. "+
		"its CPU per call is the median over the slices.", r.sliceLen, r.warm, n)
}

const docTool = "cd bench && go run ./cmd/rpc"

// body is the generated part of the report.
func (r *report) body(level string) string {
	var b strings.Builder
	b.WriteString(r.header(docTool) + "\n")
	b.WriteString(r.method() + "\n")
	if g := r.goals(); g != "" {
		fmt.Fprintf(&b, "%s Issue 6's goals\n\n%s\n", level, g)
	}
	fmt.Fprintf(&b, "%s Results\n%s", level, r.tables())
	return b.String()
}

const docTitle = "# RPC benchmark: sdk/go/micro against gRPC-go and go-micro v4 (issue 6)\n\n"

// writeDoc rewrites the generated section of path, or the whole file when it has none. What
// follows the section (notes written by hand) is kept.
func (r *report) writeDoc(path string) error {
	body := r.body("##") + "\n"
	if err := mdsection.Rewrite(path, section, body, ""); err == nil {
		return nil
	} else if !os.IsNotExist(err) && !errors.Is(err, mdsection.ErrNoSection) {
		return err
	}
	begin, end := mdsection.Markers(section)
	doc := docTitle + begin + "\n" + body + end + "\n"
	return os.WriteFile(path, []byte(doc), 0o644)
}

// profileNotes is what follows the generated section of the report at path.
func profileNotes(path string) string { return mdsection.After(path, section) }

// section is the BENCHMARKS.md section: the generated part and the report's notes.
func (r *report) benchmarksSection(notes string) string {
	var b strings.Builder
	b.WriteString("## The RPC core against gRPC-go and go-micro v4 (issue 6)\n\n")
	b.WriteString(r.body("###"))
	if notes != "" {
		// Demote the notes' headings one level under this section's.
		notes = strings.ReplaceAll("\n"+notes, "\n## ", "\n### ")[1:]
		fmt.Fprintf(&b, "\n_From [docs/bench/rpc.md](docs/bench/rpc.md), below its generated section:_\n\n%s\n", notes)
	}
	b.WriteString("\n")
	return b.String()
}
