package chain

import (
	"strings"
	"testing"

	"github.com/configd/configd/audit/record"
)

// BenchmarkRevisionHash measures what the chain adds to a commit in the
// writer: hashing a one-key revision of a 200-byte value.
func BenchmarkRevisionHash(b *testing.B) {
	value := []byte(strings.Repeat("v", 200))
	r := record.Revision{Rev: 42, Actor: "bench", Origin: "api", NumChanges: 1,
		Changes:      []record.Change{{Key: "bench/1", Type: record.OpPut, New: &record.KeyValue{Key: "bench/1", Value: value, ContentType: record.TypeText, CreateRev: 42, ModRev: 42, Version: 1}}},
		LayerChanges: []record.LayerChange{{Layer: record.StoreLayer, Key: "bench/1", New: &record.LayerValue{Value: value, ContentType: record.TypeText}}}}
	var enc chainEncoder
	prev, state := make([]byte, 32), make([]byte, 32)
	b.ReportAllocs()
	for range b.N {
		prev = enc.revisionHash(prev, &r, state)
	}
}
