package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/sdk/go/client"
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
changes with their whole values.`,
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
			var scope []client.ScopeOption
			switch {
			case key != "" && prefix != "":
				return usagef("diff: give --key or --prefix, not both")
			case key != "":
				if err := keyspace.Validate(key); err != nil {
					return usageError{err}
				}
				scope = append(scope, client.Key(key))
			case prefix != "":
				p, err := keyspace.Prefix(prefix)
				if err != nil {
					return usageError{err}
				}
				scope = append(scope, client.Prefix(p))
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
			return fmt.Sprintf("%s (absent at rev %d)", ch.Key, rev)
		}
		return fmt.Sprintf("%s (rev %d)", ch.Key, rev)
	}
	fmt.Fprintf(w, "--- %s\n+++ %s\n", side(ch.Old, from), side(ch.New, to))
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
	oldLines, oldText := diffLines(ch.Old)
	newLines, newText := diffLines(ch.New)
	if !oldText || !newText {
		if ch.Old != nil {
			fmt.Fprintf(w, "- %s\n", showValue(ch.Old, 200))
		}
		if ch.New != nil {
			fmt.Fprintf(w, "+ %s\n", showValue(ch.New, 200))
		}
		return
	}
	ops := lineDiff(oldLines, newLines)
	if !hasEdits(ops) && ch.Old != nil && ch.New != nil && ch.Old.Value != ch.New.Value {
		// Same lines, different bytes: a final newline or a '\r'. Quote
		// both so the difference shows.
		fmt.Fprintf(w, "- %s\n+ %s\n", strconv.Quote(ch.Old.Value), strconv.Quote(ch.New.Value))
		return
	}
	printLineOps(w, ops)
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

// diffLines splits a value into lines for a line diff; ok is false for a
// value shown as a byte count instead (binary, not UTF-8). A nil value has
// no lines.
func diffLines(kv *api.KeyValue) (lines []string, ok bool) {
	if kv == nil {
		return nil, true
	}
	if isBinary(kv) {
		return nil, false
	}
	if kv.Value == "" {
		return []string{""}, true
	}
	return strings.Split(strings.TrimSuffix(kv.Value, "\n"), "\n"), true
}

// lineOp is one line of a line diff: ' ' kept, '-' removed, '+' added.
type lineOp struct {
	kind byte
	line string
}

func hasEdits(ops []lineOp) bool {
	for _, op := range ops {
		if op.kind != ' ' {
			return true
		}
	}
	return false
}

// maxLCSCells bounds the line diff's table; larger values are shown as all
// removed then all added.
const maxLCSCells = 4 << 20

// lineDiff is a longest-common-subsequence diff of two line lists.
func lineDiff(a, b []string) []lineOp {
	// Common head and tail cost nothing and keep the table small.
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	var ops []lineOp
	for _, l := range a[:head] {
		ops = append(ops, lineOp{' ', l})
	}
	ma, mb := a[head:len(a)-tail], b[head:len(b)-tail]
	if (len(ma)+1)*(len(mb)+1) > maxLCSCells {
		for _, l := range ma {
			ops = append(ops, lineOp{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, lineOp{'+', l})
		}
	} else {
		// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
		n, m := len(ma), len(mb)
		lcs := make([][]int32, n+1)
		for i := range lcs {
			lcs[i] = make([]int32, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				ops = append(ops, lineOp{' ', ma[i]})
				i++
				j++
			case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
				// Removals first, as diff -u prints them.
				ops = append(ops, lineOp{'-', ma[i]})
				i++
			default:
				ops = append(ops, lineOp{'+', mb[j]})
				j++
			}
		}
	}
	for _, l := range a[len(a)-tail:] {
		ops = append(ops, lineOp{' ', l})
	}
	return ops
}

// context is how many unchanged lines are shown around a change; longer
// unchanged runs are elided.
const contextLines = 3

func printLineOps(w io.Writer, ops []lineOp) {
	for i := 0; i < len(ops); {
		if ops[i].kind != ' ' {
			fmt.Fprintf(w, "%c %s\n", ops[i].kind, ops[i].line)
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].kind == ' ' {
			j++
		}
		run := ops[i:j]
		keepHead, keepTail := contextLines, contextLines
		if i == 0 {
			keepHead = 0
		}
		if j == len(ops) {
			keepTail = 0
		}
		if len(run) <= keepHead+keepTail+1 {
			for _, op := range run {
				fmt.Fprintf(w, "  %s\n", op.line)
			}
		} else {
			for _, op := range run[:keepHead] {
				fmt.Fprintf(w, "  %s\n", op.line)
			}
			fmt.Fprintf(w, "  ... (%d unchanged lines)\n", len(run)-keepHead-keepTail)
			for _, op := range run[len(run)-keepTail:] {
				fmt.Fprintf(w, "  %s\n", op.line)
			}
		}
		i = j
	}
}
