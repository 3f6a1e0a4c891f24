package authz

import (
	"time"

	dto "github.com/prometheus/client_model/go"
)

// SetNow sets the clock of l's rate buckets.
func (l *Limits) SetNow(now func() time.Time) { l.now = now }

// OpenWatches is how many watches id has open.
func (l *Limits) OpenWatches(id string) int { return l.openWatches(id) }

// Refused is configd_limited_total{reason}.
func (l *Limits) Refused(reason string) float64 {
	var m dto.Metric
	if err := l.refused.WithLabelValues(reason).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
