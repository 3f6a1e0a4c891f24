package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/watcher"
)

// watchMetrics counts watchers and what they are sent. A nil *watchMetrics
// counts nothing.
type watchMetrics struct {
	connected prometheus.Gauge
	events    prometheus.Counter
	batches   *prometheus.CounterVec
	resyncs   prometheus.Counter
	fanout    prometheus.Histogram
}

func newWatchMetrics(reg prometheus.Registerer) *watchMetrics {
	m := &watchMetrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "configd_watchers", Help: "Watches open now, over gRPC and HTTP.",
		}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "configd_watch_events_sent_total", Help: "Key events sent to watchers.",
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "configd_watch_messages_sent_total", Help: "Watch messages sent, by kind.",
		}, []string{"kind"}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "configd_watch_resyncs_total", Help: "Watchers cut off for falling behind and told to resync.",
		}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "configd_watch_fanout_seconds",
			Help:    "Time from a revision's commit to its message being handed to a watcher's stream.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	reg.MustRegister(m.connected, m.events, m.batches, m.resyncs, m.fanout)
	return m
}

func (m *watchMetrics) watchers(delta int) {
	if m != nil {
		m.connected.Add(float64(delta))
	}
}

func (m *watchMetrics) sent(b watcher.Batch) {
	if m != nil {
		m.events.Add(float64(len(b.Events)))
		m.batches.WithLabelValues(b.Kind.String()).Inc()
		if b.Kind == watcher.KindResync {
			m.resyncs.Inc()
		}
		if b.Kind == watcher.KindChanges && !b.Time.IsZero() {
			m.fanout.Observe(time.Since(b.Time).Seconds())
		}
	}
}
