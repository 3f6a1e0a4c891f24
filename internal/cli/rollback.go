package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
)

func (a *app) rollbackCmd() *cobra.Command {
	var (
		to        int64
		all       bool
		asPrefix  bool
		dryRun    bool
		expectRev int64
	)
	cmd := &cobra.Command{
		Use:   "rollback KEY|PREFIX --to REV",
		Short: "Make a key or a prefix what it was at an earlier revision",
		Long: `Make a KEY, every key under a PREFIX (a trailing '/' or --prefix), or with
--all the whole keyspace, what it was at revision --to, as one new revision:
values come back, keys created since are deleted, keys deleted since return.
History is kept; the rollback is itself a revision that can be rolled back.

Prints "rev N (rollback to R)", or says that there is nothing to do (exit
code 0). --dry-run prints the changes it would make, as "key: now → then".
--expect-rev N refuses (exit code 4) if the scope changed after revision N,
for example after the dry run you looked at.`,
		Example: `  configctl rollback app/db/timeout --to 3
  configctl rollback app/ --to 3 --dry-run
  configctl rollback --all --to 3 --reason "bad deploy"`,
		Args: rangeArgs(0, 1, "KEY or PREFIX (or --all)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("to") {
				return usagef("rollback: --to REV is required")
			}
			if to < 1 {
				return usagef("--to %d: want a revision from 1", to)
			}
			req := api.RollbackRequest{To: to, Reason: a.reason, DryRun: dryRun, ExpectRev: expectRev}
			what := "everything"
			switch {
			case all && len(args) == 1:
				return usagef("rollback: give a KEY or PREFIX, or --all, not both")
			case all:
				if asPrefix {
					return usagef("rollback: --prefix needs a PREFIX")
				}
				req.All = true
			case len(args) == 1:
				var err error
				req.Key, req.Prefix, err = scopeArg(args[0], asPrefix)
				if err != nil {
					return err
				}
				what = req.Key + req.Prefix
				if req.Prefix == "" && req.Key == "" {
					// "/" is the whole keyspace: say so with --all.
					return usagef("rollback: use --all to roll back every key")
				}
			default:
				return usagef("rollback: want a KEY or PREFIX, or --all")
			}
			if expectRev < 0 {
				return usagef("--expect-rev %d: must be a revision", expectRev)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			rr, err := c.Rollback(cmd.Context(), req)
			if err != nil {
				return err
			}
			if ok, err := a.structured(rr); ok {
				return err
			}
			w := a.stdout
			switch {
			case len(rr.Changes) == 0 && (dryRun || !rr.Changed):
				_, err = fmt.Fprintf(w, "nothing to roll back: %s is already as at rev %d\n", what, to)
			case dryRun:
				fmt.Fprintf(w, "dry run: rolling %s back to rev %d would change %s:\n", what, to, plural(len(rr.Changes), "key"))
				printChanges(w, "  ", rr.Changes)
			default:
				_, err = fmt.Fprintf(w, "rev %d (rollback to %d)\n", rr.Rev, to)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.Int64Var(&to, "to", 0, "the revision to go back to")
	f.BoolVar(&all, "all", false, "roll back every key")
	f.BoolVar(&asPrefix, "prefix", false, "the argument is a prefix even without a trailing '/'")
	f.BoolVar(&dryRun, "dry-run", false, "print the changes, commit nothing")
	f.Int64Var(&expectRev, "expect-rev", 0, "refuse if the scope changed after revision N")
	return cmd
}
