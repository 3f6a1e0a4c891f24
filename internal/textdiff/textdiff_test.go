package textdiff

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

// show prints lines as a unified-diff-like text for comparisons.
func show(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		if l.Kind == Fold {
			fmt.Fprintf(&b, "~%d\n", l.N)
			continue
		}
		fmt.Fprintf(&b, "%c%s\n", l.Kind, l.Text)
	}
	return b.String()
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func text(lines []string) string { return strings.Join(lines, "\n") }

func TestCompareFoldsLongUnchangedRuns(t *testing.T) {
	a := numbered("line ", 100)
	b := append([]string(nil), a...)
	b[50] = "changed"
	d := Compare(Value(text(a)), Value(text(b)))
	want := "~47\n line 47\n line 48\n line 49\n-line 50\n+changed\n line 51\n line 52\n line 53\n~46\n"
	if got := show(d.Lines); got != want {
		t.Errorf("folded diff:\n%s\nwant:\n%s", got, want)
	}
	if d.Edits != 2 || d.Cut != 0 || len(d.Notes("")) != 0 {
		t.Errorf("edits %d, cut %d, notes %q", d.Edits, d.Cut, d.Notes(""))
	}
	// Line numbers are those of the old and new text.
	for _, l := range d.Lines {
		if l.Kind == Del && l.Old != 51 || l.Kind == Add && l.New != 51 || l.Kind == Same && l.Old != l.New {
			t.Errorf("line %+v: want line number 51", l)
		}
	}
}

func TestCompareFoldAtLeast(t *testing.T) {
	// 4 unchanged lines before the change: Context of them are kept, one
	// is folded by default and shown with FoldAtLeast(2).
	a := []string{"a", "b", "c", "d", "x", "e"}
	b := []string{"a", "b", "c", "d", "y", "e"}
	if got := show(Compare(Value(text(a)), Value(text(b))).Lines); got != "~1\n b\n c\n d\n-x\n+y\n e\n" {
		t.Errorf("default: %q", got)
	}
	if got := show(Compare(Value(text(a)), Value(text(b)), FoldAtLeast(2)).Lines); got != " a\n b\n c\n d\n-x\n+y\n e\n" {
		t.Errorf("FoldAtLeast(2): %q", got)
	}
}

func TestCompareOfMissingEmptyAndEqualSides(t *testing.T) {
	for _, tc := range []struct {
		old, new Side
		want     string
	}{
		{Side{}, Value("x\ny\n"), "+x\n+y\n"},
		{Value("x"), Side{}, "-x\n"},
		{Value(""), Value("x"), "-\n+x\n"},
		{Side{}, Side{}, ""},
		{Value("a\nb\nc"), Value("a\nb\nc"), "~3\n"}, // a change of content type only
		{Value("x\n"), Value("x"), "~1\n"},           // the same lines
	} {
		d := Compare(tc.old, tc.new)
		if got := show(d.Lines); got != tc.want {
			t.Errorf("%+v → %+v: %q, want %q", tc.old, tc.new, got, tc.want)
		}
	}
	if got := show(Compare(Value("one line"), Value("one line"), FoldAtLeast(2)).Lines); got != " one line\n" {
		t.Errorf("one equal line with FoldAtLeast(2): %q", got)
	}
}

