package server_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/apiclient"
)

// TestRolloutAbortsWhenItsPrometheusQueryFires: configd's driver asks a
// rollout's abort query of a real Prometheus, which scrapes a service
// whose errors gauge is up: the rollout aborts by itself, and its log
// names the series that fired.
func TestRolloutAbortsWhenItsPrometheusQueryFires(t *testing.T) {
	reg := prometheus.NewRegistry()
	failing := prometheus.NewGauge(prometheus.GaugeOpts{Name: "orders_failing", Help: "1 when orders fails."})
	reg.MustRegister(failing)
	failing.Set(1)
	exporter := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer exporter.Close()
	prom := testserver.Prometheus(t, strings.TrimPrefix(exporter.URL, "http://"))

	d := configdtest.Run(t, testConfig(t))
	c, err := apiclient.New("http://" + d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Put(ctx, "app/limits", []byte(`{"rps": 10}`)); err != nil {
		t.Fatal(err)
	}
	rq, err := c.Propose(ctx, api.ProposeRequest{Scope: "app/", Reason: "raise limits",
		Ops: []api.TxnOp{{Op: "put", Key: "app/limits", Value: `{"rps": 100}`}}})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := c.StartRollout(ctx, api.StartRollout{Request: rq.ID, Steps: []string{"100%"}, AllowEmpty: true,
		AbortQuery: `orders_failing > 0`, Prometheus: prom.URL})
	if err != nil {
		t.Fatal(err)
	}

	// The driver looks every 5 s; Prometheus has the gauge after its
	// first scrape.
	deadline := time.Now().Add(30 * time.Second)
	for ro.State != api.RolloutAborted {
		if time.Now().After(deadline) {
			t.Fatalf("rollout %d is %s after 30 s, want aborted by its query; log: %+v", ro.ID, ro.State, ro.Log)
		}
		time.Sleep(200 * time.Millisecond) // polling the API with a deadline: the driver has no event to await
		if ro, err = c.Rollout(ctx, ro.ID); err != nil {
			t.Fatal(err)
		}
	}
	last := ro.Log[len(ro.Log)-1]
	if last.Actor != "configd" || !strings.Contains(last.Text, `orders_failing{`) || !strings.Contains(last.Text, "= 1") {
		t.Errorf("the abort's note = %+v, want configd's naming the series orders_failing{...} = 1", last)
	}
}
