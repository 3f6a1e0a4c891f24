package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/sdk/go/apiclient"
)

// The rollouts' commands (docs/rollouts.md): rollout REQUEST --to ...
// [--then ...], rollout list|show|promote|pause|resume|abort|complete.

func (a *app) rolloutCmd() *cobra.Command {
	var (
		to, query, prom       string
		then                  []string
		bake, wait            time.Duration
		maxErrors, abortOnErr string
		allowEmpty            bool
	)
	cmd := &cobra.Command{
		Use:   "rollout REQUEST --to STEP [--then STEP ...]",
		Short: "Roll a change request out to a step of the clients first, then to more",
		Long: `Roll change request REQUEST out in steps instead of publishing it at once:
the clients in the current step see its new values, every other client the
old ones (the store keeps them until the rollout completes). A step is a
percentage of the instances ("10%": a sticky hash of each client's instance
name) or labels the clients declare ("zone=eu-1,tier=web"). --to is the
first step, each --then one more.

Each step runs for --bake, then advances by itself if at most --max-errors
of its clients reject the new values (configctl rollout promote advances it
at once; without --bake only promote does). Past the last step the rollout
completes: the new values are written for everyone. With --abort-on-errors
the rollout aborts by itself when more of the step's clients reject them,
and with --abort-on-query when the Prometheus query returns a result.

The request must be publishable (open, approved as its policy asks, not
stale). A first step that holds none of the connected clients is refused
(exit code 4) unless --allow-empty; so are a key of another running rollout
and a percentage outside 0-100 (exit code 2).

Prints "rollout N: step 1/4 (STEP): A of C clients applied rev R, J rejected",
once every client in the step applied it or after --wait.`,
		Example: `  configctl rollout 7 --to 'zone=eu-1' --then 10% --then 50% --then 100% --bake 10m --abort-on-errors 1%
  configctl rollout list
  configctl rollout show 3
  configctl rollout abort 3 --reason "errors in eu-1"`,
		Args: rangeArgs(1, 1, "REQUEST (or a command: list, show, promote, pause, resume, abort, complete)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("request", args[0])
			if err != nil {
				return usagef("rollout: %q is neither a request id nor a command (list, show, promote, pause, resume, abort, complete)", args[0])
			}
			if to == "" {
				return usagef("rollout: --to STEP (the first step) is required")
			}
			req := api.StartRollout{Request: id, AbortQuery: query, Prometheus: prom, AllowEmpty: allowEmpty, Reason: a.reason}
			for _, s := range append([]string{to}, then...) {
				if _, err := rollout.ParseStep(s); err != nil {
					return usageError{err}
				}
				req.Steps = append(req.Steps, s)
			}
			if bake < 0 {
				return usagef("rollout: --bake %s is negative", bake)
			}
			if bake > 0 {
				req.Bake = bake.String()
			}
			if req.MaxErrors, err = parsePercent("--max-errors", maxErrors); err != nil {
				return err
			}
			if req.AbortOnErrors, err = parsePercent("--abort-on-errors", abortOnErr); err != nil {
				return err
			}
			if (query == "") != (prom == "") {
				return usagef("rollout: --abort-on-query and --prometheus go together")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ro, err := c.StartRollout(cmd.Context(), req)
			if err != nil {
				return err
			}
			// Watch the first step land: its clients apply the rollout's
			// revision within a moment.
			deadline := time.Now().Add(wait)
			for st := ro.Status; st != nil && st.Applied < st.InStep && time.Now().Before(deadline); st = ro.Status {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(landPoll):
				}
				if ro, err = c.Rollout(cmd.Context(), ro.ID); err != nil {
					return err
				}
			}
			if ok, err := a.structured(ro); ok {
				return err
			}
			fmt.Fprintln(a.stdout, rolloutLine(ro))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "the first step: a percentage (10%) or labels (zone=eu-1,tier=web)")
	f.StringArrayVar(&then, "then", nil, "one more step (repeat the flag for each)")
	f.DurationVar(&bake, "bake", 0, "how long each step runs before it advances by itself (0: only promote advances it)")
	f.StringVar(&maxErrors, "max-errors", "", "the percentage of a step's clients that may reject the new values for it to advance (default 0%)")
	f.StringVar(&abortOnErr, "abort-on-errors", "", "abort when more than this percentage of the step's clients reject the new values")
	f.StringVar(&query, "abort-on-query", "", "abort when this PromQL expression returns a result (needs --prometheus)")
	f.StringVar(&prom, "prometheus", "", "the Prometheus that --abort-on-query asks (http://host:9090)")
	f.BoolVar(&allowEmpty, "allow-empty", false, "start even when the first step holds none of the connected clients")
	f.DurationVar(&wait, "wait", 10*time.Second, "how long to wait for the first step's clients to apply it before printing (0: print at once)")

	action := func(name, short, long string) *cobra.Command {
		var at int64
		c := &cobra.Command{
			Use:   name + " ID",
			Short: short,
			Long:  long,
			Args:  rangeArgs(1, 1, "ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				if at < 0 {
					return usagef("rollout %s: --rev %d is not a revision", name, at)
				}
				ro, done, err := a.onRollout(args[0], func(c *apiclient.Client, id int64) (api.Rollout, error) {
					return c.RolloutActionAt(cmd.Context(), id, at, name, a.reason)
				})
				if !done {
					fmt.Fprintln(a.stdout, rolloutLine(ro))
				}
				return err
			},
		}
		c.Flags().Int64Var(&at, "rev", 0, "act only if the rollout is still at this revision (its rev in rollout show), and fail with a conflict if another action came first")
		return c
	}
	cmd.AddCommand(a.rolloutListCmd(), a.rolloutShowCmd(),
		action("promote", "Move a rollout to its next step (past the last: complete it)", ""),
		action("pause", "Stop a rollout's step from advancing by itself", ""),
		action("resume", "Let a paused rollout's step advance by itself again", ""),
		action("abort", "Put every client of a rollout back on the old values",
			"Abort a rollout: the clients in its step go back to the old values (the store\nnever left them); nothing else moves. The abort is a revision of its own."),
		action("complete", "Write a rollout's new values for everyone, in one revision", ""),
	)
	return cmd
}

