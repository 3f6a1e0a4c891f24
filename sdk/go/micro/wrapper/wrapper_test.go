package wrapper_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

type Req struct{ Name string }
type Rsp struct{ Node string }

// Node answers according to its mode: "ok", "retryable", "fatal", "slow", "panic".
type Node struct {
	id    string
	mode  string
	calls atomic.Int64
}

func (n *Node) Hello(ctx context.Context, req *Req, rsp *Rsp) error {
	n.calls.Add(1)
	switch n.mode {
	case "retryable":
		return status.Retryable(errors.New("overloaded"))
	case "fatal":
		return status.New(status.Internal, "broken")
	case "slow":
		<-ctx.Done()
		return ctx.Err()
	case "panic":
		panic("node " + n.id)
	}
	rsp.Node = n.id
	return nil
}

type cluster struct {
	nodes []*Node
	sel   *selector.Cache
	tr    transport.Transport
}

// newCluster starts one greeter server per mode, all registered in one registry.
func newCluster(t *testing.T, hw []server.HandlerWrapper, modes ...string) *cluster {
	t.Helper()
	reg := memory.New()
	c := &cluster{tr: tcp.New()}
	for i, mode := range modes {
		n := &Node{id: mode + "-" + string(rune('a'+i)), mode: mode}
		srv, err := server.New(server.Name("greeter"), server.ID(n.id), server.Registry(reg), server.Transport(c.tr),
			server.GracePeriod(0), server.DrainTimeout(time.Second), server.WrapHandler(hw...))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Handle(n, server.HandlerName("Greeter")); err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Stop(context.Background()) })
		c.nodes = append(c.nodes, n)
	}
	var err error
	c.sel, err = selector.New(selector.Registry(reg), selector.DefaultStrategy(selector.RoundRobin()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.sel.Close() })
	return c
}

