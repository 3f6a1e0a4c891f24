package main

// The paired measurement behind issue 6's goals. The machine's speed drifts by ±25% over
// seconds, more than some of the differences measured (a wrapper chain's 10–20%), so rounds of
// fresh processes, seconds apart, cannot resolve them. Instead micro tcp, the peers it is
// compared with (micro grpc, grpc-go) and the wrapped peers each run in one long-lived child
// (-serve) and take turns in short slices, one child running at a time, and each ratio is taken
// within a turn.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// replyTimeout is how much longer than its slice a -serve child may take to answer, and how
// long it may take to exit once its stdin is closed.
const replyTimeout = 30 * time.Second

// turn is one turn of the paired measurement: each peer's result for its slice of the turn.
type turn map[string]result

// pairedPeers is the peers of names the paired measurement runs, micro tcp first, or nil when
// names lacks micro tcp or every peer it is compared with.
func pairedPeers(names []string) []string {
	if !slices.Contains(names, peerTCP) {
		return nil
	}
	out := []string{peerTCP}
	for _, n := range []string{peerGRPC, peerGRPCGo, peerSampled, peerProvider, peerWrapped} {
		if slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

// serveChild is a -serve child's work: build the peer of PEER@CALLERS once, then serve the
// commands on stdin until EOF.
func serveChild(c string, pool int) error {
	p, conc, err := casePeer("serve", c, pool)
	if err != nil {
		return err
	}
	defer p.stop()
	return serve(p, conc, os.Stdin, os.Stdout)
}

// serve reads commands from in, one a line, until EOF. "run DURATION" calls p from conc
// callers for DURATION, all of it measured, and writes the result to out as one line of JSON
// (a caseResult, in a single Write). A slice in which no call completed is answered with zero
// calls/s and first_error, and serving goes on; a line that is not a command is an error.
// Between commands no caller runs.
func serve(p *peer, conc int, in io.Reader, out io.Writer) error {
	req := message()
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		arg, ok := strings.CutPrefix(line, "run ")
		d, err := time.ParseDuration(strings.TrimSpace(arg))
		if !ok || err != nil || d <= 0 {
			return fmt.Errorf("-serve: command %q: want \"run DURATION\"", line)
		}
		res, err := run(p, req, conc, 0, d, nil)
		cr := res.caseResult()
		if err != nil {
			cr.FirstErr = err.Error()
		}
		if err := enc.Encode(cr); err != nil {
			return fmt.Errorf("-serve: writing a result: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("-serve: reading commands: %w", err)
	}
	return nil
}

// servant is a running -serve child, seen from the parent.
type servant struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan string // the child's stdout, a line at a time; closed at its end
}

// startServant starts a -serve child for name with conc callers.
func startServant(self, name string, conc, pool int) (*servant, error) {
	cmd := exec.Command(self, "-serve", fmt.Sprintf("%s@%d", name, conc), "-pool", strconv.Itoa(pool))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: starting a -serve child: %w", name, err)
	}
	s := &servant{name: name, cmd: cmd, stdin: stdin, replies: make(chan string, 1)}
	go func() {
		defer close(s.replies)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.replies <- sc.Text()
		}
	}()
	return s, nil
}

// slice has the child run for d and returns its result; it fails when no call completed or
// the child does not answer within d plus replyTimeout.
func (s *servant) slice(d time.Duration) (result, error) {
	if _, err := fmt.Fprintf(s.stdin, "run %v\n", d); err != nil {
		return result{}, fmt.Errorf("%s: sending a command to the -serve child: %w", s.name, err)
	}
	t := time.NewTimer(d + replyTimeout)
	defer t.Stop()
	select {
	case line, ok := <-s.replies:
		if !ok {
			return result{}, fmt.Errorf("%s: the -serve child ended without answering", s.name)
		}
		var cr caseResult
		if err := json.Unmarshal([]byte(line), &cr); err != nil {
			return result{}, fmt.Errorf("%s: the -serve child's result %q: %w", s.name, line, err)
		}
		res := cr.result()
		if res.callsPerSec <= 0 {
			return res, fmt.Errorf("%s: no call completed in a %v slice: %s", s.name, d, cr.FirstErr)
		}
		return res, nil
	case <-t.C:
		return result{}, fmt.Errorf("%s: the -serve child did not answer within %v of a %v slice", s.name, replyTimeout, d)
	}
}

// close closes the child's stdin, which has it stop its peer and exit, and waits for it,
// killing it when it has not exited within replyTimeout.
func (s *servant) close() error {
	s.stdin.Close()
	drained := make(chan struct{})
	go func() {
		for range s.replies {
		}
		close(drained)
	}()
	t := time.NewTimer(replyTimeout)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		s.cmd.Process.Kill()
		<-drained
	}
	if err := s.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: the -serve child: %w", s.name, err)
	}
	return nil
}

// runPaired is the paired measurement with conc callers: a -serve child per peer, each warmed
// by one unmeasured slice of warm, then n turns; in each, every child runs one slice of d, one
// after the other, never two at once, the order rotating each turn. progress is called after
// each turn. On an error it returns the turns completed so far.
func runPaired(self string, peers []string, conc, pool, n int, warm, d time.Duration, progress func(i int, t turn)) (ts []turn, err error) {
	var ss []*servant
	defer func() {
		for _, s := range ss {
			err = errors.Join(err, s.close())
		}
	}()
	for _, name := range peers {
		s, err := startServant(self, name, conc, pool)
		if err != nil {
			return nil, err
		}
		ss = append(ss, s)
		if warm > 0 {
			if _, err := s.slice(warm); err != nil {
				return nil, fmt.Errorf("warming up: %w", err)
			}
		}
	}
	for i := range n {
		t := turn{}
		for _, s := range rotate(ss, i) {
			res, err := s.slice(d)
			if err != nil {
				return ts, fmt.Errorf("turn %d: %w", i+1, err)
			}
			t[s.name] = res
		}
		ts = append(ts, t)
		progress(i, t)
	}
	return ts, nil
}

// turnCosts is 1 − peer's calls/s ÷ micro tcp's in each turn of ts that has both.
func turnCosts(ts []turn, peer string) []float64 {
	r := turnRatios(ts, peer, peerTCP, func(r result) float64 { return r.callsPerSec })
	for i := range r {
		r[i] = 1 - r[i]
	}
	return r
}

// turnRatios is f(peer's result) ÷ f(base's) in each turn of ts that has both, with f(base's)
// above zero.
func turnRatios(ts []turn, peer, base string, f func(result) float64) []float64 {
	var out []float64
	for _, t := range ts {
		a, oka := t[peer]
		b, okb := t[base]
		if oka && okb && f(b) > 0 {
			out = append(out, f(a)/f(b))
		}
	}
	return out
}

// sliceCPU is the median CPU time per call of peer's slices in ts.
func sliceCPU(ts []turn, peer string) time.Duration {
	var xs []time.Duration
	for _, t := range ts {
		if r, ok := t[peer]; ok {
			xs = append(xs, r.cpuPerCall)
		}
	}
	return median(xs)
}

// quantile is the q-quantile (0 ≤ q ≤ 1) of xs, interpolated linearly between the closest
// ranks (R's type 7, numpy's default), so that quantile(xs, 0.5) is the median; 0 for no xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	h := q * float64(len(s)-1)
	i := int(h)
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[i] + (h-float64(i))*(s[i+1]-s[i])
}
