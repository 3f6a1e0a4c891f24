package wrapper

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
)

// Metrics holds the Prometheus collectors of calls (client side) and handlers (server side):
//
//	micro_client_requests_total{service,endpoint,code}
//	micro_client_request_duration_seconds{service,endpoint}
//	micro_server_requests_total{service,endpoint,code}
//	micro_server_request_duration_seconds{service,endpoint}
//	micro_server_panics_total{service,endpoint}
//
// code is "ok" or the status code ("404", "503", ...).
type Metrics struct {
	clientRequests *prometheus.CounterVec
	clientDuration *prometheus.HistogramVec
	serverRequests *prometheus.CounterVec
	serverDuration *prometheus.HistogramVec
	serverPanics   *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"service", "endpoint"}
	m := &Metrics{
		clientRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "micro_client_requests_total", Help: "Calls made, by outcome.",
		}, append(labels, "code")),
		clientDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "micro_client_request_duration_seconds", Help: "Call latency, retries included.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, labels),
		serverRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "micro_server_requests_total", Help: "Calls handled, by outcome.",
		}, append(labels, "code")),
		serverDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "micro_server_request_duration_seconds", Help: "Handler latency.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, labels),
		serverPanics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "micro_server_panics_total", Help: "Handlers that panicked.",
		}, labels),
	}
	for _, c := range []prometheus.Collector{m.clientRequests, m.clientDuration, m.serverRequests, m.serverDuration, m.serverPanics} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func code(err error) string {
	if err == nil {
		return "ok"
	}
	return strconv.Itoa(int(status.CodeOf(err)))
}

// CallWrapper counts and times calls.
func (m *Metrics) CallWrapper() client.CallWrapper {
	return func(next client.CallFunc) client.CallFunc {
		return func(ctx context.Context, req *client.Request, rsp any) error {
			start := time.Now()
			err := next(ctx, req, rsp)
			m.clientDuration.WithLabelValues(req.Service, req.Endpoint).Observe(time.Since(start).Seconds())
			m.clientRequests.WithLabelValues(req.Service, req.Endpoint, code(err)).Inc()
			return err
		}
	}
}

// HandlerWrapper counts and times handled calls, panics included.
func (m *Metrics) HandlerWrapper() server.HandlerWrapper {
	return func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req *server.Request, rsp any) error {
			start := time.Now()
			err := next(ctx, req, rsp)
			m.serverDuration.WithLabelValues(req.Service, req.Endpoint).Observe(time.Since(start).Seconds())
			m.serverRequests.WithLabelValues(req.Service, req.Endpoint, code(err)).Inc()
			if errors.Is(err, server.ErrPanic) {
				m.serverPanics.WithLabelValues(req.Service, req.Endpoint).Inc()
			}
			return err
		}
	}
}
