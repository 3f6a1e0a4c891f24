package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/configd/configd/audit"
)

// metrics are one handler's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics registers the handler's metrics in reg, or in a registry of
// its own when reg is nil.
func newMetrics(st Store, replication func() audit.Replication, reg *prometheus.Registry) *metrics {
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
			if replication().Err != nil {
				return 0
			}
			return 1
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
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
