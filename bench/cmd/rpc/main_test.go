package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

func TestMessageSize(t *testing.T) {
	n := proto.Size(message())
	t.Logf("the request is %d bytes encoded", n)
	if n < 580 || n > 620 {
		t.Fatalf("the request is %d bytes encoded, want about 600", n)
	}
}

// TestQuick makes a few hundred checked calls (proto.Equal on each answer) on every peer.
func TestQuick(t *testing.T) {
	for _, name := range peerNames {
		t.Run(name, func(t *testing.T) {
			p, err := newPeer(name, peerOptions{pool: 16, strict: true})
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop()
			if err := quick(p, 300, 16); err != nil {
				t.Fatal(err)
			}
			var ws *wrapSet
			switch name {
			case peerWrapped:
				ws = wrapAll
				// Both sides traced every call.
				if n := ws.spansEnded.Load(); n != 600 {
					t.Errorf("%d spans ended, want 600 (a client and a server span per call)", n)
				}
			case peerSampled, peerProvider:
				ws = map[string]*wrapSet{peerSampled: wrapSampled, peerProvider: wrapProvider}[name]
				// About 1% of the calls traced, on both sides: a server span only for a sampled
				// client span, so the count is even. 300 calls at 1% trace 3 on average, more
				// than 20 with a probability below 1e-10.
				if n := ws.spansEnded.Load(); n%2 != 0 || n > 40 {
					t.Errorf("%d spans ended, want an even number up to 40 (1%% of 300 calls, both sides)", n)
				}
			default:
				return
			}
			mfs, err := ws.metrics.Gather()
			if err != nil {
				t.Fatal(err)
			}
			counted := map[string]float64{}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					if c := m.GetCounter(); c != nil {
						counted[mf.GetName()] += c.GetValue()
					}
				}
			}
			if counted["micro_client_requests_total"] != 300 || counted["micro_server_requests_total"] != 300 {
				t.Errorf("metrics counted %v, want 300 client and 300 server requests", counted)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.25, 7},
		{[]float64{7}, 0.75, 7},
		{[]float64{3, 1, 2}, 0.5, 2},
		{[]float64{3, 1, 2}, 0, 1},
		{[]float64{3, 1, 2}, 1, 3},
		{[]float64{4, 1, 3, 2}, 0.5, 2.5},
		{[]float64{4, 1, 3, 2}, 0.25, 1.75},
		{[]float64{4, 1, 3, 2}, 0.75, 3.25},
		{[]float64{10, 20, 30, 40, 50}, 0.25, 20},
		{[]float64{10, 20, 30, 40, 50}, 0.75, 40},
		{[]float64{-0.1, 0.2, 0.1, 0.15, 0.3, 0.05}, 0.5, 0.125},
	} {
		if got := quantile(c.xs, c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("quantile(%v, %v) = %v, want %v", c.xs, c.q, got, c.want)
		}
		if c.q == 0.5 && quantile(c.xs, c.q) != median(c.xs) {
			t.Errorf("quantile(%v, 0.5) = %v, median %v", c.xs, quantile(c.xs, c.q), median(c.xs))
		}
	}
}

func TestTurnCosts(t *testing.T) {
	cps := func(x float64) result { return result{callsPerSec: x, cpuPerCall: time.Duration(1e6 / x)} }
	ts := []turn{
		{peerTCP: cps(100), peerSampled: cps(90), peerWrapped: cps(80)},
		{peerTCP: cps(50), peerSampled: cps(50), peerWrapped: cps(60)}, // a slow turn, all three
		{peerTCP: cps(200), peerSampled: cps(150)},                     // peerWrapped failed
		{peerSampled: cps(100), peerWrapped: cps(100)},                 // micro tcp failed
		{peerTCP: {}, peerSampled: cps(100)},                           // no call completed
	}
	for _, c := range []struct {
		peer string
		want []float64
	}{
		{peerSampled, []float64{0.10, 0, 0.25}},
		{peerWrapped, []float64{0.20, -0.20}},
		{peerGRPC, nil},
	} {
		got := turnCosts(ts, c.peer)
		if len(got) != len(c.want) {
			t.Fatalf("%s: costs %v, want %v", c.peer, got, c.want)
		}
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-12 {
				t.Errorf("%s: costs %v, want %v", c.peer, got, c.want)
				break
			}
		}
	}
	if got, want := median(turnCosts(ts, peerSampled)), 0.10; math.Abs(got-want) > 1e-12 {
		t.Errorf("median cost %v, want %v", got, want)
	}
	// micro tcp's slices: 10 µs, 20 µs, 5 µs and zero per call; the median is between 5 and 10.
	if got, want := sliceCPU(ts, peerTCP), 7500*time.Nanosecond; got != want {
		t.Errorf("sliceCPU = %v, want %v", got, want)
	}
}

