package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
)

// BenchmarkPutParallel is 64 concurrent clients, each PUTting new values
// over real HTTP; every PUT is a durable revision (group commit).
func BenchmarkPutParallel(b *testing.B) {
	e := newEnv(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	const clients = 64
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((clients + procs - 1) / procs)
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v1/kv/bench/k%d", e.ts.URL, n%1024),
				bytes.NewReader([]byte(fmt.Sprintf("value-%d", n))))
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("put: %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	if got := e.st.Rev(); got != int64(b.N) {
		b.Errorf("store at revision %d after %d puts", got, b.N)
	}
}

// BenchmarkGet is one client reading one key over real HTTP.
func BenchmarkGet(b *testing.B) {
	e := newEnv(b)
	e.put("bench/key", "some value of a reasonable size for a config entry", "")
	client := &http.Client{}
	defer client.CloseIdleConnections()
	url := e.ts.URL + "/v1/kv/bench/key"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("get: %d", resp.StatusCode)
		}
	}
}
