// Command configd-load drives a running configd over its HTTP API from a
// separate process and reports throughput and latency percentiles.
//
//	go run ./cmd/configd-load --addr 127.0.0.1:7700 --mode put --clients 64 --duration 10s
//
// Modes: put (durable PUTs of distinct keys), get (GET of one hot key).
// It has no dependency on configd's packages, so it measures only the wire.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7700", "configd address (host:port)")
	mode := flag.String("mode", "put", "put or get")
	clients := flag.Int("clients", 64, "concurrent clients")
	duration := flag.Duration("duration", 10*time.Second, "how long to run")
	valueSize := flag.Int("value-size", 200, "value size in bytes (put)")
	flag.Parse()
	if err := run(*addr, *mode, *clients, *duration, *valueSize); err != nil {
		fmt.Fprintln(os.Stderr, "configd-load:", err)
		os.Exit(1)
	}
}

func run(addr, mode string, clients int, d time.Duration, valueSize int) error {
	base := "http://" + strings.TrimPrefix(addr, "http://")
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	value := bytes.Repeat([]byte("v"), valueSize)

	if mode == "get" {
		req, _ := http.NewRequest(http.MethodPut, base+"/v1/kv/load/hot", bytes.NewReader(value))
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	} else if mode != "put" {
		return fmt.Errorf("unknown mode %q", mode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var seq, errs atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for ctx.Err() == nil {
				var req *http.Request
				if mode == "put" {
					i := seq.Add(1)
					req, _ = http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v1/kv/load/c%d/k%d", base, c, i), bytes.NewReader(value))
					req.Header.Set("X-Configd-Actor", "configd-load")
				} else {
					req, _ = http.NewRequest(http.MethodGet, base+"/v1/kv/load/hot", nil)
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					errs.Add(1)
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return fmt.Errorf("no request succeeded (%d errors)", errs.Load())
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) time.Duration { return all[int(float64(len(all)-1)*p)] }
	fmt.Printf("mode=%s clients=%d requests=%d errors=%d elapsed=%s throughput=%.0f/s p50=%s p99=%s max=%s\n",
		mode, clients, len(all), errs.Load(), elapsed.Round(time.Millisecond),
		float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.99), all[len(all)-1])
	return nil
}