func (c *cluster) client(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	cl, err := client.New(append([]client.Option{client.Selector(c.sel), client.Transport(c.tr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func TestRetryGoesToAnotherNode(t *testing.T) {
	c := newCluster(t, nil, "retryable", "ok")
	cl := c.client(t, client.Wrap(wrapper.Retry(wrapper.MaxAttempts(2), wrapper.Backoff(time.Millisecond, time.Millisecond))))
	for range 20 {
		var rsp Rsp
		if err := cl.Call(context.Background(), "greeter", "Greeter.Hello", &Req{}, &rsp); err != nil {
			t.Fatalf("call with one good node and a retry: %v", err)
		}
		if rsp.Node != c.nodes[1].id {
			t.Fatalf("answered by %s", rsp.Node)
		}
	}
	if bad := c.nodes[0].calls.Load(); bad == 0 || bad > 20 {
		t.Fatalf("failing node got %d calls; want some, and never twice in one call", bad)
	}
}

func TestRetryLeavesNonRetryableErrorsAlone(t *testing.T) {
	c := newCluster(t, nil, "fatal", "fatal")
	cl := c.client(t, client.Wrap(wrapper.Retry(wrapper.MaxAttempts(5))))
	var rsp Rsp
	err := cl.Call(context.Background(), "greeter", "Greeter.Hello", &Req{}, &rsp)
	if status.CodeOf(err) != status.Internal {
		t.Fatalf("err = %v, want the Internal error", err)
	}
	if total := c.nodes[0].calls.Load() + c.nodes[1].calls.Load(); total != 1 {
		t.Fatalf("%d attempts for a non-retryable error, want 1", total)
	}
}

func TestRetryBudgetCapsRetries(t *testing.T) {
	c := newCluster(t, nil, "retryable", "retryable")
	now := time.Unix(0, 0)
	budget := wrapper.NewBudget(0, 1).WithClock(func() time.Time { return now }) // 10 tokens, no refill
	cl := c.client(t, client.Wrap(wrapper.Retry(wrapper.MaxAttempts(3), wrapper.WithBudget(budget), wrapper.Backoff(time.Microsecond, time.Microsecond))))
	exhausted := 0
	for range 10 {
		var rsp Rsp
		err := cl.Call(context.Background(), "greeter", "Greeter.Hello", &Req{}, &rsp)
		if err == nil {
			t.Fatal("call to failing nodes succeeded")
		}
		if strings.Contains(err.Error(), "budget exhausted") {
			exhausted++
		}
	}
	total := c.nodes[0].calls.Load() + c.nodes[1].calls.Load()
	if total != 10+10 || exhausted == 0 {
		t.Fatalf("%d attempts (%d calls reported the budget), want 10 calls + 10 budgeted retries", total, exhausted)
	}
}

func TestTimeoutCoversAllAttempts(t *testing.T) {
	c := newCluster(t, nil, "slow", "slow")
	cl := c.client(t, client.RequestTimeout(300*time.Millisecond),
		client.Wrap(wrapper.Retry(wrapper.MaxAttempts(100), wrapper.PerAttemptTimeout(100*time.Millisecond), wrapper.Backoff(time.Millisecond, time.Millisecond))))
	start := time.Now()
	var rsp Rsp
	err := cl.Call(context.Background(), "greeter", "Greeter.Hello", &Req{}, &rsp, client.Idempotent())
	elapsed := time.Since(start)
	if status.CodeOf(err) != status.Timeout {
		t.Fatalf("err = %v, want Timeout", err)
	}
	if elapsed > 2*time.Second {
		t.Fatalf("call took %v with a 300ms request timeout", elapsed)
	}
	if total := c.nodes[0].calls.Load() + c.nodes[1].calls.Load(); total < 2 || total > 4 {
		t.Fatalf("%d attempts within 300ms at 100ms each, want 2 to 4", total)
	}
}

func TestSlowNodeIsSkippedWithinTheTimeout(t *testing.T) {
	c := newCluster(t, nil, "slow", "ok")
	cl := c.client(t, client.RequestTimeout(2*time.Second),
		client.Wrap(wrapper.Retry(wrapper.PerAttemptTimeout(100*time.Millisecond))))
	for range 6 {
		var rsp Rsp
		if err := cl.Call(context.Background(), "greeter", "Greeter.Hello", &Req{}, &rsp, client.Idempotent()); err != nil {
			t.Fatalf("call with one slow and one good node: %v", err)
		}
	}
	// The slow node timed out once and was demoted by the selector: it saw one call at most
	// (DemoteFor is 10 s by default).
	if slow := c.nodes[0].calls.Load(); slow > 1 {
		t.Fatalf("slow node got %d calls; a timed-out node should be demoted", slow)
	}
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var changes []string
	b := wrapper.NewBreaker(wrapper.BreakAfter(3), wrapper.OpenFor(time.Minute), wrapper.BreakerClock(clock),
		wrapper.OnBreakerChange(func(_, _ string, from, to wrapper.BreakerState) {
			changes = append(changes, string(from)+">"+string(to))
		}))
	var calls int
	var fail atomic.Bool
	call := b.Wrapper()(func(ctx context.Context, req *client.Request, rsp any) error {
		calls++
		if fail.Load() {
			return &status.Error{Code: status.Unavailable, Message: "down"}
		}
		return nil
	})
	req := &client.Request{Service: "greeter", Endpoint: "Greeter.Hello"}
	do := func() error { return call(context.Background(), req, nil) }
	other := &client.Request{Service: "greeter", Endpoint: "Greeter.Other"}

	fail.Store(true)
	for range 3 {
		do()
	}
	if got := b.State("greeter", "Greeter.Hello"); got != wrapper.Open {
		t.Fatalf("after 3 failures: %s", got)
	}
	if err := do(); !strings.Contains(err.Error(), "circuit breaker open") || calls != 3 {
		t.Fatalf("open circuit: err = %v after %d calls; want fail-fast without calling", err, calls)
	}
	if err := call(context.Background(), other, nil); err == nil || calls != 4 {
		t.Fatal("another endpoint's circuit was affected") // it failed through, not fast
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if got := b.State("greeter", "Greeter.Hello"); got != wrapper.HalfOpen {
		t.Fatalf("after OpenFor: %s", got)
	}
	do() // failing probe
	if got := b.State("greeter", "Greeter.Hello"); got != wrapper.Open || calls != 5 {
		t.Fatalf("after a failed probe: %s (%d calls)", got, calls)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	fail.Store(false)
	if err := do(); err != nil {
		t.Fatal(err)
	}
	if got := b.State("greeter", "Greeter.Hello"); got != wrapper.Closed {
		t.Fatalf("after a good probe: %s", got)
	}
	want := "closed>open open>half-open half-open>open open>half-open half-open>closed"
	if strings.Join(changes, " ") != want {
		t.Fatalf("changes %q, want %q", strings.Join(changes, " "), want)
	}
}

func TestBreakerIgnoresCallerErrors(t *testing.T) {
	b := wrapper.NewBreaker(wrapper.BreakAfter(1))
	call := b.Wrapper()(func(context.Context, *client.Request, any) error {
		return &status.Error{Code: status.BadRequest, Message: "your fault"}
	})
	for range 5 {
		call(context.Background(), &client.Request{Service: "s", Endpoint: "e"}, nil)
	}
	if got := b.State("s", "e"); got != wrapper.Closed {
		t.Fatalf("bad requests opened the circuit: %s", got)
	}
}

func TestMetricsCountCallsErrorsAndPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := wrapper.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrapper.NewMetrics(reg); err == nil {
		t.Fatal("registering the metrics twice succeeded")
	}
	c := newCluster(t, []server.HandlerWrapper{m.HandlerWrapper()}, "panic")
	okc := newCluster(t, []server.HandlerWrapper{m.HandlerWrapper()}, "ok")
	for _, cl := range []*client.Client{c.client(t, client.Wrap(m.CallWrapper())), okc.client(t, client.Wrap(m.CallWrapper()))} {
		for range 2 {
			var rsp Rsp
			cl.Call(context.Background(), "greeter", "Greeter.Hello", &Req{}, &rsp)
		}
	}
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"server panics", sum(t, reg, "micro_server_panics_total", ""), 2},
		{"server 500", sum(t, reg, "micro_server_requests_total", "500"), 2},
		{"server ok", sum(t, reg, "micro_server_requests_total", "ok"), 2},
		{"client 500", sum(t, reg, "micro_client_requests_total", "500"), 2},
		{"client ok", sum(t, reg, "micro_client_requests_total", "ok"), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if n := series(t, reg, "micro_client_request_duration_seconds"); n != 1 {
		t.Errorf("client latency series = %d, want 1 (greeter/Greeter.Hello)", n)
	}
}

// sum adds the counter values of name whose code label is code ("" for any).
func sum(t *testing.T, reg *prometheus.Registry, name, code string) float64 {
	t.Helper()
	var total float64
	for _, m := range gather(t, reg, name) {
		match := code == ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "code" && l.GetValue() == code {
				match = true
			}
		}
		if match {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// series counts the label sets of name.
func series(t *testing.T, reg *prometheus.Registry, name string) int {
	return len(gather(t, reg, name))
}

func gather(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func TestBreakerCollectorExportsEachCircuitsState(t *testing.T) {
	b := wrapper.NewBreaker(wrapper.BreakAfter(1), wrapper.OpenFor(time.Hour))
	call := b.Wrapper()(func(ctx context.Context, req *client.Request, rsp any) error {
		if req.Endpoint == "Greeter.Down" {
			return &status.Error{Code: status.Unavailable, Message: "down"}
		}
		return nil
	})
	for _, ep := range []string{"Greeter.Hello", "Greeter.Down"} {
		call(context.Background(), &client.Request{Service: "greeter", Endpoint: ep}, nil)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["endpoint"]+" "+l["state"]] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"Greeter.Hello closed": 1, "Greeter.Hello open": 0, "Greeter.Hello half-open": 0,
		"Greeter.Down closed": 0, "Greeter.Down open": 1, "Greeter.Down half-open": 0,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
