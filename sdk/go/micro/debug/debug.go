// Package debug is the health and stats handler every micro.Service serves, after go-micro's
// Debug handler: endpoints Debug.Health and Debug.Stats on the service's own name.
//
//	cli.Call(ctx, "greeter", "Debug.Health", &debug.HealthRequest{}, &rsp) // rsp.Status "ok" or "draining"
//
// The counts come from Wrapper, a server.HandlerWrapper that must wrap every handler; calls to
// the Debug endpoints themselves are not counted.
package debug

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/configd/configd/sdk/go/micro/server"
)

// Name is the handler name the endpoints are registered under.
const Name = "Debug"

// Health statuses.
const (
	// StatusOK: serving.
	StatusOK = "ok"
	// StatusDraining: the service is stopping; it still answers, but callers should go elsewhere.
	StatusDraining = "draining"
)

// HealthRequest is the body of Debug.Health.
type HealthRequest struct{}

// HealthResponse is the answer of Debug.Health.
type HealthResponse struct {
	Status string `json:"status"`
}

// StatsRequest is the body of Debug.Stats.
type StatsRequest struct{}

// StatsResponse is the answer of Debug.Stats. Counts cover the service's own endpoints since
// it started, not the Debug endpoints.
type StatsResponse struct {
	// Started is when the handler was created, Unix seconds; Uptime the seconds since.
	Started int64 `json:"started"`
	Uptime  int64 `json:"uptime"`
	// Requests handled, Errors among them (the handler returned an error), InFlight now.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	InFlight int64  `json:"inflight"`
	// Goroutines in the process; Memory is the Go heap in use (runtime.MemStats.HeapAlloc) and
	// Sys the memory obtained from the system, in bytes.
	Goroutines int    `json:"goroutines"`
	Memory     uint64 `json:"memory"`
	Sys        uint64 `json:"sys"`
	// GC counts completed garbage collections.
	GC uint32 `json:"gc"`
}

// Handler serves Debug.Health and Debug.Stats. Create it with New; it is safe for concurrent use.
type Handler struct {
	started  time.Time
	now      func() time.Time
	draining atomic.Bool
	requests atomic.Uint64
	errors   atomic.Uint64
	inflight atomic.Int64
}

// New returns a Handler, its clock started now.
func New() *Handler { return &Handler{started: time.Now(), now: time.Now} }

// SetDraining switches Health to "draining" (true) or back to "ok".
func (h *Handler) SetDraining(v bool) { h.draining.Store(v) }

// Wrapper counts the calls of every endpoint it wraps, except the Debug endpoints.
func (h *Handler) Wrapper() server.HandlerWrapper {
	return func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req *server.Request, rsp any) error {
			if strings.HasPrefix(req.Endpoint, Name+".") {
				return next(ctx, req, rsp)
			}
			h.inflight.Add(1)
			defer h.inflight.Add(-1)
			err := next(ctx, req, rsp)
			h.requests.Add(1)
			if err != nil {
				h.errors.Add(1)
			}
			return err
		}
	}
}

// Health answers whether the service is serving or draining.
func (h *Handler) Health(_ context.Context, _ *HealthRequest, rsp *HealthResponse) error {
	rsp.Status = StatusOK
	if h.draining.Load() {
		rsp.Status = StatusDraining
	}
	return nil
}

// Stats answers the counts and the process's runtime figures.
func (h *Handler) Stats(_ context.Context, _ *StatsRequest, rsp *StatsResponse) error {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	*rsp = StatsResponse{
		Started: h.started.Unix(), Uptime: int64(h.now().Sub(h.started) / time.Second),
		Requests: h.requests.Load(), Errors: h.errors.Load(), InFlight: h.inflight.Load(),
		Goroutines: runtime.NumGoroutine(), Memory: m.HeapAlloc, Sys: m.Sys, GC: m.NumGC,
	}
	return nil
}
