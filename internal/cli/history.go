package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/sdk/go/apiclient"
)

// timeLayout is how tables show a revision's time, in local time.
const timeLayout = "2006-01-02 15:04:05"

// scopeArg reads a KEY|PREFIX argument: a trailing '/' or asPrefix makes
// it a prefix. It returns the key or the canonical prefix.
func scopeArg(arg string, asPrefix bool) (key, prefix string, err error) {
	if asPrefix || strings.HasSuffix(arg, "/") {
		p, err := keyspace.Prefix(arg)
		if err != nil {
			return "", "", usageError{err}
		}
		return "", p, nil
	}
	if err := keyspace.Validate(arg); err != nil {
		return "", "", usageError{err}
	}
	return arg, "", nil
}

func (a *app) historyCmd() *cobra.Command {
	var (
		asPrefix bool
		actor    string
		limit    int
		all      bool
		cursor   string
	)
	cmd := &cobra.Command{
		Use:   "history [KEY|PREFIX]",
		Short: "Show the revisions that changed a key, a prefix or anything",
		Long: `Show revisions newest first: of one KEY, of every key under a PREFIX
(a trailing '/' or --prefix), or of the whole keyspace.

The table has REV, TIME (local), ACTOR, ORIGIN, CHANGES and REASON. CHANGES
lists the keys the revision touched in the scope: +key was created, -key
deleted, key modified.

One page is shown (--limit revisions); --all follows the pages to the first
revision. 'configctl rev N' shows one revision's values.`,
		Example: `  configctl history app/db/timeout
  configctl history app/ --actor alice@laptop
  configctl history --all -o json`,
		Args: rangeArgs(0, 1, "at most one KEY or PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := apiclient.HistoryQuery{Actor: actor, Limit: limit, Cursor: cursor}
			if len(args) == 1 {
				var err error
				q.Key, q.Prefix, err = scopeArg(args[0], asPrefix)
				if err != nil {
					return err
				}
			} else if asPrefix {
				return usagef("history: --prefix needs a PREFIX")
			}
			if limit < 0 {
				return usagef("--limit %d: must be positive", limit)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var res api.HistoryResponse
			for {
				page, err := c.History(cmd.Context(), q)
				if err != nil {
					return err
				}
				res.Revisions = append(res.Revisions, page.Revisions...)
				res.NextCursor = page.NextCursor
				if !all || page.NextCursor == "" {
					break
				}
				q.Cursor = page.NextCursor
			}
			return a.printHistory(res)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asPrefix, "prefix", false, "the argument is a prefix even without a trailing '/'")
	f.StringVar(&actor, "actor", "", "only revisions made by this actor")
	f.IntVar(&limit, "limit", 0, "revisions per page (default: configd's)")
	f.BoolVar(&all, "all", false, "follow the pages to the first revision")
	f.StringVar(&cursor, "cursor", "", "start at this page (as printed after a page)")
	return cmd
}

// printHistory prints pages of history: a table of revisions, newest
// first, and the cursor of the next page.
func (a *app) printHistory(res api.HistoryResponse) error {
	if ok, err := a.structured(res); ok {
		return err
	}
	if len(res.Revisions) == 0 {
		fmt.Fprintln(a.stderr, "no revisions")
		return nil
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "REV\tTIME\tACTOR\tORIGIN\tCHANGES\tREASON")
	for _, r := range res.Revisions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Rev, r.Time.Local().Format(timeLayout),
			orDash(r.Actor), orDash(r.Origin), changeSummary(r), orDash(oneLine(r.Reason)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.NextCursor != "" {
		fmt.Fprintf(a.stderr, "more revisions: --all, or --cursor %s\n", res.NextCursor)
	}
	return nil
}

// changeSummary lists the keys of a revision's changes, cut to a column's
// width, with a count of changes outside the scope.
func changeSummary(r api.Revision) string {
	var b strings.Builder
	for i, ch := range r.Changes {
		if i > 0 {
			b.WriteString(" ")
		}
		switch {
		case ch.Old == nil:
			b.WriteString("+")
		case ch.New == nil:
			b.WriteString("-")
		}
		b.WriteString(ch.Key)
	}
	s := truncate(b.String(), 48)
	if extra := r.NumChanges - len(r.Changes); extra > 0 && len(r.Changes) > 0 {
		s += fmt.Sprintf(" (+%d more)", extra)
	} else if len(r.Changes) == 0 {
		s = plural(r.NumChanges, "key")
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) revCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rev N",
		Short: "Show one revision and its changes",
		Long: `Show revision N: when, who, why, where from, and each key it changed as
"key: old → new" ((none) where the key did not exist).`,
		Example: `  configctl rev 42
  configctl rev 42 -o json`,
		Args: rangeArgs(1, 1, "a revision number N"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev, err := parseRev(args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.Revision(cmd.Context(), rev)
			if err != nil {
				return err
			}
			if ok, err := a.structured(r); ok {
				return err
			}
			w := a.stdout
			fmt.Fprintf(w, "rev %d\n", r.Rev)
			fmt.Fprintf(w, "time:    %s\n", r.Time.Local().Format(time.RFC3339))
			fmt.Fprintf(w, "actor:   %s\n", orDash(r.Actor))
			fmt.Fprintf(w, "origin:  %s\n", orDash(r.Origin))
			if r.Reason != "" {
				fmt.Fprintf(w, "reason:  %s\n", oneLine(r.Reason))
			}
			if r.RollbackTo > 0 {
				fmt.Fprintf(w, "rollback to rev %d\n", r.RollbackTo)
			}
			fmt.Fprintf(w, "changes: %d\n", r.NumChanges)
			for _, ch := range r.Changes {
				if isSecretKV(ch.Old) || isSecretKV(ch.New) {
					fmt.Fprintf(w, "  %s: %s → %s\n", ch.Key, secretView(ch.Old), secretView(ch.New))
					continue
				}
				printChanges(w, "  ", []api.Change{ch})
			}
			return nil
		},
	}
}

// parseRev reads a revision argument.
func parseRev(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, usagef("revision %q: want a number from 1", s)
	}
	return n, nil
}
