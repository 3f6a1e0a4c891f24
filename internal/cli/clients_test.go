package cli

import (
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
)

// TestClientsListsWhoHoldsWhichRevision: configctl clients prints the
// clients of a prefix with their labels, replica, applied revision, how
// far behind they are and what they reject; --rev counts them by
// revision first.
func TestClientsListsWhoHoldsWhichRevision(t *testing.T) {
	e := configdtest.NewEnv(t)
	runCLI("", "--addr", e.URL, "clients", "app/").want(t, 0, "no client watches app/ (revision 0)\n", "")

	r1 := e.Put("app/limits", "1")
	r2 := e.Put("app/limits", "2")
	e.Clients.Report("", api.ClientReport{Instance: "orders-1", Labels: map[string]string{"zone": "eu-1", "service": "orders"}, Prefixes: []string{"app/"}, Rev: r2})
	e.Clients.Report("", api.ClientReport{Instance: "orders-2", Prefixes: []string{"app/"}, Rev: r1,
		Rejections: []api.ClientRejection{{Key: "app/limits", Rev: r2, Error: "no"}}})
	e.Clients.Report("", api.ClientReport{Instance: "db-1", Prefixes: []string{"db/"}, Rev: r2})

	runCLI("", "--addr", e.URL, "clients", "app/").want(t, 0, ""+
		"INSTANCE  LABELS                    REPLICA  REV  BEHIND  REJECTED\n"+
		"orders-1  service=orders,zone=eu-1  test     2    0       -\n"+
		"orders-2  -                         test     1    1       app/limits@2\n", "")
	runCLI("", "--addr", e.URL, "clients", "app/", "--rev").want(t, 0, ""+
		"REV  APPLIED  REJECTED\n"+
		"2    1        1\n"+
		"1    1        0\n"+
		"\n"+
		"INSTANCE  LABELS                    REPLICA  REV  BEHIND  REJECTED\n"+
		"orders-1  service=orders,zone=eu-1  test     2    0       -\n"+
		"orders-2  -                         test     1    1       app/limits@2\n", "")
	runCLI("", "--addr", e.URL, "clients", "-o", "json").want(t, 0, `~"instance": "db-1"`, "")
	runCLI("", "--addr", e.URL, "clients", "a", "b").want(t, ExitUsage, "", "~at most one prefix")
}
