package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
)

// The change requests' commands (docs/requests.md): propose, request
// show|list|comment|approve|rebase|publish|close, policy set|list.

func (a *app) proposeCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "propose PREFIX -f FILE",
		Short: "Propose a change request: a draft of changes under PREFIX, to review and publish",
		Long: `Propose a change request: the puts and deletes of FILE, every key under
PREFIX, drafted on the current revision. Nothing changes until the request
is published (configctl request publish), after the approvals that the
nearest policy of PREFIX asks for (configctl policy).

FILE (YAML):

  set:
    app/name: orders              # a text value
    app/limits:                   # a value with its type
      type: json                  # text, json, yaml, binary or a MIME type
      value: {rps: 100}
    app/password:
      value: hunter2
      secret: true
  delete:
    - app/old

Prints "request N by AUTHOR: K keys under PREFIX". A file that does not
parse is refused with its line (exit code 1).`,
		Example: `  configctl propose app/ -f change.yaml --reason "raise limits"`,
		Args:    rangeArgs(1, 1, "PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope, err := keyspace.Prefix(args[0])
			if err != nil {
				return usageError{err}
			}
			if file == "" {
				return usagef("propose: -f FILE is required")
			}
			ops, err := readChangeFile(file)
			if err != nil {
				return err
			}
			for _, op := range ops {
				if op.Secret {
					if err := a.checkConfidential("a secret's draft value"); err != nil {
						return err
					}
					break
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			rq, err := c.Propose(cmd.Context(), api.ProposeRequest{Scope: scope, Reason: a.reason, Ops: ops})
			if err != nil {
				return err
			}
			if ok, err := a.structured(rq); ok {
				return err
			}
			fmt.Fprintf(a.stdout, "request %d by %s: %s under %s (diff: configctl request show %d)\n",
				rq.ID, rq.Author, plural(rq.Keys, "key"), scopeName(rq.Scope), rq.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the change file (YAML: set: and delete:)")
	return cmd
}

func (a *app) requestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "request",
		Short: "Show, review and publish change requests",
		Long: `Show, review and publish change requests (configctl propose makes them).

A request is open until it is published or closed; an open request with the
approvals its policy asks for is approved. One whose keys were written after
its base is stale: publishing it is refused until it is rebased (its diff is
then against now, and its approvals are dropped). Publishing an unapproved
request where the policy asks for approvals is refused (exit code 4), and so
is approving your own (exit code 5).`,
	}
	action := func(name, use, short, long string, args int) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Long:  long,
			Args:  rangeArgs(args, args, strings.TrimPrefix(use, name+" ")),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := parseRequestID(args[0])
				if err != nil {
					return err
				}
				text := a.reason
				if name == "comment" {
					text = args[1]
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				rq, err := c.RequestAction(cmd.Context(), id, name, text)
				if err != nil {
					return err
				}
				if ok, err := a.structured(rq); ok {
					return err
				}
				fmt.Fprintln(a.stdout, requestDone(name, rq))
				return nil
			},
		}
	}
	cmd.AddCommand(
		a.requestShowCmd(), a.requestListCmd(),
		action("comment", "comment ID TEXT", "Comment on a change request", "", 2),
		action("approve", "approve ID", "Approve a change request (not your own)",
			"Approve a change request. With authentication on, the token must have write on\nevery key the request changes; the author's approval is refused.", 1),
		action("rebase", "rebase ID", "Draft a stale change request again on the current revision",
			"Move a request's base to the current revision: its diff is then against now,\nand the approvals given to the old diff are dropped.", 1),
		action("publish", "publish ID", "Publish a change request as one revision",
			"Publish an approved (or, where no approval is asked, open) request as one\nrevision, through the ordinary write path; its reason is \"request N: REASON\".", 1),
		action("close", "close ID", "Close a change request without publishing it (--reason says why)", "", 1),
	)
	return cmd
}

func parseRequestID(s string) (int64, error) { return parseID("request", s) }

// parseID reads the id of a request or a rollout (kind).
func parseID(kind, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, usagef("%s id %q: want a number from 1", kind, s)
	}
	return id, nil
}

// requestDone is the line an action on a request prints.
func requestDone(action string, rq api.ChangeRequest) string {
	switch action {
	case "comment":
		return fmt.Sprintf("request %d: %s", rq.ID, plural(len(rq.Comments), "comment"))
	case "approve":
		return fmt.Sprintf("request %d: %s (%s)", rq.ID, rq.State, approvalsLine(rq))
	case "rebase":
		return fmt.Sprintf("request %d rebased on rev %d (approvals dropped: %s)", rq.ID, rq.Base, approvalsLine(rq))
	case "publish":
		return fmt.Sprintf("request %d published: rev %d", rq.ID, rq.PublishedRev)
	}
	return fmt.Sprintf("request %d %s", rq.ID, rq.State)
}

func approvalsLine(rq api.ChangeRequest) string {
	if rq.ApprovalsNeeded == 0 {
		return fmt.Sprintf("%s, none needed", plural(len(rq.Approvals), "approval"))
	}
	return fmt.Sprintf("%d of %d approval(s)", len(rq.Approvals), rq.ApprovalsNeeded)
}

