package wrapper_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// Echoer echoes a stream's messages back until the client's CloseSend, or fails at once when
// the first message says "fail". It records the span context its handler saw.
type Echoer struct {
	mu sync.Mutex
	sc trace.SpanContext
}

func (e *Echoer) Echo(ctx context.Context, st server.Stream) error {
	e.mu.Lock()
	e.sc = trace.SpanContextFromContext(ctx)
	e.mu.Unlock()
	for {
		var m Req
		if err := st.Recv(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Name == "fail" {
			return status.New(status.BadRequest, "no")
		}
		if err := st.Send(&Rsp{Node: m.Name}); err != nil {
			return err
		}
	}
}

// TestStreamWrappersAcrossTCP: a stream over a real tcp transport gets a client span whose
// context reaches the handler (the server's span of the stream is its child), ended when the
// stream ends, with the stream's outcome; Metrics counts each stream once by outcome.
func TestStreamWrappersAcrossTCP(t *testing.T) {
	exp, _, tr := newTracing(t)
	reg := prometheus.NewRegistry()
	m, err := wrapper.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := &Echoer{}
	tcpt, srv := startTCPServer(t, "echo", h, "Echoer", tr.HandlerWrapper())
	c, err := client.New(client.Transport(tcpt), client.WrapStream(m.StreamWrapper(), tr.StreamWrapper()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	open := func() client.Stream {
		t.Helper()
		st, err := c.Stream(context.Background(), "echo", "Echoer.Echo", client.WithAddress(srv.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	clientSpan := func() tracetest.SpanStub {
		t.Helper()
		for _, s := range exp.GetSpans() {
			if s.SpanKind == trace.SpanKindClient {
				return s
			}
		}
		t.Fatalf("no client span among %d", len(exp.GetSpans()))
		return tracetest.SpanStub{}
	}
	counted := func(code string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, mf := range mfs {
			if mf.GetName() != "micro_client_streams_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				if l["service"] == "echo" && l["code"] == code {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}

	// A clean stream: two messages each way, CloseSend, io.EOF.
	st := open()
	if got := trace.SpanContextFromContext(st.Context()); !got.IsValid() {
		t.Fatal("the stream's context carries no span")
	}
	for _, name := range []string{"a", "b"} {
		var r Rsp
		if err := st.Send(&Req{Name: name}); err != nil {
			t.Fatal(err)
		}
		if err := st.Recv(&r); err != nil || r.Node != name {
			t.Fatalf("echo of %q: %+v, %v", name, r, err)
		}
	}
	if len(exp.GetSpans()) != 0 {
		t.Fatalf("%d spans ended while the stream was open", len(exp.GetSpans()))
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := st.Recv(&Rsp{}); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after CloseSend: %v, want io.EOF", err)
	}
	st.Close()
	cs := clientSpan()
	if cs.Name != "echo/Echoer.Echo" || cs.Status.Code == otelcodes.Error {
		t.Fatalf("client span %q, status %v", cs.Name, cs.Status)
	}
	h.mu.Lock()
	handlerTrace := h.sc.TraceID()
	h.mu.Unlock()
	if handlerTrace != cs.SpanContext.TraceID() {
		t.Fatalf("the handler's span is in trace %s, the client's in %s", handlerTrace, cs.SpanContext.TraceID())
	}
	var ss tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindServer {
			ss = s
		}
	}
	if ss.Parent.SpanID() != cs.SpanContext.SpanID() || !ss.Parent.IsRemote() {
		t.Fatalf("server span's parent %s, want the client span %s", ss.Parent.SpanID(), cs.SpanContext.SpanID())
	}
	if n := len(exp.GetSpans()); n != 2 {
		t.Fatalf("%d spans for one stream, want a client and a server span", n)
	}
	if counted("ok") != 1 {
		t.Fatalf("ok streams counted %v, want 1", counted("ok"))
	}

	// A stream the handler fails: the client span says so, with the code.
	exp.Reset()
	st = open()
	if err := st.Send(&Req{Name: "fail"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Recv(&Rsp{}); status.CodeOf(err) != status.BadRequest {
		t.Fatalf("Recv of a failed stream: %v, want BadRequest", err)
	}
	st.Close()
	if cs := clientSpan(); cs.Status.Code != otelcodes.Error {
		t.Fatalf("client span of a failed stream: status %v", cs.Status)
	}
	if got := counted(strconv.Itoa(int(status.BadRequest))); got != 1 {
		t.Fatalf("failed streams counted %v under code %d, want 1", got, status.BadRequest)
	}

	// A stream the caller closes before its end: ended once, as ok.
	exp.Reset()
	st = open()
	st.Close()
	st.Close()
	if cs := clientSpan(); cs.Status.Code == otelcodes.Error {
		t.Fatalf("client span of a stream closed by its caller: status %v", cs.Status)
	}
	if counted("ok") != 2 {
		t.Fatalf("ok streams counted %v, want 2", counted("ok"))
	}

	// An open that fails is counted and traced as failed.
	before := counted(strconv.Itoa(int(status.NotFound)))
	exp.Reset()
	if _, err := c.Stream(context.Background(), "echo", "Echoer.Nope", client.WithAddress(srv.Addr())); err == nil {
		t.Fatal("opening an unknown endpoint succeeded")
	}
	if cs := clientSpan(); cs.Status.Code != otelcodes.Error {
		t.Fatalf("client span of a failed open: status %v", cs.Status)
	}
	if got := counted(strconv.Itoa(int(status.NotFound))); got != before+1 {
		t.Fatalf("failed opens counted %v under code %d, want %v", got, status.NotFound, before+1)
	}
}
