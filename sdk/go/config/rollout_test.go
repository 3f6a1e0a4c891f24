package config

import (
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/rollout"
)

// writeRollout writes rollout 1's record over app/x (1 → 2), moving it
// from one phase to another as the rollouts' Book does, and returns the
// revision.
func (d *testConfigd) writeRollout(from, to rollout.Phase) int64 {
	d.t.Helper()
	r := rollout.Rollout{ID: 1, Scope: "app/",
		Changes: []rollout.Change{{Key: "app/x", Old: &rollout.Value{Value: []byte("1")}, New: &rollout.Value{Value: []byte("2")}}},
		Steps:   []rollout.Step{{Selector: map[string]string{"zone": "eu-1"}}},
		Phase:   to, From: from}
	return d.commit(audit.Put(keyspace.RolloutKey(1), r.Encode(), "application/json"))
}

// TestAClientSeesARolloutsValuesOnlyInItsStepAcrossARestart: over both
// transports, the client whose labels the step selects sees the new value
// and the other keeps the old one, also when configd restarts (the watch
// resumes) and for a client that starts during the rollout (a snapshot);
// an abort brings the old value back.
func TestAClientSeesARolloutsValuesOnlyInItsStepAcrossARestart(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			d := startConfigd(t)
			d.put("app/x", "1")
			client := func(instance, zone string) *Client {
				return connect(t, []string{d.addr}, append([]Option{WithPrefix("app"), WithInstance(instance),
					WithLabels(map[string]string{"zone": zone}), WithoutReports()}, tr.opts...)...)
			}
			eu, us := client("eu-a", "eu-1"), client("us-a", "us-1")
			at := func(c *Client, rev int64, want string) {
				t.Helper()
				configdtest.Eventually(t, "the client at the revision", func() bool { return c.Rev() >= rev })
				if got := c.Get("x").String(""); got != want {
					t.Fatalf("%s at %d sees x=%q, want %q", c.opts.instance, c.Rev(), got, want)
				}
			}
			start := d.writeRollout(rollout.Phase{}, rollout.Phase{State: rollout.StateActive})
			at(eu, start, "2")
			other := d.put("app/y", "a")
			at(us, other, "1")
			at(eu, other, "2")

			d.stop()
			d.restart(true)
			after := d.put("app/y", "b")
			at(eu, after, "2")
			at(us, after, "1")
			at(client("eu-b", "eu-1"), after, "2")
			at(client("us-b", "us-1"), after, "1")

			abort := d.writeRollout(rollout.Phase{State: rollout.StateActive}, rollout.Phase{State: rollout.StateAborted})
			at(eu, abort, "1")
			last := d.put("app/y", "c")
			at(us, last, "1")
		})
	}
}
