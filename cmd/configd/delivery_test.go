package main_test

import (
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
)

// testClientsAcrossReplicas: a client process (examples/watch, the SDK
// with its labels from CONFIGD_LABELS) watching replica r1 is listed by
// both replicas, with its labels, replica and applied revision (GET
// /v1/clients, configctl clients); killed with -9, it leaves both lists
// after --client-expiry.
func testClientsAcrossReplicas(t *testing.T, c *configdtest.Cluster) {
	ds := replicaDaemons(t, c)
	rev := ds[0].put("app/limits", "1")
	cmd := exec.Command(watchBin, "app")
	cmd.Env = append(configdtest.CleanEnv(), "CONFIGD_ADDR="+ds[0].Addr, "CONFIGD_INSTANCE=orders-1", "CONFIGD_LABELS=zone=eu-1,service=orders")
	client := configdtest.Spawn(t, cmd)
	client.WaitLog(regexp.MustCompile(`rev \d+: `))

	listed := func(d *daemon) []api.ClientStatus {
		var r api.ClientsResponse
		if err := d.call(http.MethodGet, "/v1/clients?prefix=app/", nil, &r); err != nil {
			t.Fatal(err)
		}
		return r.Clients
	}
	for i, d := range ds {
		waitFor(t, "replica "+c.Name(i)+" lists orders-1 at the revision it applied", func() bool {
			cs := listed(d)
			return len(cs) == 1 && cs[0].Instance == "orders-1" && cs[0].Rev == rev && cs[0].Replica == c.Name(0) &&
				cs[0].Labels["zone"] == "eu-1" && slices.Equal(cs[0].Prefixes, []string{""})
		})
	}
	next := ds[1].put("app/limits", "2")
	waitFor(t, "r2 lists orders-1 at the next revision", func() bool {
		cs := listed(ds[1])
		return len(cs) == 1 && cs[0].Rev == next && cs[0].Behind == 0
	})
	out, err := exec.Command(ctlBin, "--addr", ds[1].Addr, "clients", "app/", "--rev").CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^orders-1\s+service=orders,zone=eu-1\s+r1\s+`).Match(out) {
		t.Errorf("configctl clients: %v\n%s", err, out)
	}

	client.Signal(syscall.SIGKILL)
	<-client.Exited()
	for i, d := range ds {
		waitFor(t, "replica "+c.Name(i)+" forgets the killed client", func() bool { return len(listed(d)) == 0 })
	}
	if strings.Contains(client.Log.String(), "cannot report") {
		t.Errorf("the client could not report:\n%s", client.Log.String())
	}
}