// landPoll is how often configctl rollout looks at its first step while
// it waits for it to land.
const landPoll = 250 * time.Millisecond

// onRollout calls call with the rollout id arg names, and prints its
// answer if structured output is asked (done: nothing more to print).
func (a *app) onRollout(arg string, call func(c *apiclient.Client, id int64) (api.Rollout, error)) (ro api.Rollout, done bool, err error) {
	id, err := parseID("rollout", arg)
	if err != nil {
		return api.Rollout{}, true, err
	}
	c, err := a.client()
	if err != nil {
		return api.Rollout{}, true, err
	}
	if ro, err = call(c, id); err != nil {
		return api.Rollout{}, true, err
	}
	done, err = a.structured(ro)
	return ro, done, err
}

// parsePercent reads "1%" or "1" (a percentage from 0 to 100); "" is 0.
func parsePercent(flag, s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	p, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil || p < 0 || p > 100 || p != p {
		return 0, usagef("%s %q: want a percentage from 0 to 100 (1%%)", flag, s)
	}
	return p, nil
}

// rolloutLine is a rollout in one line: "rollout 3: step 1/4 (zone=eu-1):
// 12 of 12 clients applied rev 57, 0 rejected".
func rolloutLine(ro api.Rollout) string {
	switch {
	case ro.State == api.RolloutComplete:
		return fmt.Sprintf("rollout %d: complete at rev %d: every client has the new values", ro.ID, ro.Rev)
	case ro.State == api.RolloutAborted:
		return fmt.Sprintf("rollout %d: aborted at rev %d: every client is back on the old values", ro.ID, ro.Rev)
	}
	s := fmt.Sprintf("rollout %d: step %d/%d (%s)", ro.ID, ro.Step+1, len(ro.Steps), stepName(ro))
	if ro.State == api.RolloutPaused {
		s += ", paused"
	}
	if st := ro.Status; st != nil {
		rev := ro.Rev
		if n := len(st.Steps); n > 0 {
			rev = st.Steps[n-1].Rev
		}
		s += fmt.Sprintf(": %d of %d clients applied rev %d, %d rejected", st.Applied, st.InStep, rev, st.Rejected)
	}
	return s
}

func stepName(ro api.Rollout) string {
	if ro.Step < len(ro.Steps) {
		return ro.Steps[ro.Step]
	}
	return "?"
}

func (a *app) rolloutListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the rollouts, oldest first",
		Args:  rangeArgs(0, 0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ros, err := c.Rollouts(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := a.structured(ros); ok {
				return err
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ID\tSTATE\tSTEP\tSCOPE\tREQUEST\tAUTHOR\tREASON")
			for _, ro := range ros {
				fmt.Fprintf(tw, "%d\t%s\t%d/%d (%s)\t%s\t%d\t%s\t%s\n", ro.ID, ro.State, ro.Step+1, len(ro.Steps), stepName(ro),
					scopeName(ro.Scope), ro.Request, ro.Author, oneLine(ro.Reason))
			}
			return tw.Flush()
		},
	}
}

