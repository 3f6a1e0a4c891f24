package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/configd/configd/audit"
)

// Limits of one rendered diff. Beyond maxEdits the line diff gives up on
// finding the shortest edit and shows the rest as replaced; beyond maxLines
// the rendering is cut with a note.
const (
	diffContext = 3
	maxEdits    = 1000
	maxLines    = 2000
)

// Line kinds of a diff.
const (
	lineSame = " "
	lineAdd  = "+"
	lineDel  = "-"
	lineSkip = "…" // a run of unchanged lines left out
)

// DiffLine is one rendered line of a diff. Old and New are 1-based line
// numbers in the old and new text (0 when the line is not on that side).
type DiffLine struct {
	Kind string `json:"k"`
	Old  int    `json:"o,omitempty"`
	New  int    `json:"n,omitempty"`
	Text string `json:"t"`
}

// ChangeView is what the pages show of one key's change: the line diff of
// its old and new value, ready for a template or for JSON.
type ChangeView struct {
	Key string `json:"key"`
	// Op is "create", "update" or "delete".
	Op      string `json:"op"`
	OldType string `json:"old_type,omitempty"`
	NewType string `json:"new_type,omitempty"`
	OldRev  int64  `json:"old_rev,omitempty"` // mod_rev of the old value
	NewRev  int64  `json:"new_rev,omitempty"` // mod_rev of the new value (0 in a dry run)
	// Note says something the lines cannot: a binary value, a secret, a
	// content type change, a truncated diff.
	Notes []string   `json:"notes,omitempty"`
	Lines []DiffLine `json:"lines"`
}

// viewChange renders c. secret reports keys whose values must not be shown.
func viewChange(c audit.Change, secret func(string) bool) ChangeView {
	v := ChangeView{Key: c.Key, Lines: []DiffLine{}}
	switch {
	case c.Old == nil:
		v.Op = "create"
	case c.New == nil:
		v.Op = "delete"
	default:
		v.Op = "update"
	}
	var oldVal, newVal []byte
	var oldOK, newOK bool
	if c.Old != nil {
		v.OldType, v.OldRev, oldVal, oldOK = c.Old.ContentType, c.Old.ModRev, c.Old.Value, true
	}
	if c.New != nil {
		v.NewType, v.NewRev, newVal, newOK = c.New.ContentType, c.New.ModRev, c.New.Value, true
	}
	if oldOK && newOK && v.OldType != v.NewType {
		v.Notes = append(v.Notes, fmt.Sprintf("content type: %s → %s", v.OldType, v.NewType))
	}
	if secret != nil && secret(c.Key) || isSecret(c.Old) || isSecret(c.New) {
		// SECRET HOOK: a secret's value never reaches the page, only the
		// fact that it changed and the revisions of its values.
		v.Notes = append(v.Notes, "secret value: not shown")
		if oldOK {
			v.Lines = append(v.Lines, DiffLine{Kind: lineDel, Old: 1, Text: secretText(v.OldRev)})
		}
		if newOK {
			v.Lines = append(v.Lines, DiffLine{Kind: lineAdd, New: 1, Text: secretText(v.NewRev)})
		}
		return v
	}
	oldText, oldBin := displayText(oldVal, v.OldType)
	newText, newBin := displayText(newVal, v.NewType)
	if oldBin || newBin {
		v.Notes = append(v.Notes, "binary value: no line diff")
		if oldOK {
			v.Lines = append(v.Lines, DiffLine{Kind: lineDel, Old: 1, Text: binarySummary(oldVal)})
		}
		if newOK {
			v.Lines = append(v.Lines, DiffLine{Kind: lineAdd, New: 1, Text: binarySummary(newVal)})
		}
		return v
	}
	var a, b []string
	if oldOK {
		a = splitLines(oldText)
	}
	if newOK {
		b = splitLines(newText)
	}
	lines, truncated := lineDiff(a, b)
	v.Lines = lines
	if truncated > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("diff cut after %d lines (%d more): open the key's page for the whole value", maxLines, truncated))
	}
	if oldOK && newOK && oldText == newText && string(oldVal) != string(newVal) {
		v.Notes = append(v.Notes, "only the formatting changed (the values are equal once pretty-printed)")
	}
	return v
}

// isSecret reports whether kv is a secret key's value (the store marks it,
// and withholds it from the history).
func isSecret(kv *audit.KeyValue) bool { return kv != nil && (kv.Secret || kv.Withheld()) }

func secretText(rev int64) string {
	if rev > 0 {
		return fmt.Sprintf("•••• (rev %d)", rev)
	}
	return "••••"
}

// displayText returns a value as the text to show and diff: JSON is
// pretty-printed, text and YAML are shown as they are. binary is true for
// values that are not text.
func displayText(v []byte, contentType string) (text string, binary bool) {
	if contentType == audit.TypeBinary || !utf8.Valid(v) {
		return "", true
	}
	if contentType == audit.TypeJSON {
		return prettyJSON(v), false
	}
	return string(v), false
}

