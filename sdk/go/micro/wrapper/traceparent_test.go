package wrapper

import (
	"context"
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceparent writes what propagation.TraceContext writes, for random span contexts.
func TestTraceparentIsTheW3CPropagators(t *testing.T) {
	for i := range 1000 {
		var tid trace.TraceID
		var sid trace.SpanID
		for j := range tid {
			tid[j] = byte(rand.Uint32())
		}
		for j := range sid {
			sid[j] = byte(rand.Uint32())
		}
		if i == 0 { // the ends of the range
			tid, sid = trace.TraceID{0xff, 15: 1}, trace.SpanID{7: 0xff}
		}
		flags := trace.TraceFlags(rand.Uint32()) // bits beyond sampled are not sent
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags})
		c := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
		if got := traceparent(sc); got != c["traceparent"] {
			t.Fatalf("traceparent(%v) = %q, the propagator writes %q", sc, got, c["traceparent"])
		}
	}
}