func (a *app) rolloutShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a rollout: its steps, its clients, its changes and its log",
		Args:  rangeArgs(1, 1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ro, done, err := a.onRollout(args[0], func(c *apiclient.Client, id int64) (api.Rollout, error) {
				return c.Rollout(cmd.Context(), id)
			})
			if done {
				return err
			}
			w := a.stdout
			fmt.Fprintln(w, rolloutLine(ro))
			fmt.Fprintf(w, "request %d by %s under %s, old values of rev %d", ro.Request, ro.Author, scopeName(ro.Scope), ro.Base)
			if ro.Reason != "" {
				fmt.Fprintf(w, ": %s", ro.Reason)
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "version: rev %d (an action with --rev %d is taken on this version only)\n", ro.Rev, ro.Rev)
			fmt.Fprintf(w, "steps: %s; bake %s, max errors %v%%", strings.Join(ro.Steps, " → "), dash(ro.Bake), ro.MaxErrors)
			if ro.AbortOnErrors > 0 {
				fmt.Fprintf(w, ", abort on errors above %v%%", ro.AbortOnErrors)
			}
			if ro.AbortQuery != "" {
				fmt.Fprintf(w, ", abort when %s (%s)", ro.AbortQuery, ro.Prometheus)
			}
			fmt.Fprintln(w)
			if st := ro.Status; st != nil {
				tw := newTable(w)
				fmt.Fprintln(tw, "STEP\tREV\tIN STEP\tAPPLIED\tREJECTED")
				for i, s := range st.Steps {
					fmt.Fprintf(tw, "%d (%s)\t%d\t%d\t%d\t%d\n", i+1, s.Step, s.Rev, s.InStep, s.Applied, s.Rejected)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(w, "%d of %d clients watching its keys in the step", st.InStep, st.Clients)
				if len(st.Behind) > 0 {
					fmt.Fprintf(w, "; behind: %s", strings.Join(st.Behind, ", "))
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w, "changes:")
			for _, ch := range ro.Changes {
				old := fmt.Sprintf("rev %d", ro.Base)
				if ch.Old == nil {
					old = fmt.Sprintf("absent at rev %d", ro.Base)
				}
				nw := fmt.Sprintf("rollout %d", ro.ID)
				if ch.New == nil {
					nw += ": deleted"
				}
				printChange(w, ch, old, nw)
			}
			fmt.Fprintln(w, "log:")
			for _, n := range ro.Log {
				fmt.Fprintf(w, "  %s  %s %s", n.Time.Format(time.RFC3339), n.Actor, n.Action)
				if n.Text != "" {
					fmt.Fprintf(w, ": %s", oneLine(n.Text))
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
}

// membership says, for clients listed under prefix, whether each is in the
// step of a running rollout that changes a key under prefix: "in (step
// 2)", "out", or "-" for a client that watches none of its keys. It
// returns the rollout's id (0: none runs there).
func membership(ros []api.Rollout, prefix string, clients []api.ClientStatus) (int64, map[string]string) {
	for _, ro := range ros {
		if ro.State != api.RolloutActive && ro.State != api.RolloutPaused {
			continue
		}
		r := &rollout.Rollout{Phase: rollout.Phase{State: ro.State, Step: ro.Step}}
		var keys []string
		for _, ch := range ro.Changes {
			if keyspace.Overlaps(prefix, ch.Key) {
				keys = append(keys, ch.Key)
			}
		}
		if len(keys) == 0 {
			continue
		}
		for _, s := range ro.Steps {
			st, err := rollout.ParseStep(s)
			if err != nil {
				return 0, nil
			}
			r.Steps = append(r.Steps, st)
		}
		out := map[string]string{}
		for _, c := range clients {
			out[c.Instance] = "-"
			if !watchesAny(c, keys) {
				continue
			}
			out[c.Instance] = "out"
			if step, in := r.Joined(rollout.Identity{Instance: c.Instance, Labels: c.Labels}); in {
				out[c.Instance] = fmt.Sprintf("in (step %d)", step+1)
			}
		}
		return ro.ID, out
	}
	return 0, nil
}

func watchesAny(c api.ClientStatus, keys []string) bool {
	for _, w := range c.Prefixes {
		for _, k := range keys {
			if keyspace.Overlaps(w, k) {
				return true
			}
		}
	}
	return false
}