// TestServe drives a -serve child's loop in this process: a result per command, then EOF.
func TestServe(t *testing.T) {
	p, err := newPeer(peerTCP, peerOptions{pool: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	var out bytes.Buffer
	if err := serve(p, 8, strings.NewReader("run 50ms\n\nrun 50ms\n"), &out); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&out)
	n := 0
	for sc.Scan() {
		var cr caseResult
		if err := json.Unmarshal(sc.Bytes(), &cr); err != nil {
			t.Fatalf("line %d, %q: %v", n+1, sc.Text(), err)
		}
		if cr.CallsPerSec <= 0 || cr.CPUPerCall <= 0 || cr.FirstErr != "" {
			t.Errorf("line %d: %+v, want calls and no error", n+1, cr)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d results, want 2:\n%s", n, out.String())
	}
	if err := serve(p, 8, strings.NewReader("walk 50ms\n"), &out); err == nil {
		t.Error("serve accepted \"walk 50ms\"")
	}
}

// TestRunPairedChildFails checks that a child that exits at once fails the paired measurement
// with an error instead of hanging it.
func TestRunPairedChildFails(t *testing.T) {
	self, err := exec.LookPath("false")
	if err != nil {
		t.Skip(err)
	}
	ts, err := runPaired(self, []string{peerTCP, peerSampled}, 8, 8, 3, 50*time.Millisecond, 50*time.Millisecond, func(int, turn) {})
	if err == nil || len(ts) != 0 {
		t.Fatalf("runPaired with children that exit: %d turns, error %v; want none and an error", len(ts), err)
	}
	t.Log(err)
}

// TestVersusUsesTheTurns: a goal's ratios are the medians of the per-turn ratios when there
// are turns, the ratios of the rounds' medians otherwise.
func TestVersusUsesTheTurns(t *testing.T) {
	res := func(cps float64, p99 time.Duration) result { return result{callsPerSec: cps, p99: p99} }
	r := &report{concs: []int{256}, names: []string{peerTCP, peerGRPCGo}, results: map[caseKey][]result{
		{peerTCP, 256}:    {res(100, 4*time.Millisecond)},
		{peerGRPCGo, 256}: {res(100, 8*time.Millisecond)},
	}}
	if _, tr, p := r.versus(peerTCP, peerGRPCGo, 256); tr != 1 || p != 0.5 {
		t.Fatalf("from the rounds: throughput %v, p99 %v; want 1 and 0.5", tr, p)
	}
	r.paired = map[int][]turn{256: {
		{peerTCP: res(300, 2*time.Millisecond), peerGRPCGo: res(100, 4*time.Millisecond)}, // 3×, 0.5×
		{peerTCP: res(100, 3*time.Millisecond), peerGRPCGo: res(50, 3*time.Millisecond)},  // 2×, 1×
		{peerTCP: res(150, 1*time.Millisecond), peerGRPCGo: res(100, 4*time.Millisecond)}, // 1.5×, 0.25×
		{peerTCP: res(100, 1*time.Millisecond)},                                           // grpc-go failed
	}}
	s, tr, p := r.versus(peerTCP, peerGRPCGo, 256)
	if tr != 2 || p != 0.5 {
		t.Fatalf("from the turns: throughput %v, p99 %v; want 2 and 0.5", tr, p)
	}
	if !strings.Contains(s, "3 turns") || !strings.Contains(s, "interleaved rounds: 1.00×") {
		t.Fatalf("row %q: want the turns' figures, then the rounds'", s)
	}
}
