package delivery

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxSeries bounds the series of configd_delivery_applied_clients and of
// configd_delivery_rejected_clients each: the (prefix, revision) pairs
// past it, in no set order, are left out of a scrape. There is no label
// per instance: a client's labels never reach the metrics.
const MaxSeries = 500

var (
	descClients = prometheus.NewDesc("configd_delivery_clients",
		"SDK clients reporting to this configd (delivery tracking; sum over the replicas for the cluster's).", nil, nil)
	descApplied = prometheus.NewDesc("configd_delivery_applied_clients",
		"SDK clients reporting to this configd, by the prefix they watch and the revision of that prefix they hold (the newest revision of the prefix at or before the one they applied).",
		[]string{"prefix", "rev"}, nil)
	descRejected = prometheus.NewDesc("configd_delivery_rejected_clients",
		"SDK clients reporting to this configd that refuse a value of a key under the prefix they watch, by that prefix and the revision of the value.",
		[]string{"prefix", "rev"}, nil)
)

// Collector returns the table's metrics, computed at each scrape from
// this configd's own clients.
func (t *Table) Collector() prometheus.Collector { return collector{t} }

type collector struct{ t *Table }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descClients
	ch <- descApplied
	ch <- descRejected
}

type series struct {
	prefix string
	rev    int64
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	local, _ := c.t.Local()
	ch <- prometheus.MustNewConstMetric(descClients, prometheus.GaugeValue, float64(len(local)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	revs := revCache{hist: c.t.hist, revs: map[string][]int64{}}
	applied, rejected := map[series]int{}, map[series]int{}
	for _, cl := range local {
		for _, p := range cl.Prefixes {
			if held, err := revs.held(ctx, p, cl.Rev); err == nil {
				add(applied, series{p, held})
			}
			seen := map[int64]bool{}
			for _, j := range cl.Rejections {
				if strings.HasPrefix(j.Key, p) && !seen[j.Rev] {
					seen[j.Rev] = true
					add(rejected, series{p, j.Rev})
				}
			}
		}
	}
	for s, n := range applied {
		ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(n), s.prefix, strconv.FormatInt(s.rev, 10))
	}
	for s, n := range rejected {
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.GaugeValue, float64(n), s.prefix, strconv.FormatInt(s.rev, 10))
	}
}

// add counts one client in m, unless m is full and s new.
func add(m map[series]int, s series) {
	if _, ok := m[s]; ok || len(m) < MaxSeries {
		m[s]++
	}
}