// lcs is the length of the longest common subsequence, by dynamic
// programming: the reference for the minimal edit count.
func lcs(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

// TestScriptIsMinimalAndCorrect checks on random inputs that the edit
// script rebuilds both texts and is as short as possible.
func TestScriptIsMinimalAndCorrect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "d"}
	gen := func() []string {
		out := make([]string, rng.IntN(12))
		for i := range out {
			out[i] = words[rng.IntN(len(words))]
		}
		return out
	}
	for range 3000 {
		a, b := gen(), gen()
		rs, replaced := script(a, b)
		var gotA, gotB []string
		edits := 0
		for _, r := range rs {
			switch r.kind {
			case Same:
				gotA, gotB = append(gotA, a[r.old:r.old+r.n]...), append(gotB, b[r.new:r.new+r.n]...)
			case Del:
				gotA = append(gotA, a[r.old:r.old+r.n]...)
				edits += r.n
			case Add:
				gotB = append(gotB, b[r.new:r.new+r.n]...)
				edits += r.n
			}
		}
		if replaced || text(gotA) != text(a) || text(gotB) != text(b) {
			t.Fatalf("a=%q b=%q: script %+v rebuilds %q and %q", a, b, rs, gotA, gotB)
		}
		if want := len(a) + len(b) - 2*lcs(a, b); edits != want {
			t.Fatalf("a=%q b=%q: %d edits, the minimum is %d", a, b, edits, want)
		}
	}
}

func TestCompareBeyondMaxEditsShowsReplacedLines(t *testing.T) {
	a, b := numbered("a", MaxEdits), numbered("b", MaxEdits)
	d := Compare(Value(text(a)), Value(text(b)))
	if !d.Replaced || d.Edits != 2*MaxEdits || len(d.Lines) != 2*MaxEdits {
		t.Fatalf("replaced %v, %d edits, %d lines", d.Replaced, d.Edits, len(d.Lines))
	}
	if d.Lines[0].Kind != Del || d.Lines[MaxEdits].Kind != Add {
		t.Errorf("lines %+v, %+v: want the removed lines, then the added", d.Lines[0], d.Lines[MaxEdits])
	}
	if n := d.Notes(""); len(n) != 1 || !strings.Contains(n[0], "shown removed, then added") {
		t.Errorf("notes %q", n)
	}
}

func TestCompareCutsAtMaxOutputLines(t *testing.T) {
	a, b := numbered("a", 20_000), numbered("b", 20_000)
	d := Compare(Value(text(a)), Value(text(b)))
	if len(d.Lines) != MaxOutputLines || d.Cut != 40_000-MaxOutputLines {
		t.Errorf("%d lines, %d cut; want %d and %d", len(d.Lines), d.Cut, MaxOutputLines, 40_000-MaxOutputLines)
	}
	if n := d.Notes(""); len(n) != 2 || n[1] != fmt.Sprintf("diff cut after %d lines (%d more)", MaxOutputLines, d.Cut) {
		t.Errorf("notes %q", n)
	}
}

func TestCompareCutsAtMaxOutputBytes(t *testing.T) {
	// Two long lines: the first is shown, the second cut where the bytes
	// run out, on a character's boundary.
	long := strings.Repeat("é", MaxOutputBytes/2-10)
	d := Compare(Value(long+"1"), Value(long+"2"))
	if len(d.Lines) != 2 || d.Lines[0].Text != long+"1" || d.Cut != 0 {
		t.Fatalf("%d lines, cut %d", len(d.Lines), d.Cut)
	}
	shown := len(d.Lines[0].Text) + len(d.Lines[1].Text)
	if shown > MaxOutputBytes || shown < MaxOutputBytes-1 || d.CutBytes != len(long)+1-len(d.Lines[1].Text) {
		t.Errorf("%d bytes shown, %d cut", shown, d.CutBytes)
	}
	if n := d.Notes(""); len(n) != 1 || !strings.Contains(n[0], "diff cut after 2 lines (0 more, and") {
		t.Errorf("notes %q", n)
	}
}

func TestCompareTooLargeIsOnlySaidToDiffer(t *testing.T) {
	for name, tc := range map[string]struct{ old, new string }{
		"bytes": {strings.Repeat("x", MaxDiffBytes+1), "y"},
		"lines": {"x", strings.Repeat("\n", MaxDiffLines+1)},
	} {
		d := Compare(Value(tc.old), Value(tc.new))
		if !d.TooLarge || d.Compared() || len(d.Lines) != 0 {
			t.Errorf("%s: too large %v, compared %v, %d lines", name, d.TooLarge, d.Compared(), len(d.Lines))
		}
		if n := d.Notes(""); len(n) != 1 || !strings.HasPrefix(n[0], "values differ; too large to diff: ") {
			t.Errorf("%s: notes %q", name, n)
		}
	}
	// At the limits, a diff.
	if d := Compare(Value(strings.Repeat("\n", MaxDiffLines-1)), Value("x")); !d.Compared() {
		t.Errorf("%d lines: not compared", MaxDiffLines)
	}
}