func (a *app) requestShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a change request: its state, its diff against now, approvals and comments",
		Args:  rangeArgs(1, 1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRequestID(args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			rq, err := c.Request(cmd.Context(), id)
			if err != nil {
				return err
			}
			if ok, err := a.structured(rq); ok {
				return err
			}
			w := a.stdout
			fmt.Fprintf(w, "request %d by %s: %s, %s under %s, drafted on rev %d\n",
				rq.ID, rq.Author, rq.State, plural(rq.Keys, "key"), scopeName(rq.Scope), rq.Base)
			if rq.Reason != "" {
				fmt.Fprintf(w, "reason: %s\n", rq.Reason)
			}
			fmt.Fprintf(w, "approvals: %s", approvalsLine(rq))
			if rq.PolicyPrefix != nil {
				fmt.Fprintf(w, " (policy of %s)", scopeName(*rq.PolicyPrefix))
			}
			fmt.Fprintln(w)
			for _, n := range rq.Approvals {
				fmt.Fprintf(w, "  %s  %s\n", n.Time.Format(time.RFC3339), n.Actor)
			}
			switch {
			case rq.Stale:
				fmt.Fprintf(w, "stale: %s changed after rev %d: publishing is refused until it is rebased (configctl request rebase %d)\n",
					strings.Join(rq.StaleKeys, ", "), rq.Base, rq.ID)
			case rq.PublishedRev != 0:
				fmt.Fprintf(w, "published by %s: rev %d\n", rq.PublishedBy, rq.PublishedRev)
			case rq.ClosedBy != "":
				fmt.Fprintf(w, "closed by %s", rq.ClosedBy)
				if rq.CloseReason != "" {
					fmt.Fprintf(w, ": %s", rq.CloseReason)
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "diff against now (rev %d):\n", rq.Rev)
			for _, ch := range rq.Diff {
				old := fmt.Sprintf("rev %d", rq.Rev)
				if ch.Old == nil {
					old = fmt.Sprintf("absent at rev %d", rq.Rev)
				}
				draft := fmt.Sprintf("request %d", rq.ID)
				if ch.New == nil {
					draft += ": deleted"
				}
				printChange(w, ch, old, draft)
			}
			if len(rq.Comments) > 0 {
				fmt.Fprintln(w, "comments:")
				for _, n := range rq.Comments {
					fmt.Fprintf(w, "  %s  %s: %s\n", n.Time.Format(time.RFC3339), n.Actor, oneLine(n.Text))
				}
			}
			return nil
		},
	}
}

func (a *app) requestListCmd() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "list [--state open|approved|published|closed]",
		Short: "List the change requests, oldest first",
		Args:  rangeArgs(0, 0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			rqs, err := c.Requests(cmd.Context(), state)
			if err != nil {
				return err
			}
			if ok, err := a.structured(rqs); ok {
				return err
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ID\tSTATE\tSCOPE\tKEYS\tAUTHOR\tAPPROVALS\tREASON")
			for _, rq := range rqs {
				st := rq.State
				if rq.Stale {
					st += " (stale)"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d/%d\t%s\n", rq.ID, st, scopeName(rq.Scope), rq.Keys, rq.Author,
					len(rq.Approvals), rq.ApprovalsNeeded, oneLine(rq.Reason))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only the requests in this state (open lists approved ones too)")
	return cmd
}

func (a *app) policyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Set and list the approval policies of change requests",
		Long: `A prefix's policy says how many people other than its author must approve a
change request under it before it is published. The policy of the longest
prefix that holds a request's scope applies. Setting one needs admin on the
prefix (with authentication on).`,
	}
	var (
		approvals int
		require   bool
	)
	set := &cobra.Command{
		Use:   "set PREFIX --approvals N [--require]",
		Short: "Set a prefix's approval policy (--approvals 0 without --require removes it)",
		Long: `Set a prefix's approval policy: how many people other than a request's
author must approve it (--approvals), and with --require, that the prefix
takes changes only through change requests: direct writes (set, del, apply,
txn, the gRPC writes) and rollbacks that reach it are refused (exit code 5)
with a pointer to configctl propose.`,
		Example: `  configctl policy set app/ --approvals 1
  configctl policy set prod/ --approvals 2 --require`,
		Args: rangeArgs(1, 1, "PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := keyspace.Prefix(args[0])
			if err != nil {
				return usageError{err}
			}
			if !cmd.Flags().Changed("approvals") {
				return usagef("policy set: --approvals N is required")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			pol, err := c.SetPolicy(cmd.Context(), api.RequestPolicy{Prefix: p, Approvals: approvals, Require: require}, a.reason)
			if err != nil {
				return err
			}
			if ok, err := a.structured(pol); ok {
				return err
			}
			fmt.Fprintf(a.stdout, "policy of %s: %s\n", scopeName(pol.Prefix), policyLine(pol))
			return nil
		},
	}
	set.Flags().IntVar(&approvals, "approvals", 0, "how many people other than the author must approve")
	set.Flags().BoolVar(&require, "require", false, "refuse direct writes and rollbacks: changes only through requests")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the approval policies",
		Args:  rangeArgs(0, 0, "no argument"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ps, err := c.Policies(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := a.structured(ps); ok {
				return err
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "PREFIX\tPOLICY")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\n", scopeName(p.Prefix), policyLine(p))
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(set, list)
	return cmd
}

// policyLine is a policy in words: "1 approval", "2 approvals, changes
// only through requests".
func policyLine(p api.RequestPolicy) string {
	s := plural(p.Approvals, "approval")
	if p.Require {
		s += ", changes only through requests"
	}
	return s
}

// scopeName is a canonical prefix as the commands print it: "/" for
// every key.
func scopeName(p string) string {
	if p == "" {
		return "/"
	}
	return p
}
