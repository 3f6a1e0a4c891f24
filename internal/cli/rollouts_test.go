package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
)

// TestRolloutStartsShowsPromotesAndAborts: configctl rollout prints the
// issue's line, each action its outcome; refusals exit with configctl's
// codes; configctl clients --rev shows who is in the step.
func TestRolloutStartsShowsPromotesAndAborts(t *testing.T) {
	e := configdtest.NewEnv(t)
	d := &testConfigd{t: t, url: e.URL}
	d.ok("set", "app/limits", `{"rps":10}`, "--type", "json")
	d.run("", "propose", "app/", "-f", changeFile(t, "set:\n  app/limits:\n    type: json\n    value: {rps: 100}\n")).want(t, 0, "~^request 1 ", "")
	var eu []string
	for i := range 12 {
		inst := fmt.Sprintf("eu-%d", i)
		eu = append(eu, inst)
		e.Clients.Report("", api.ClientReport{Instance: inst, Labels: map[string]string{"zone": "eu-1"}, Prefixes: []string{"app/"}, Rev: 1})
	}
	e.Clients.Report("", api.ClientReport{Instance: "us-0", Labels: map[string]string{"zone": "us-1"}, Prefixes: []string{"app/"}, Rev: 1})

	d.run("", "rollout", "1", "--to", "zone=eu-2").want(t, ExitConflict, "", "~selects none of the 13 connected client\\(s\\).*--allow-empty")
	d.run("", "rollout", "1", "--to", "150%").want(t, ExitUsage, "", "~a percentage must be above 0 and at most 100")
	d.run("", "rollout", "1", "--to", "10%", "--abort-on-errors", "200%").want(t, ExitUsage, "", "~--abort-on-errors \"200%\"")
	d.run("", "rollout", "1").want(t, ExitUsage, "", "~--to STEP")
	// The clients do not move here: it prints what stands after --wait.
	d.run("", "rollout", "1", "--to", "zone=eu-1", "--then", "10%", "--then", "50%", "--then", "100%", "--bake", "10m", "--abort-on-errors", "1%", "--wait", "300ms").
		want(t, 0, "rollout 1: step 1/4 (zone=eu-1): 0 of 12 clients applied rev 3, 0 rejected\n", "")
	for _, inst := range eu {
		e.Clients.Report("", api.ClientReport{Instance: inst, Labels: map[string]string{"zone": "eu-1"}, Prefixes: []string{"app/"}, Rev: 5})
	}
	show := d.ok("rollout", "show", "1")
	for _, want := range []string{
		"rollout 1: step 1/4 (zone=eu-1): 12 of 12 clients applied rev 3, 0 rejected\n",
		"version: rev 3 (an action with --rev 3 is taken on this version only)\n",
		"steps: zone=eu-1 → 10% → 50% → 100%; bake 10m0s, max errors 0%, abort on errors above 1%\n",
		"--- app/limits (rev 2)\n+++ app/limits (rollout 1)\n- {\"rps\":10}\n+ {\"rps\":100}\n",
		"tester start: request 1 to zone=eu-1, then 10%, 50%, 100%\n",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("rollout show lacks %q:\n%s", want, show)
		}
	}
	d.run("", "clients", "app/", "--rev").want(t, 0, "~(?m)ROLLOUT 1\n(.|\n)*^eu-0 .* in \\(step 1\\)\n(.|\n)*^us-0 .* out\n", "")
	d.run("", "rollout", "list").want(t, 0, "~(?m)^1 +active +1/4 \\(zone=eu-1\\) +app/ +1 +tester", "")
	d.run("", "set", "app/limits", "1").want(t, ExitConflict, "", "~app/limits is in rollout 1: configctl rollout abort 1 or complete it first")
	// The version show printed: --rev 3 promotes it once, then conflicts.
	d.run("", "rollout", "promote", "1", "--rev", "3").want(t, 0, "~^rollout 1: step 2/4 \\(10%\\): ", "")
	d.run("", "rollout", "promote", "1", "--rev", "3").want(t, ExitConflict, "", "~rollout 1 moved on \\(revision [0-9]+\\) since revision 3: it was not promoted")
	d.run("", "rollout", "promote", "1", "--rev", "-1").want(t, ExitUsage, "", "~--rev -1 is not a revision")
	d.run("", "rollout", "pause", "1").want(t, 0, "~^rollout 1: step 2/4 \\(10%\\), paused: ", "")
	d.run("", "rollout", "abort", "1", "--reason", "errors in eu-1").want(t, 0, "~^rollout 1: aborted at rev [0-9]+: every client is back on the old values\n$", "")
	d.run("", "rollout", "abort", "1").want(t, ExitConflict, "", "~rollout 1 is aborted: it cannot be aborted")
	d.run("", "rollout", "show", "9").want(t, ExitNotFound, "", "configctl: rollout 9 does not exist (configctl rollout list)\n")
	d.run("", "get", "app/limits").want(t, 0, `{"rps":10}`, "")
}