func TestBudgetIsSharedByADiffsPage(t *testing.T) {
	// The lines compared: diffs of MaxDiffLines lines, each showing a few,
	// until the budget has no room for one more.
	b := NewBudget()
	lines := numbered("a", MaxDiffLines)
	a := text(lines)
	lines[len(lines)-1] = "changed"
	changed := text(lines)
	n := 0
	for ; n < 100; n++ {
		d := Compare(Value(a), Value(changed), Within(b))
		if d.OverBudget {
			if len(d.Lines) != 0 || !strings.HasPrefix(d.Notes("")[0], "values differ; not diffed") {
				t.Fatalf("over budget: %d lines, notes %q", len(d.Lines), d.Notes(""))
			}
			break
		}
	}
	if n != MaxPageCompared/(2*MaxDiffLines) {
		t.Errorf("%d diffs within the budget, want %d", n, MaxPageCompared/(2*MaxDiffLines))
	}
	// The lines shown: diffs of 1,000 added lines, the last one cut.
	b = NewBudget()
	shown, notes := 0, 0
	for range MaxPageLines/1000 + 2 {
		d := Compare(Side{}, Value(text(numbered("x", 1000))), Within(b))
		shown += len(d.Lines)
		notes += len(d.Notes(""))
	}
	if shown != MaxPageLines || notes != 2 {
		t.Errorf("%d lines shown with %d notes, want the budget's %d and 2", shown, notes, MaxPageLines)
	}
	// The bytes shown.
	b = NewBudget()
	shown = 0
	for range MaxPageBytes/MaxOutputBytes + 2 {
		d := Compare(Value(strings.Repeat("a", MaxOutputBytes)), Value("b"), Within(b))
		for _, l := range d.Lines {
			shown += len(l.Text)
		}
	}
	if shown != MaxPageBytes {
		t.Errorf("%d bytes shown, want the budget's %d", shown, MaxPageBytes)
	}
}

// TestCompareWorstCasesAreBounded diffs the largest texts the limits
// allow, the edit search at its cap, and checks time and memory.
func TestCompareWorstCasesAreBounded(t *testing.T) {
	// Every line different, but alike enough to keep the search busy to
	// MaxEdits.
	var a, b []string
	for i := range MaxDiffLines {
		a = append(a, fmt.Sprint(i%7))
		b = append(b, fmt.Sprint(i%5))
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	d := Compare(Value(text(a)), Value(text(b)))
	took := time.Since(start)
	runtime.ReadMemStats(&m1)
	if !d.Replaced || len(d.Lines) != MaxOutputLines {
		t.Errorf("replaced %v, %d lines", d.Replaced, len(d.Lines))
	}
	alloc := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("worst diff: %v, %d KiB allocated", took, alloc>>10)
	if alloc > 16<<20 {
		t.Errorf("allocated %d MiB, want at most 16", alloc>>20)
	}
	if took > 5*time.Second { // generous: -race on a loaded machine
		t.Errorf("took %v", took)
	}
}

// BenchmarkCompareWorstCase is the largest diff the limits allow, with the
// edit search running to MaxEdits.
func BenchmarkCompareWorstCase(b *testing.B) {
	var x, y []string
	for i := range MaxDiffLines {
		x = append(x, fmt.Sprint(i%7))
		y = append(y, fmt.Sprint(i%5))
	}
	tx, ty := text(x), text(y)
	b.ReportAllocs()
	for b.Loop() {
		Compare(Value(tx), Value(ty))
	}
}
