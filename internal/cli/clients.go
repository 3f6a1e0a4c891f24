package cli

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
)

func (a *app) clientsCmd() *cobra.Command {
	var byRev bool
	cmd := &cobra.Command{
		Use:   "clients [PREFIX]",
		Short: "List the SDK clients watching PREFIX: the revision each applied, how far behind, what it rejected",
		Long: `List the SDK clients that watch something under PREFIX (default: every
client), as they report to configd (delivery tracking, docs/delivery.md):
each instance with its labels, the replica it reports to, the revision it
has applied, how many revisions of what it watches under PREFIX it has
not applied yet (BEHIND), and the values it rejects (key@revision). Every
replica of a cluster lists the clients of all. A client that stops
reporting leaves the list after configd's --client-expiry.

With --rev, the clients are grouped by the revision they applied, newest
first, after a count of the clients at each revision and of those that
reject a value of that revision; when a rollout runs over a key under
PREFIX (docs/rollouts.md), a column says whether each client is in its
step ("in (step N)": it sees the new values), out of it, or watches none
of its keys ("-").`,
		Args: rangeArgs(0, 1, "at most one prefix"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			r, err := c.Clients(cmd.Context(), prefix)
			if err != nil {
				return err
			}
			if ok, err := a.structured(r); ok {
				return err
			}
			if len(r.Clients) == 0 {
				fmt.Fprintf(a.stdout, "no client watches %s (revision %d)\n", dash(r.Prefix), r.Rev)
				return nil
			}
			tw := newTable(a.stdout)
			if byRev {
				slices.SortStableFunc(r.Clients, func(x, y api.ClientStatus) int { return cmp.Compare(y.Rev, x.Rev) })
				applied, rejected := map[int64]int{}, map[int64]int{}
				for _, cl := range r.Clients {
					applied[cl.Rev]++
					seen := map[int64]bool{}
					for _, j := range cl.Rejections {
						if !seen[j.Rev] {
							seen[j.Rev] = true
							rejected[j.Rev]++
						}
					}
				}
				revs := slices.Sorted(maps.Keys(applied))
				for rev := range rejected {
					if _, ok := applied[rev]; !ok {
						revs = append(revs, rev)
					}
				}
				slices.Sort(revs)
				slices.Reverse(slices.Compact(revs))
				sum := newTable(a.stdout)
				fmt.Fprintln(sum, "REV\tAPPLIED\tREJECTED")
				for _, rev := range revs {
					fmt.Fprintf(sum, "%d\t%d\t%d\n", rev, applied[rev], rejected[rev])
				}
				if err := sum.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout)
			}
			var (
				ro     int64
				member map[string]string
			)
			if byRev {
				ros, err := c.Rollouts(cmd.Context())
				if err != nil {
					return err
				}
				ro, member = membership(ros, r.Prefix, r.Clients)
			}
			head := "INSTANCE\tLABELS\tREPLICA\tREV\tBEHIND\tREJECTED"
			if ro != 0 {
				head += fmt.Sprintf("\tROLLOUT %d", ro)
			}
			fmt.Fprintln(tw, head)
			for _, cl := range r.Clients {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s", cl.Instance, dash(labels(cl.Labels)), cl.Replica, cl.Rev, cl.Behind, dash(rejections(cl.Rejections)))
				if ro != 0 {
					fmt.Fprintf(tw, "\t%s", member[cl.Instance])
				}
				fmt.Fprintln(tw)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&byRev, "rev", false, "group the clients by the revision they applied, with a count per revision")
	return cmd
}

// labels is "k=v,k=v", by key.
func labels(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// rejections is "key@rev,key@rev".
func rejections(js []api.ClientRejection) string {
	var parts []string
	for _, j := range js {
		parts = append(parts, fmt.Sprintf("%s@%d", j.Key, j.Rev))
	}
	return strings.Join(parts, ",")
}
