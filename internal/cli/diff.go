package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/textdiff"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/sdk/go/apiclient"
)

func (a *app) diffCmd() *cobra.Command {
	var key, prefix string
	cmd := &cobra.Command{
		Use:   "diff REV [REV]",
		Short: "Show how the configuration changed between two revisions",
		Long: `Show how the state at the first revision differs from the state at the
second (the current state when there is no second), key by key:

  --- app/db/timeout (rev 3)
  +++ app/db/timeout (rev 7)
  - 5s
  + 10s

A key that did not exist on one side is "(absent at rev N)". Multi-line
values are compared line by line ("  " lines are unchanged). Prints nothing
when nothing differs. --key or --prefix limit the diff; -o json prints the
changes with their whole values.

Values over 1 MiB or 20,000 lines are only said to differ, and a diff is
cut after 2,000 lines or 128 KiB, each with a "# " note (the rendering
limits of docs/security.md).`,
		Example: `  configctl diff 3 7
  configctl diff 3 --prefix app/db/`,
		Args: rangeArgs(1, 2, "REV or REV REV"),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := parseRev(args[0])
			if err != nil {
				return err
			}
			var to int64
			if len(args) == 2 {
				if to, err = parseRev(args[1]); err != nil {
					return err
				}
			}
			var scope []apiclient.ScopeOption
			switch {
			case key != "" && prefix != "":
				return usagef("diff: give --key or --prefix, not both")
			case key != "":
				if err := keyspace.Validate(key); err != nil {
					return usageError{err}
				}
				scope = append(scope, apiclient.Key(key))
			case prefix != "":
				p, err := keyspace.Prefix(prefix)
				if err != nil {
					return usageError{err}
				}
				scope = append(scope, apiclient.Prefix(p))
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			dr, err := c.Diff(cmd.Context(), from, to, scope...)
			if err != nil {
				return err
			}
			if ok, err := a.structured(dr); ok {
				return err
			}
			for _, ch := range dr.Changes {
				printKeyDiff(a.stdout, ch, dr.From, dr.To)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "only this key")
	cmd.Flags().StringVar(&prefix, "prefix", "", "only the keys under this prefix")
	return cmd
}

// printKeyDiff prints one key's change between revisions from and to.
func printKeyDiff(w io.Writer, ch api.Change, from, to int64) {
	side := func(kv *api.KeyValue, rev int64) string {
		if kv == nil {
			return fmt.Sprintf("absent at rev %d", rev)
		}
		return fmt.Sprintf("rev %d", rev)
	}
	printChange(w, ch, side(ch.Old, from), side(ch.New, to))
}

// printChange prints one key's change, each side named by its label.
func printChange(w io.Writer, ch api.Change, oldLabel, newLabel string) {
	fmt.Fprintf(w, "--- %s (%s)\n+++ %s (%s)\n", ch.Key, oldLabel, ch.Key, newLabel)
	if ch.Old != nil && ch.New != nil && ch.Old.ContentType != ch.New.ContentType {
		fmt.Fprintf(w, "# type: %s → %s\n", shortType(ch.Old.ContentType), shortType(ch.New.ContentType))
	}
	if isSecretKV(ch.Old) || isSecretKV(ch.New) {
		// configd withholds a secret's values from diffs: show what it
		// gives, a digest and a length.
		if ch.Old != nil {
			fmt.Fprintf(w, "- %s\n", secretView(ch.Old))
		}
		if ch.New != nil {
			fmt.Fprintf(w, "+ %s\n", secretView(ch.New))
		}
		return
	}
	if (ch.Old != nil && isBinary(ch.Old)) || (ch.New != nil && isBinary(ch.New)) {
		if ch.Old != nil {
			fmt.Fprintf(w, "- %s\n", showValue(ch.Old, 200))
		}
		if ch.New != nil {
			fmt.Fprintf(w, "+ %s\n", showValue(ch.New, 200))
		}
		return
	}
	d := textdiff.Compare(diffSide(ch.Old), diffSide(ch.New), textdiff.FoldAtLeast(2))
	if d.Compared() && d.Edits == 0 && ch.Old != nil && ch.New != nil && ch.Old.Value != ch.New.Value {
		// Same lines, different bytes: a final newline. Quote both so the
		// difference shows, when they are short enough to print.
		if len(ch.Old.Value)+len(ch.New.Value) > textdiff.MaxOutputBytes {
			fmt.Fprintf(w, "# the values differ only in a final newline\n")
			return
		}
		fmt.Fprintf(w, "- %s\n+ %s\n", strconv.Quote(ch.Old.Value), strconv.Quote(ch.New.Value))
		return
	}
	for _, n := range d.Notes("-o json prints the whole values") {
		fmt.Fprintf(w, "# %s\n", n)
	}
	for _, l := range d.Lines {
		if l.Kind == textdiff.Fold {
			fmt.Fprintf(w, "  ... (%d unchanged lines)\n", l.N)
			continue
		}
		fmt.Fprintf(w, "%c %s\n", l.Kind, l.Text)
	}
}

// diffSide is a value as a side of a line diff: no value has no lines.
func diffSide(kv *api.KeyValue) textdiff.Side {
	if kv == nil {
		return textdiff.Side{}
	}
	return textdiff.Value(kv.Value)
}

// isSecretKV reports whether kv is a secret's value.
func isSecretKV(kv *api.KeyValue) bool { return kv != nil && (kv.Secret || kv.Withheld()) }

// secretView shows a secret's value as configd reports it in the history:
// "(secret hmac-sha256:…, N bytes)", never the value.
func secretView(kv *api.KeyValue) string {
	if kv == nil {
		return "(none)"
	}
	if kv.Hash == "" {
		return "(secret)"
	}
	return fmt.Sprintf("(secret %s, %d bytes)", kv.Hash, kv.Length)
}
