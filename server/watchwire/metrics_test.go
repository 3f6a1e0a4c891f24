package watchwire

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/configd/configd/watcher"
)

// TestSentCountsEachMessageByItsKind: the counters looked up once per kind
// count what Sent is given, events too; a nil Metrics counts nothing.
func TestSentCountsEachMessageByItsKind(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	changes := watcher.Batch{Kind: watcher.KindChanges, Events: make([]watcher.Event, 3)}
	m.Sent(changes)
	m.Sent(changes)
	m.Sent(watcher.Batch{Kind: watcher.KindResync})
	m.Sent(watcher.Batch{Kind: watcher.Kind(9)})
	for kind, want := range map[string]float64{"changes": 2, "snapshot": 0, "resync": 1, "unknown": 1} {
		if got := testutil.ToFloat64(m.batches.WithLabelValues(kind)); got != want {
			t.Errorf("messages of kind %s: %v, want %v", kind, got, want)
		}
	}
	if got := testutil.ToFloat64(m.events); got != 6 {
		t.Errorf("events: %v, want 6", got)
	}
	if got := testutil.ToFloat64(m.resyncs); got != 1 {
		t.Errorf("resyncs: %v, want 1", got)
	}
	var none *Metrics
	none.Sent(changes)
}
