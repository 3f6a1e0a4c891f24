// Package textdiff shows people how a value changed: a line diff with
// context and folded runs of unchanged lines, and the pretty-printing of
// JSON that is diffed and shown. Both stay within the limits of limits.go,
// whatever the value: a value too large to diff is only said to differ, a
// diff too long is cut, JSON too deep or too long to indent is shown as
// stored, and each says so in a note. The web UI and configctl diff use it.
package textdiff

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of a Line.
type Kind byte

// The kinds of lines.
const (
	Same Kind = ' ' // unchanged
	Del  Kind = '-' // only in the old text
	Add  Kind = '+' // only in the new text
	Fold Kind = '~' // a run of unchanged lines left out
)

// Line is one line of a diff.
type Line struct {
	Kind Kind
	// Old and New are the line's 1-based numbers in the old and new text;
	// 0 when it is not on that side, and for a Fold.
	Old, New int
	Text     string
	// N is, for a Fold, how many unchanged lines it stands for.
	N int
}

// Side is one side of a diff: a value's text, or no value at all (the key
// did not exist), which has no lines. The zero Side is no value.
type Side struct {
	Text   string
	Exists bool
}

// Value is the Side of a value with text s.
func Value(s string) Side { return Side{Text: s, Exists: true} }

// lines is the number of lines of s as split: a final newline does not
// start a line, and an empty text is one empty line.
func (s Side) lines() int {
	if !s.Exists {
		return 0
	}
	return strings.Count(strings.TrimSuffix(s.Text, "\n"), "\n") + 1
}

func (s Side) split() []string {
	if !s.Exists {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s.Text, "\n"), "\n")
}

// Diff is the diff of two texts, as much of it as the limits allow.
type Diff struct {
	// Lines are the lines to show: changes with Context unchanged lines
	// around them, longer runs of unchanged lines folded.
	Lines []Line
	// Edits counts the removed and added lines of the whole diff (Lines
	// may show fewer): 0 when the lines are the same or were not compared.
	Edits int
	// Cut counts the lines left out past MaxOutputLines, MaxOutputBytes or
	// the Budget; CutBytes the bytes left out of the last line shown.
	Cut, CutBytes int
	// Replaced says that the changed lines needed more than MaxEdits edits:
	// they are shown removed, then added.
	Replaced bool
	// TooLarge says that a side is over MaxDiffBytes or MaxDiffLines, and
	// OverBudget that the Budget was spent: then the texts differ and were
	// not compared, and Lines is empty.
	TooLarge, OverBudget bool

	oldBytes, newBytes, oldLines, newLines int
}

// Compared reports whether the texts were compared line by line.
func (d Diff) Compared() bool { return !d.TooLarge && !d.OverBudget }

// Notes say what the lines cannot: that the texts were not compared, or
// that the diff was cut or is not the shortest. hint, if not empty, says
// where to see the whole values; it ends the notes that leave something
// out.
func (d Diff) Notes(hint string) []string {
	var out []string
	add := func(note string, leavesOut bool) {
		if leavesOut && hint != "" {
			note += ": " + hint
		}
		out = append(out, note)
	}
	switch {
	case d.TooLarge:
		add(fmt.Sprintf("values differ; too large to diff: %d → %d bytes, %d → %d lines (at most %d bytes and %d lines a side are diffed)",
			d.oldBytes, d.newBytes, d.oldLines, d.newLines, MaxDiffBytes, MaxDiffLines), true)
	case d.OverBudget:
		add(fmt.Sprintf("values differ; not diffed: the diffs before this one used the budget of %d lines compared, %d lines and %d bytes shown",
			MaxPageCompared, MaxPageLines, MaxPageBytes), true)
	}
	if d.Replaced {
		add(fmt.Sprintf("more than %d lines changed: the changed lines are shown removed, then added", MaxEdits), false)
	}
	switch {
	case d.CutBytes > 0:
		add(fmt.Sprintf("diff cut after %d lines (%d more, and %d bytes of the last one)", len(d.Lines), d.Cut, d.CutBytes), true)
	case d.Cut > 0:
		add(fmt.Sprintf("diff cut after %d lines (%d more)", len(d.Lines), d.Cut), true)
	}
	return out
}

// Option configures Compare.
type Option func(*options)

type options struct {
	minFold int
	budget  *Budget
}

// FoldAtLeast folds a run of unchanged lines only when at least n of its
// lines would be left out (default 1); fewer are shown.
func FoldAtLeast(n int) Option { return func(o *options) { o.minFold = max(1, n) } }

// Within makes the diff spend b, shared with the other diffs of a page:
// once b is spent, texts are only said to differ.
func Within(b *Budget) Option { return func(o *options) { o.budget = b } }

// Budget is what the diffs of one page, or one answer, may spend together:
// MaxPageCompared lines compared, MaxPageLines lines and MaxPageBytes bytes
// of text shown. It is not safe for concurrent use.
type Budget struct{ compared, lines, bytes int }

// NewBudget returns a whole budget.
func NewBudget() *Budget {
	return &Budget{compared: MaxPageCompared, lines: MaxPageLines, bytes: MaxPageBytes}
}

