package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/configd/configd/audit"
)

// TestReadyzOfAReplicaThatLostEtcd: a replica whose etcd does not answer
// stays ready for reads and says it is degraded; asked about writes it is
// not ready; one that diverged is not ready at all.
func TestReadyzOfAReplicaThatLostEtcd(t *testing.T) {
	lost := audit.Replication{Replica: true, Applied: 7, Err: fmt.Errorf("follow: %w", audit.ErrStoreUnavailable)}
	if d, err := replicaReadiness(lost, false); err != nil || !strings.Contains(d, "degraded") || !strings.Contains(d, "store_unavailable") || !strings.Contains(d, "revision 7") {
		t.Errorf("reads: %q %v, want ready and degraded", d, err)
	}
	if _, err := replicaReadiness(lost, true); err == nil || !strings.Contains(err.Error(), "writes are refused") {
		t.Errorf("writes: %v, want not ready", err)
	}
	diverged := audit.Replication{Replica: true, Applied: 7, Err: fmt.Errorf("apply: %w", audit.ErrDiverged)}
	if _, err := replicaReadiness(diverged, false); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Errorf("diverged: %v, want not ready", err)
	}
	for _, r := range []audit.Replication{{}, {Replica: true, Applied: 7}} {
		if d, err := replicaReadiness(r, true); d != "" || err != nil {
			t.Errorf("%+v: %q %v, want ready", r, d, err)
		}
	}
}
