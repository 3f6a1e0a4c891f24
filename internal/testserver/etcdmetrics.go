package testserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

var watcherTotal = regexp.MustCompile(`(?m)^etcd_debugging_mvcc_watcher_total (\d+)`)

// EtcdWatchers is the number of watchers etcd's members hold, by their
// own metric (etcd_debugging_mvcc_watcher_total), summed over the members
// at endpoints (client URLs, or host:port). It needs no testing.TB, so
// the benchmarks use it too.
func EtcdWatchers(ctx context.Context, endpoints ...string) (int, error) {
	total := 0
	for _, ep := range endpoints {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		m := watcherTotal.FindSubmatch(b)
		if m == nil {
			return 0, fmt.Errorf("%s/metrics: no etcd_debugging_mvcc_watcher_total", ep)
		}
		n, _ := strconv.Atoi(string(m[1]))
		total += n
	}
	return total, nil
}
