package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// cpuProfile is a CPU profile of configd taken during one run, with the top
// of its cumulative table for the report.
type cpuProfile struct {
	name  string // file name without .pprof
	title string
	file  string // where it was saved
	top   string // go tool pprof -top -cum
}

var (
	profilesMu sync.Mutex
	profiles   []cpuProfile
)

// profiled is a peer that serves pprof profiles: configd, through either
// of its doors.
type profiled interface{ debugAddr() string }

// profileConfigd takes a CPU profile of configd for d in the background,
// when p is configd (through its own API or its etcd door); wait returns
// once it is saved. name and title are those of the configd peer's
// profile: another peer's are prefixed with its name. Profiling costs
// configd a few per cent during that run (the first of the repeats only).
func profileConfigd(p peer, name, title string, d time.Duration) (wait func()) {
	cp, ok := p.(profiled)
	if !ok || cp.debugAddr() == "" {
		return func() {}
	}
	if p.Name() != "configd" {
		name, title = strings.Replace(name, "configd", p.Name(), 1), p.Name()+": "+title
	}
	addr := cp.debugAddr()
	done := make(chan struct{})
	go func() {
		defer close(done)
		prof, err := fetchProfile(addr, d)
		if err != nil {
			progress("  profile %s: %v", name, err)
			return
		}
		profilesMu.Lock()
		profiles = append(profiles, prof.with(name, title))
		profilesMu.Unlock()
	}()
	return func() { <-done }
}

func fetchProfile(addr string, d time.Duration) (cpuProfile, error) {
	secs := max(1, int(d/time.Second))
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
	if err != nil {
		return cpuProfile{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return cpuProfile{}, fmt.Errorf("%s: %v", resp.Status, err)
	}
	f, err := os.CreateTemp("", "configd-*.pprof")
	if err != nil {
		return cpuProfile{}, err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return cpuProfile{}, err
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=22", f.Name()).Output()
	if err != nil {
		return cpuProfile{}, fmt.Errorf("go tool pprof: %w", err)
	}
	return cpuProfile{file: f.Name(), top: trimTop(string(out))}, nil
}

func (p cpuProfile) with(name, title string) cpuProfile { p.name, p.title = name, title; return p }

// trimTop keeps the summary line and the table of pprof -top.
func trimTop(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(l, "Duration:"), strings.HasPrefix(l, "      flat"), topRow.MatchString(l):
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

var topRow = regexp.MustCompile(`^\s+[\d.]+(s|ms|us|µs)?\s+[\d.]+%`)

// profileSection renders the profiles whose name keep accepts, copying
// them to dir when write.
func profileSection(dir string, write bool, keep func(name string) bool) string {
	profilesMu.Lock()
	defer profilesMu.Unlock()
	var ps []cpuProfile
	for _, p := range profiles {
		if keep(p.name) {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return ""
	}
	var b bytes.Buffer
	b.WriteString("### Where configd's CPU goes (pprof)\n\n")
	b.WriteString("CPU profiles of configd taken during the first run of each case below (`--debug-addr`; " +
		"`go tool pprof -top -cum` of the file in docs/bench/). What they say and what would change it is in the notes under this section.\n\n")
	for _, p := range ps {
		rel := "docs/bench/" + p.name + ".pprof"
		if write {
			if data, err := os.ReadFile(p.file); err == nil {
				_ = os.WriteFile(filepath.Join(dir, p.name+".pprof"), data, 0o644)
			}
		}
		fmt.Fprintf(&b, "**%s** ([%s](%s)):\n\n```\n%s\n```\n\n", p.title, p.name+".pprof", rel, p.top)
	}
	return b.String()
}

// sdkReadSection runs the SDK read-path benchmarks (workload 6: config.Get
// against koanf's and viper's in-memory Get) and renders their table.
func sdkReadSection() string {
	progress("SDK read path: go test -bench . ./sdkread")
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "3", "./sdkread")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("### SDK read path\n\n`go test -bench . ./sdkread` failed: %v\n\n", err)
	}
	rows := map[string][]string{}
	var order []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		if _, ok := rows[name]; !ok {
			order = append(order, name)
		}
		rows[name] = append(rows[name], fmt.Sprintf("%s ns, %s B, %s allocs", f[2], f[4], f[6]))
	}
	var b strings.Builder
	b.WriteString("### SDK read path\n\nIn-memory reads of one key in the same process, no network: configd's `config.Get(...)` (its local copy) against koanf's and viper's `Get` (`go test -run '^$' -bench . -benchmem -count 3 ./sdkread`; per op, three runs).\n\n")
	b.WriteString("| benchmark | run 1 | run 2 | run 3 |\n|---|---|---|---|\n")
	for _, n := range order {
		fmt.Fprintf(&b, "| %s | %s |\n", n, strings.Join(rows[n], " | "))
	}
	b.WriteString("\n")
	return b.String()
}
