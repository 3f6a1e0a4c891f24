package wrapper

import "github.com/prometheus/client_golang/prometheus"

var breakerStateDesc = prometheus.NewDesc("micro_client_breaker_state",
	"1 for the state each circuit (service and endpoint) is in, 0 for the others: closed, open, half-open.",
	[]string{"service", "endpoint", "state"}, nil)

// Collector exports the state of each circuit the breaker has seen, read at
// each scrape: reg.MustRegister(b.Collector()).
func (b *Breaker) Collector() prometheus.Collector { return breakerCollector{b} }

type breakerCollector struct{ b *Breaker }

func (breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerStateDesc }

func (c breakerCollector) Collect(ch chan<- prometheus.Metric) {
	c.b.circuits.each(func(cc *circuit) {
		state := c.b.State(cc.service, cc.endpoint)
		for _, s := range []BreakerState{Closed, Open, HalfOpen} {
			v := 0.0
			if s == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(breakerStateDesc, prometheus.GaugeValue, v, cc.service, cc.endpoint, string(s))
		}
	})
}
