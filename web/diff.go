package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/textdiff"
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

// viewChange renders c alone. secret reports keys whose values must not be
// shown.
func viewChange(c audit.Change, secret func(string) bool) ChangeView {
	return newChangeViews(secret).view(c)
}

// changeViews renders the changes of one page (or one answer): their
// diffs share one textdiff.Budget.
type changeViews struct {
	secret func(string) bool
	budget *textdiff.Budget
}

func newChangeViews(secret func(string) bool) *changeViews {
	return &changeViews{secret: secret, budget: textdiff.NewBudget()}
}

// view renders c within the page's budget.
func (cv *changeViews) view(c audit.Change) ChangeView {
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
	if cv.secret != nil && cv.secret(c.Key) || isSecret(c.Old) || isSecret(c.New) {
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
	oldShown, newShown := displayText(oldVal, v.OldType), displayText(newVal, v.NewType)
	if oldShown.Binary || newShown.Binary {
		v.Notes = append(v.Notes, "binary value: no line diff")
		if oldOK {
			v.Lines = append(v.Lines, DiffLine{Kind: lineDel, Old: 1, Text: binarySummary(oldVal)})
		}
		if newOK {
			v.Lines = append(v.Lines, DiffLine{Kind: lineAdd, New: 1, Text: binarySummary(newVal)})
		}
		return v
	}
	for _, n := range []string{oldShown.Note, newShown.Note} {
		if n != "" && !slices.Contains(v.Notes, n) {
			v.Notes = append(v.Notes, n)
		}
	}
	d := textdiff.Compare(textdiff.Side{Text: oldShown.Text, Exists: oldOK}, textdiff.Side{Text: newShown.Text, Exists: newOK},
		textdiff.Within(cv.budget))
	v.Lines = diffLines(d)
	v.Notes = append(v.Notes, d.Notes("open the key's page for the whole value")...)
	if oldOK && newOK && oldShown.Text == newShown.Text && string(oldVal) != string(newVal) {
		v.Notes = append(v.Notes, "only the formatting changed (the values are equal once pretty-printed)")
	}
	return v
}

// diffLines converts d's lines for the page.
func diffLines(d textdiff.Diff) []DiffLine {
	out := make([]DiffLine, len(d.Lines))
	for i, l := range d.Lines {
		switch l.Kind {
		case textdiff.Fold:
			out[i] = DiffLine{Kind: lineSkip, Text: fmt.Sprintf("%d unchanged line%s", l.N, plural(l.N))}
		case textdiff.Del:
			out[i] = DiffLine{Kind: lineDel, Old: l.Old, Text: l.Text}
		case textdiff.Add:
			out[i] = DiffLine{Kind: lineAdd, New: l.New, Text: l.Text}
		default:
			out[i] = DiffLine{Kind: lineSame, Old: l.Old, New: l.New, Text: l.Text}
		}
	}
	return out
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

// shownValue is a value as the pages show and diff it.
type shownValue struct {
	Text string
	// Binary says the value is not text: it is not shown.
	Binary bool
	// Note says why JSON is shown as stored rather than pretty-printed.
	Note string
}

// displayText returns a value as the text to show and diff: JSON is
// pretty-printed within textdiff's limits, text and YAML are shown as they
// are.
func displayText(v []byte, contentType string) shownValue {
	if contentType == audit.TypeBinary || !utf8.Valid(v) {
		return shownValue{Binary: true}
	}
	if contentType == audit.TypeJSON {
		text, err := textdiff.IndentJSON(v)
		switch {
		case err == nil:
			return shownValue{Text: text}
		case errors.Is(err, textdiff.ErrTooDeep), errors.Is(err, textdiff.ErrTooLong):
			return shownValue{Text: string(v), Note: fmt.Sprintf("not pretty-printed: %v; shown as stored", err)}
		}
	}
	return shownValue{Text: string(v)}
}

func binarySummary(v []byte) string {
	sum := sha256.Sum256(v)
	return fmt.Sprintf("binary, %d bytes, sha256 %s…", len(v), hex.EncodeToString(sum[:6]))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