// prettyJSON indents a JSON value (keeping its key order); a value that does
// not parse is returned as it is.
func prettyJSON(v []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(v), "", "  "); err != nil {
		return string(v)
	}
	return buf.String()
}

func binarySummary(v []byte) string {
	sum := sha256.Sum256(v)
	return fmt.Sprintf("binary, %d bytes, sha256 %s…", len(v), hex.EncodeToString(sum[:6]))
}

// splitLines splits text into lines; a final newline does not start an
// empty last line.
func splitLines(s string) []string {
	if s == "" {
		return []string{""}
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// lineDiff returns the diff of a and b as lines with diffContext lines of
// context around each change, runs of unchanged lines in between folded
// into one lineSkip line. At most maxLines lines are returned; truncated
// counts the ones left out.
func lineDiff(a, b []string) (lines []DiffLine, truncated int) {
	all := editScript(a, b)
	// Keep lines within diffContext of a change; fold the others.
	keep := make([]bool, len(all))
	for i, l := range all {
		if l.Kind == lineSame {
			continue
		}
		for j := max(0, i-diffContext); j <= min(len(all)-1, i+diffContext); j++ {
			keep[j] = true
		}
	}
	for i := 0; i < len(all); {
		if keep[i] {
			lines = append(lines, all[i])
			i++
			continue
		}
		j := i
		for j < len(all) && !keep[j] {
			j++
		}
		lines = append(lines, DiffLine{Kind: lineSkip, Text: fmt.Sprintf("%d unchanged line%s", j-i, plural(j-i))})
		i = j
	}
	if len(lines) > maxLines {
		truncated = len(lines) - maxLines
		lines = lines[:maxLines]
	}
	if lines == nil {
		lines = []DiffLine{}
	}
	return lines, truncated
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// editScript returns every line of a and b in diff order: unchanged lines,
// deletions and additions, numbered. It trims the common head and tail and
// runs Myers' O(ND) algorithm on the rest; when the middle needs more than
// maxEdits edits it is shown as deleted and re-added instead.
func editScript(a, b []string) []DiffLine {
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	out := make([]DiffLine, 0, len(a)+len(b)-head-tail)
	for i := 0; i < head; i++ {
		out = append(out, DiffLine{Kind: lineSame, Old: i + 1, New: i + 1, Text: a[i]})
	}
	ma, mb := a[head:len(a)-tail], b[head:len(b)-tail]
	ops, ok := myers(ma, mb)
	if !ok {
		ops = make([]byte, 0, len(ma)+len(mb))
		for range ma {
			ops = append(ops, '-')
		}
		for range mb {
			ops = append(ops, '+')
		}
	}
	i, j := head, head
	for _, op := range ops {
		switch op {
		case '=':
			out = append(out, DiffLine{Kind: lineSame, Old: i + 1, New: j + 1, Text: a[i]})
			i, j = i+1, j+1
		case '-':
			out = append(out, DiffLine{Kind: lineDel, Old: i + 1, Text: a[i]})
			i++
		case '+':
			out = append(out, DiffLine{Kind: lineAdd, New: j + 1, Text: b[j]})
			j++
		}
	}
	for k := 0; k < tail; k++ {
		out = append(out, DiffLine{Kind: lineSame, Old: i + 1, New: j + 1, Text: a[i]})
		i, j = i+1, j+1
	}
	return out
}

// myers returns the shortest edit script from a to b as a string of '='
// (keep), '-' (delete from a) and '+' (insert from b). ok is false when it
// needs more than maxEdits edits.
func myers(a, b []string) (ops []byte, ok bool) {
	n, m := len(a), len(b)
	if n == 0 && m == 0 {
		return nil, true
	}
	maxD := min(n+m, maxEdits)
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	// trace[d] holds v[k] for k in [-d, d] after step d.
	var trace [][]int
	for d := 0; d <= maxD; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down: an insertion
			} else {
				x = v[off+k-1] + 1 // right: a deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				snap := make([]int, 2*d+1)
				copy(snap, v[off-d:off+d+1])
				trace = append(trace, snap)
				return backtrack(trace, n, m), true
			}
		}
		snap := make([]int, 2*d+1)
		copy(snap, v[off-d:off+d+1])
		trace = append(trace, snap)
	}
	return nil, false
}

// backtrack walks Myers' trace from (n, m) back to (0, 0).
func backtrack(trace [][]int, n, m int) []byte {
	var rev []byte
	x, y := n, m
	at := func(d, k int) int { return trace[d][k+d] }
	for d := len(trace) - 1; d > 0; d-- {
		k := x - y
		var prevK int
		if k == -d || (k != d && at(d-1, k-1) < at(d-1, k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := at(d-1, prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			rev = append(rev, '=')
			x, y = x-1, y-1
		}
		if x == prevX {
			rev = append(rev, '+')
		} else {
			rev = append(rev, '-')
		}
		x, y = prevX, prevY
	}
	for x > 0 && y > 0 {
		rev = append(rev, '=')
		x, y = x-1, y-1
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}
