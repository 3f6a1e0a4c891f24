// Package machine describes the machine a benchmark runs on, for its
// report: CPU, memory, kernel and load.
package machine

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Info is what a report says of the machine.
type Info struct {
	Date   string // UTC, to the minute
	CPU    string // model name
	Mem    string // e.g. "24 GiB"
	Kernel string // e.g. "Linux 6.1.0"
	Cores  int
}

// Describe reads Info from /proc.
func Describe() Info {
	e := Info{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%d", &kb)
		e.Mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return e
}

// LoadAvg returns the 1, 5 and 15 minute load averages, as /proc/loadavg
// gives them ("?" when it can't be read).
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Load1 is the one-minute figure of a LoadAvg string.
func Load1(s string) float64 {
	var x float64
	fmt.Sscanf(s, "%g", &x)
	return x
}
