package cli

import (
	"context"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/httpapi"
)

// fixedReplicas is a cluster's registry as GET /v1/replicas shows it.
type fixedReplicas struct{ resp api.ReplicasResponse }

func (f fixedReplicas) Replicas(context.Context) (api.ReplicasResponse, error) { return f.resp, nil }

// TestReplicasListsTheClusterOrSaysItRunsAlone: configctl replicas prints
// a table of the replicas, '*' on the one that answered, and says so when
// configd runs alone.
func TestReplicasListsTheClusterOrSaysItRunsAlone(t *testing.T) {
	newConfigd(t).run("", "replicas").want(t, 0, "configd runs alone (--store sqlite) at revision 0: it has no replicas\n", "")

	up := time.Date(2026, 12, 6, 9, 0, 0, 0, time.Local)
	e := configdtest.NewEnv(t, configdtest.WithHandlerOptions(httpapi.WithReplicas(fixedReplicas{api.ReplicasResponse{Store: "etcd", Rev: 42, Replicas: []api.ReplicaStatus{
		{Name: "r1", Addr: "10.0.0.1:7700", Version: "v1", Rev: 42, UpSince: up, Self: true, Sources: []string{"consul"}},
		{Name: "r2", Addr: "10.0.0.2:7700", Version: "v1", Rev: 40, Lag: 2, UpSince: up},
	}}})))
	runCLI("", "--addr", e.URL, "replicas").want(t, 0, ""+
		"NAME  ADDR           VERSION  REV  LAG  SOURCES  UP SINCE\n"+
		"r1 *  10.0.0.1:7700  v1       42   0    consul   2026-12-06 09:00:00\n"+
		"r2    10.0.0.2:7700  v1       40   2    -        2026-12-06 09:00:00\n", "")
}

// TestGetAndLsWaitForTheRevisionAsked: --min-rev and --consistent reach
// configd, which waits for the revision (and answers 503 unavailable,
// exit 1, when it does not come within its read wait).
func TestGetAndLsWaitForTheRevisionAsked(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithHandlerOptions(httpapi.WithReadWait(200*time.Millisecond)))
	e.Put("app/a", "1")
	runCLI("", "--addr", e.URL, "get", "app/a", "--min-rev", "1", "--consistent").want(t, 0, "1", "")
	runCLI("", "--addr", e.URL, "ls", "app/", "--min-rev", "1", "-o", "json").want(t, 0, `~"app/a"`, "")
	runCLI("", "--addr", e.URL, "get", "app/a", "--min-rev", "5").want(t, ExitError, "", "~did not reach revision 5")
	runCLI("", "--addr", e.URL, "ls", "app/", "--consistent", "--min-rev", "5").want(t, ExitError, "", "~did not reach revision 5")
}
