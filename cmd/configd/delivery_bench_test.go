package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
)

// BenchmarkClientReports measures what SDK clients' delivery reports
// (POST /v1/clients/report) cost configd: the configd binary, with
// authentication on, takes b.N reports from 1,000 clients (instances)
// over 64 keep-alive connections, as the SDK sends them (labels, a
// prefix, a revision; every tenth with a rejection), each checked
// against a reader token's grants. It reports configd's own CPU time
// (its threads' run time, see procCPU) per report, and what 10,000
// reports a minute cost at that rate, in percent of one core.
//
// The sub-benchmark 10k-per-minute sends them at that pace instead, and
// reports configd's CPU over the wall time (what it does idle included).
//
//	go test -run '^$' -bench ClientReports -benchtime 20000x ./cmd/configd
func BenchmarkClientReports(b *testing.B) {
	const admin = "bench-bootstrap-token-0123456789abcdef"
	cmd := exec.Command(bin, "--data-dir", filepath.Join(b.TempDir(), "data"), "--http-addr", "127.0.0.1:0", "--auth")
	cmd.Env = append(configdtest.CleanEnv(), "CONFIGD_BOOTSTRAP_TOKEN="+admin)
	d := launchCmd(b, cmd)
	d.Listening()
	st, body, err := d.request(http.MethodPost, "/v1/tokens", []byte(`{"name":"orders","grants":[{"permission":"read","prefix":"app/"}]}`), "Authorization", "Bearer "+admin)
	var created api.TokenCreated
	if err != nil || st != http.StatusCreated || json.Unmarshal(body, &created) != nil {
		b.Fatalf("create a token: %d %s %v", st, body, err)
	}
	if st, body, err := d.request(http.MethodPut, "/v1/kv/app/limits", []byte("1"), "Authorization", "Bearer "+admin); err != nil || st != http.StatusOK {
		b.Fatalf("put: %d %s %v", st, body, err)
	}

	const conns, clients = 64, 1000
	bodies := make([][]byte, clients)
	for i := range bodies {
		r := api.ClientReport{Instance: fmt.Sprintf("orders-%04d/orders", i), Labels: map[string]string{"service": "orders", "zone": fmt.Sprint("eu-", i%3)},
			Prefixes: []string{"app/"}, Rev: 1}
		if i%10 == 0 {
			r.Rejections = []api.ClientRejection{{Key: "app/limits", Rev: 1, Error: "rps must be >= 1"}}
		}
		bodies[i], _ = json.Marshal(r)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}} // as the SDK, a connection kept per client
	defer hc.CloseIdleConnections()
	send := func(i int) {
		req, _ := http.NewRequest(http.MethodPost, d.url("/v1/clients/report"), bytes.NewReader(bodies[i%clients]))
		req.Header.Set("Authorization", "Bearer "+created.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("report: %s", resp.Status)
		}
	}
	for i := range clients { // every client known, every connection open
		send(i)
	}

	b.Run("burst", func(b *testing.B) {
		cpu0, start := procCPU(b, d.Cmd.Process.Pid), time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range conns {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					send(int(i))
				}
			})
		}
		wg.Wait()
		wall, cpu := time.Since(start), procCPU(b, d.Cmd.Process.Pid)-cpu0
		perReport := cpu / time.Duration(b.N)
		b.ReportMetric(float64(perReport.Nanoseconds())/1e3, "configd-cpu-µs/report")
		b.ReportMetric(float64(perReport)*10000/float64(time.Minute)*100, "core-%-at-10k/min")
		b.ReportMetric(float64(b.N)/wall.Seconds(), "reports/s")
	})
	b.Run("idle", func(b *testing.B) {
		cpu0, start := procCPU(b, d.Cmd.Process.Pid), time.Now()
		time.Sleep(time.Duration(b.N) * time.Minute / 10000)
		wall, cpu := time.Since(start), procCPU(b, d.Cmd.Process.Pid)-cpu0
		b.ReportMetric(float64(cpu)/float64(wall)*100, "configd-core-%")
	})
	// At 10,000 reports a minute (one every 6 ms), for b.N reports:
	// configd's CPU over the wall time, idle work included; and, for
	// comparison, as many GET /v1/status (the lightest route) at the same
	// pace: the floor of any HTTP request on this machine.
	paced := func(send func(int)) func(b *testing.B) {
		return func(b *testing.B) {
			const every = time.Minute / 10000
			tick := time.NewTicker(every)
			defer tick.Stop()
			cpu0, start := procCPU(b, d.Cmd.Process.Pid), time.Now()
			var wg sync.WaitGroup
			for i := range b.N {
				<-tick.C
				wg.Go(func() { send(i) })
			}
			wg.Wait()
			wall, cpu := time.Since(start), procCPU(b, d.Cmd.Process.Pid)-cpu0
			b.ReportMetric(float64(cpu)/float64(wall)*100, "configd-core-%")
			b.ReportMetric(float64(b.N)/wall.Minutes(), "requests/min")
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "configd-cpu-µs/request")
		}
	}
	status := func(int) {
		req, _ := http.NewRequest(http.MethodGet, d.url("/v1/status"), nil)
		req.Header.Set("Authorization", "Bearer "+created.Token)
		resp, err := hc.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		resp.Body.Close()
	}
	b.Run("10k-per-minute", paced(send))
	b.Run("10k-per-minute-status", paced(status))
	// As the SDK sends its heartbeats (api.ClientReportResponse.WindowMS):
	// each client at its own offset within a window at the start of each
	// minute, so that configd takes the minute's reports while it is
	// awake for them, not one wake-up each. b.N reports within the
	// window, then the rest of the minute idle: configd's CPU over the
	// minute, minus what it costs idle (measured first, over as long),
	// is what the reports cost.
	b.Run("10k-per-minute-windowed", func(b *testing.B) {
		window := time.Duration(api.DefaultClientReportWindowMS) * time.Millisecond
		cpu0, start := procCPU(b, d.Cmd.Process.Pid), time.Now()
		time.Sleep(10 * time.Second)
		idle := float64(procCPU(b, d.Cmd.Process.Pid)-cpu0) / float64(time.Since(start))

		every := window / time.Duration(b.N)
		tick := time.NewTicker(every)
		defer tick.Stop()
		cpu0, start = procCPU(b, d.Cmd.Process.Pid), time.Now()
		var wg sync.WaitGroup
		for i := range b.N {
			<-tick.C
			wg.Go(func() { send(i) })
		}
		wg.Wait()
		wall, cpu := time.Since(start), procCPU(b, d.Cmd.Process.Pid)-cpu0
		reports := float64(cpu) - idle*float64(wall)
		b.ReportMetric(float64(b.N)/wall.Seconds(), "reports/s-in-window")
		b.ReportMetric(reports/1e3/float64(b.N), "configd-cpu-µs/report")
		b.ReportMetric(reports/float64(b.N)*10000/float64(time.Minute)*100, "core-%-at-10k/min")
		b.ReportMetric(idle*100, "idle-core-%")
	})
	// A configd with thousands of clients is never idle (10,000 watches
	// alone get 1,000 progress messages a second): the same, beside 1,000
	// GET /v1/status a second, then that load alone over as long. The
	// difference is what the reports add.
	busy := func(reports bool) func(b *testing.B) {
		return func(b *testing.B) {
			stop := make(chan struct{})
			var bg sync.WaitGroup
			bg.Go(func() {
				tick := time.NewTicker(time.Millisecond)
				defer tick.Stop()
				var wg sync.WaitGroup
				defer wg.Wait()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
						wg.Go(func() { status(i) })
					}
				}
			})
			if reports {
				paced(send)(b)
			} else {
				paced(func(int) {})(b)
			}
			close(stop)
			bg.Wait()
		}
	}
	b.Run("busy", busy(false))
	b.Run("busy+10k-per-minute", busy(true))
}

// procCPU is the CPU time process pid's threads have used, from the
// scheduler's own count (/proc/PID/task/TID/schedstat, in nanoseconds):
// exact, where /proc/PID/stat's utime and stime are sampled at each timer
// tick (CONFIG_TICK_CPU_ACCOUNTING), which charges a whole tick (4 ms at
// 250 Hz) to whatever runs when it fires and so overcharges a process
// that wakes briefly and often, as configd does for paced requests.
// Threads that ended are not counted: Go keeps its threads.
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		tb.Fatal(err)
	}
	var total time.Duration
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(data))
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			tb.Fatalf("/proc/%d/task/%s/schedstat: %q", pid, task.Name(), data)
		}
		total += time.Duration(ns)
	}
	return total
}
