package main_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/config"
)

// BenchmarkSourceChangeToWatcher measures, with real servers, the time from
// a change in Consul or etcd (its write acknowledged) to a config SDK
// watcher's Next returning the new value, through configd's source, layers,
// store and watch stream. It reports p50 and p99 as metrics.
//
//	go test -run '^$' -bench SourceChangeToWatcher -benchtime 200x ./cmd/configd
func BenchmarkSourceChangeToWatcher(b *testing.B) {
	for _, kind := range []string{"consul", "etcd"} {
		b.Run(kind, func(b *testing.B) {
			dir := b.TempDir()
			var srcConf string
			var put func(v string)
			switch kind {
			case "consul":
				c := testserver.Consul(b)
				srcConf = fmt.Sprintf("  - {name: shared, type: consul, address: %s, prefix: micro/config/, mount: app/}\n", c.Addr)
				put = func(v string) { consulPut(b, c.Addr, "micro/config/db/host", v) }
			case "etcd":
				e := testserver.Etcd(b)
				srcConf = fmt.Sprintf("  - {name: infra, type: etcd, endpoints: [%s], prefix: /app/, mount: app/}\n", e.Addr)
				put = func(v string) { etcdPut(b, e.Addr, "/app/db/host", v) }
			}
			confPath := filepath.Join(dir, "configd.yaml")
			if err := os.WriteFile(confPath, []byte("sources:\n"+srcConf), 0o644); err != nil {
				b.Fatal(err)
			}
			d := launch(b, "--data-dir", filepath.Join(dir, "data"), "--http-addr", "127.0.0.1:0", "--config", confPath)
			d.Listening()
			put("v0")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := config.New(ctx, config.WithAddress(d.Addr), config.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			w, err := c.Watch("app/db/host")
			if err != nil {
				b.Fatal(err)
			}
			defer w.Stop()
			for c.Get("app/db/host").String("") != "v0" {
				if _, err := w.Next(); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				want := fmt.Sprint("v", i+1)
				put(want)
				t0 := time.Now()
				for {
					v, err := w.Next()
					if err != nil {
						b.Fatal(err)
					}
					if v.String("") == want {
						break
					}
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)-1)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
