package wrapper

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
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
	clientStreams  *prometheus.CounterVec

	// The series of each service+endpoint, resolved once (WithLabelValues hashes the label
	// values and takes a lock on every use).
	clientSeries, serverSeries *endpointCache[*endpointSeries]
}

// endpointSeries holds the series of one service+endpoint on one side: its latency histogram
// and its "ok" counter, which is resolved on the first success (resolving creates the series,
// and a series that was never counted is not exported).
type endpointSeries struct {
	duration prometheus.Observer
	ok       atomic.Pointer[prometheus.Counter]
	requests *prometheus.CounterVec
	labels   [2]string
}

func newEndpointSeries(duration *prometheus.HistogramVec, requests *prometheus.CounterVec) func(service, endpoint string) *endpointSeries {
	return func(service, endpoint string) *endpointSeries {
		return &endpointSeries{duration: duration.WithLabelValues(service, endpoint), requests: requests, labels: [2]string{service, endpoint}}
	}
}

// count counts a call with outcome err.
func (s *endpointSeries) count(err error) {
	if err != nil {
		s.requests.WithLabelValues(s.labels[0], s.labels[1], code(err)).Inc()
		return
	}
	c := s.ok.Load()
	if c == nil {
		ok := s.requests.WithLabelValues(s.labels[0], s.labels[1], "ok")
		c = &ok
		s.ok.Store(c) // a racing store stores the same counter
	}
	(*c).Inc()
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
		clientStreams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "micro_client_streams_total", Help: "Streams opened, by how they ended (a failed open is counted with its code).",
		}, append(labels, "code")),
	}
	m.clientSeries = newEndpointCache(false, newEndpointSeries(m.clientDuration, m.clientRequests))
	m.serverSeries = newEndpointCache(false, newEndpointSeries(m.serverDuration, m.serverRequests))
	for _, c := range []prometheus.Collector{m.clientRequests, m.clientDuration, m.serverRequests, m.serverDuration, m.serverPanics, m.clientStreams} {
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
			start := monotonic()
			err := next(ctx, req, rsp)
			s := m.clientSeries.get(req.Service, req.Endpoint)
			s.duration.Observe((monotonic() - start).Seconds())
			s.count(err)
			return err
		}
	}
}

// StreamWrapper counts the client's streams in micro_client_streams_total when they end, by
// outcome: ok (the handler returned nil, or the caller closed the stream first), or the status
// code of the failed open or of the error Recv returned. (The server counts a stream as one
// handled call of its endpoint.)
func (m *Metrics) StreamWrapper() client.StreamWrapper {
	return func(next client.StreamFunc) client.StreamFunc {
		return func(ctx context.Context, req *client.Request) (client.Stream, error) {
			st, err := next(ctx, req)
			if err != nil {
				m.clientStreams.WithLabelValues(req.Service, req.Endpoint, code(err)).Inc()
				return nil, err
			}
			service, endpoint := req.Service, req.Endpoint
			return watchEnd(st, func(err error) { m.clientStreams.WithLabelValues(service, endpoint, code(err)).Inc() }), nil
		}
	}
}

// HandlerWrapper counts and times handled calls, panics included.
func (m *Metrics) HandlerWrapper() server.HandlerWrapper {
	return func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req *server.Request, rsp any) error {
			start := monotonic()
			err := next(ctx, req, rsp)
			s := m.serverSeries.get(req.Service, req.Endpoint)
			s.duration.Observe((monotonic() - start).Seconds())
			s.count(err)
			if err != nil && errors.Is(err, server.ErrPanic) {
				m.serverPanics.WithLabelValues(req.Service, req.Endpoint).Inc()
			}
			return err
		}
	}
}

// epoch anchors monotonic.
var epoch = time.Now()

// monotonic is the time since epoch on the monotonic clock: one clock read, where time.Now
// reads the wall clock as well.
func monotonic() time.Duration { return time.Since(epoch) }