// Compare returns the line diff of old and new within the limits.
func Compare(old, new Side, opts ...Option) Diff {
	o := options{minFold: 1}
	for _, opt := range opts {
		opt(&o)
	}
	d := Diff{oldBytes: len(old.Text), newBytes: len(new.Text), oldLines: old.lines(), newLines: new.lines()}
	out := emitter{maxLines: MaxOutputLines, maxBytes: MaxOutputBytes}
	if b := o.budget; b != nil {
		out.maxLines, out.maxBytes = min(out.maxLines, b.lines), min(out.maxBytes, b.bytes)
	}
	if old.Exists && new.Exists && old.Text == new.Text {
		// Nothing to compare (a change of content type): one fold, or the
		// line itself.
		if d.oldLines >= o.minFold {
			out.add(Line{Kind: Fold, N: d.oldLines})
		} else {
			out.add(Line{Kind: Same, Old: 1, New: 1, Text: strings.TrimSuffix(old.Text, "\n")})
		}
		return d.finish(out, o.budget)
	}
	if d.oldBytes > MaxDiffBytes || d.newBytes > MaxDiffBytes || d.oldLines > MaxDiffLines || d.newLines > MaxDiffLines {
		d.TooLarge = true
		return d
	}
	if b := o.budget; b != nil {
		if b.compared < d.oldLines+d.newLines || b.lines <= 0 || b.bytes <= 0 {
			d.OverBudget = true
			return d
		}
		b.compared -= d.oldLines + d.newLines
	}
	a, b := old.split(), new.split()
	rs, replaced := script(a, b)
	d.Replaced = replaced
	for i, r := range rs {
		if r.kind != Same {
			d.Edits += r.n
			for j := 0; j < r.n; j++ {
				if r.kind == Del {
					out.add(Line{Kind: Del, Old: r.old + j + 1, Text: a[r.old+j]})
				} else {
					out.add(Line{Kind: Add, New: r.new + j + 1, Text: b[r.new+j]})
				}
			}
			continue
		}
		// Keep Context lines next to a change; fold the rest when enough.
		keepHead, keepTail := Context, Context
		if i == 0 {
			keepHead = 0
		}
		if i == len(rs)-1 {
			keepTail = 0
		}
		same := func(j int) Line {
			return Line{Kind: Same, Old: r.old + j + 1, New: r.new + j + 1, Text: a[r.old+j]}
		}
		if r.n-keepHead-keepTail < o.minFold {
			for j := 0; j < r.n; j++ {
				out.add(same(j))
			}
			continue
		}
		for j := 0; j < keepHead; j++ {
			out.add(same(j))
		}
		out.add(Line{Kind: Fold, N: r.n - keepHead - keepTail})
		for j := r.n - keepTail; j < r.n; j++ {
			out.add(same(j))
		}
	}
	return d.finish(out, o.budget)
}

// finish sets d's lines from out, and charges what they show to b.
func (d Diff) finish(out emitter, b *Budget) Diff {
	d.Lines, d.Cut, d.CutBytes = out.lines, out.cut, out.cutBytes
	if d.Lines == nil {
		d.Lines = []Line{}
	}
	if b != nil {
		b.lines -= len(out.lines)
		b.bytes -= out.bytes
	}
	return d
}

// emitter collects the lines of a diff up to its caps, and counts the
// lines past them.
type emitter struct {
	lines              []Line
	maxLines, maxBytes int
	bytes              int
	full               bool
	cut, cutBytes      int
}

func (e *emitter) add(l Line) {
	if e.full || len(e.lines) >= e.maxLines {
		e.full = true
		e.cut++
		return
	}
	if room := e.maxBytes - e.bytes; len(l.Text) > room {
		e.full = true
		if room <= 0 {
			e.cut++
			return
		}
		cut := Clip(l.Text, room)
		e.cutBytes = len(l.Text) - len(cut)
		l.Text = cut
	}
	e.bytes += len(l.Text)
	e.lines = append(e.lines, l)
}

// Clip returns the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// run is a run of script lines of one kind, from line old of a and line
// new of b (0-based).
type run struct {
	kind     Kind
	old, new int
	n        int
}

// script returns the edit script from a to b as runs. It trims the common
// head and tail, then searches the shortest script of the rest with at
// most MaxEdits edits; replaced is true when it needs more, and the rest
// is then removed and added whole.
func script(a, b []string) (rs []run, replaced bool) {
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	push := func(k Kind, i, j int) {
		if n := len(rs); n > 0 && rs[n-1].kind == k {
			rs[n-1].n++
			return
		}
		rs = append(rs, run{kind: k, old: i, new: j, n: 1})
	}
	if head > 0 {
		rs = append(rs, run{kind: Same, n: head})
	}
	ma, mb := a[head:len(a)-tail], b[head:len(b)-tail]
	ops, ok := myers(intern(ma, mb))
	if !ok {
		replaced = true
		ops = make([]Kind, 0, len(ma)+len(mb))
		for range ma {
			ops = append(ops, Del)
		}
		for range mb {
			ops = append(ops, Add)
		}
	}
	i, j := head, head
	for _, op := range ops {
		push(op, i, j)
		switch op {
		case Same:
			i, j = i+1, j+1
		case Del:
			i++
		case Add:
			j++
		}
	}
	if tail > 0 {
		rs = append(rs, run{kind: Same, old: i, new: j, n: tail})
	}
	return rs, replaced
}

// intern numbers the distinct lines of a and b, so that the search
// compares numbers, not lines that may be long.
func intern(a, b []string) (ia, ib []int32) {
	ids := make(map[string]int32, len(a)+len(b))
	num := func(lines []string) []int32 {
		out := make([]int32, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = int32(len(ids))
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	return num(a), num(b)
}
