package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are one handler's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// verifyOK and verifyTime are the outcome and time of the newest walk
	// of the audit chain (GET /v1/audit/verify); absent until one ran.
	verifyOK   prometheus.Gauge
	verifyTime prometheus.Gauge
}

// newMetrics registers the handler's metrics in reg, or in a registry of
// its own when reg is nil: the store's, the sources' when there are any,
// and the disk's under dataDir when it is set.
func newMetrics(st Store, reg *prometheus.Registry, sources Sources, dataDir string) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "configd_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "configd_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	m.reg.MustRegister(
		m.requests,
		m.duration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "configd_revision",
			Help: "The store's current revision.",
		}, func() float64 { return float64(st.Rev()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "configd_disk_full_total",
			Help: "Commits refused because the disk holding the database was full (answered 507 disk_full).",
		}, func() float64 { return float64(st.DiskFullErrors()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "configd_store_available",
			Help: "1 when the store takes writes: always in the SQLite mode; on a replica, while it follows its cluster's etcd (0: writes answered 503 store_unavailable, reads go on).",
		}, func() float64 {
			if st.Replication().Err != nil {
				return 0
			}
			return 1
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.verifyOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "configd_audit_verify_ok",
		Help: "1 when the newest walk of the audit chain (GET /v1/audit/verify, configctl verify) found it intact, 0 when it found it broken; absent until one ran.",
	})
	m.verifyTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "configd_audit_verify_timestamp_seconds",
		Help: "When the newest walk of the audit chain ended (Unix time); absent until one ran.",
	})
	if sources != nil {
		m.reg.MustRegister(sourceCollector{sources})
	}
	if dataDir != "" {
		m.reg.MustRegister(newDiskCollector(dataDir))
	}
	return m
}

// verified records a walk of the audit chain; the gauges appear with the
// first.
func (m *metrics) verified(ok bool) {
	if m.verifyTime == nil {
		return
	}
	v := 0.0
	if ok {
		v = 1
	}
	m.verifyOK.Set(v)
	m.verifyTime.SetToCurrentTime()
	// Registered at the first walk, so that a daemon that never verified
	// exports no verdict (an alert on 0 would fire on a fresh start).
	m.registerOnce(m.verifyOK)
	m.registerOnce(m.verifyTime)
}

// registerOnce registers c unless it is registered already (handlers given one registry
// share the collectors of one Auth or Limits; the verdict's gauges register at each walk).
func (m *metrics) registerOnce(c prometheus.Collector) {
	if err := m.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err)
		}
	}
}

// sourceStates are the states a source is exported in, one series each.
var sourceStates = []string{"starting", "ok", "degraded", "standby", "closed"}

var (
	sourceStateDesc = prometheus.NewDesc("configd_source_state",
		"1 for the state each source (layer) is in, 0 for the others: starting, ok, degraded (its last read failed: the last good snapshot serves), standby (another replica syncs it), closed.",
		[]string{"source", "type", "state"}, nil)
	sourceKeysDesc = prometheus.NewDesc("configd_source_keys",
		"Keys each source (layer) serves.", []string{"source", "type"}, nil)
	sourceSyncDesc = prometheus.NewDesc("configd_source_last_sync_timestamp_seconds",
		"When each source last applied a snapshot (Unix time); absent until it has.", []string{"source", "type"}, nil)
)

// sourceCollector reads the sources' statuses at each scrape.
type sourceCollector struct{ s Sources }

func (sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sourceStateDesc
	ch <- sourceKeysDesc
	ch <- sourceSyncDesc
}

func (c sourceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.Statuses() {
		for _, state := range sourceStates {
			v := 0.0
			if st.State == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(sourceStateDesc, prometheus.GaugeValue, v, st.Name, st.Type, state)
		}
		ch <- prometheus.MustNewConstMetric(sourceKeysDesc, prometheus.GaugeValue, float64(st.Keys), st.Name, st.Type)
		if st.LastSync != nil {
			ch <- prometheus.MustNewConstMetric(sourceSyncDesc, prometheus.GaugeValue,
				float64(st.LastSync.UnixNano())/1e9, st.Name, st.Type)
		}
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// observe counts and times every request by its route pattern (never the
// raw path, whose keys would make the label set unbounded), and logs it at
// debug level.
func (h *handler) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		elapsed := time.Since(start)

		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		method := r.Method
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete,
			http.MethodPatch, http.MethodOptions:
		default:
			method = "other"
		}
		code := ww.Status()
		if code == 0 {
			code = http.StatusOK
		}
		h.metrics.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
		h.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
		h.opts.logger.Debug("http request", "method", r.Method, "path", r.URL.Path, "route", route,
			"code", code, "duration", elapsed)
	})
}
