package web

import (
	"fmt"
	"strings"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/textdiff"
	"github.com/configd/configd/internal/textdiff/textdifftest"
)

func kv(value, ct string, rev int64) *audit.KeyValue {
	return &audit.KeyValue{Value: []byte(value), ContentType: ct, ModRev: rev}
}

// render prints lines as a unified-diff-like text for comparisons.
func render(lines []DiffLine) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s%s\n", l.Kind, l.Text)
	}
	return b.String()
}

func TestDiffPrettyPrintsJSONBeforeDiffing(t *testing.T) {
	c := audit.Change{Key: "app/limits", Type: audit.OpPut,
		Old: kv(`{"rps":100,"burst":20}`, audit.TypeJSON, 1), New: kv(`{"rps":5,"burst":20}`, audit.TypeJSON, 2)}
	v := viewChange(c, nil)
	want := " {\n-  \"rps\": 100,\n+  \"rps\": 5,\n   \"burst\": 20\n }\n"
	if got := render(v.Lines); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if v.Op != "update" || v.OldRev != 1 || v.NewRev != 2 {
		t.Errorf("view = %+v", v)
	}
}

func TestDiffOfYAMLAndTextIsByLine(t *testing.T) {
	c := audit.Change{Key: "k", Old: kv("a: 1\nb: 2\nc: 3\n", audit.TypeYAML, 1), New: kv("a: 1\nb: 20\nc: 3\nd: 4\n", audit.TypeYAML, 2)}
	got := render(viewChange(c, nil).Lines)
	want := " a: 1\n-b: 2\n+b: 20\n c: 3\n+d: 4\n"
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}

func TestDiffFormattingOnlyChangeIsSaid(t *testing.T) {
	c := audit.Change{Key: "k", Old: kv(`{"a":1}`, audit.TypeJSON, 1), New: kv("{\n  \"a\": 1\n}", audit.TypeJSON, 2)}
	v := viewChange(c, nil)
	if len(v.Notes) == 0 || !strings.Contains(v.Notes[0], "formatting") {
		t.Errorf("notes = %q, want a note that only the formatting changed", v.Notes)
	}
}

func TestDiffOfCreateAndDelete(t *testing.T) {
	created := viewChange(audit.Change{Key: "k", New: kv("x\ny", audit.TypeText, 3)}, nil)
	if created.Op != "create" || render(created.Lines) != "+x\n+y\n" {
		t.Errorf("create: %s %q", created.Op, render(created.Lines))
	}
	deleted := viewChange(audit.Change{Key: "k", Type: audit.OpDelete, Old: kv("x", audit.TypeText, 3)}, nil)
	if deleted.Op != "delete" || render(deleted.Lines) != "-x\n" {
		t.Errorf("delete: %s %q", deleted.Op, render(deleted.Lines))
	}
	empty := viewChange(audit.Change{Key: "k", Old: kv("", audit.TypeText, 1), New: kv("x", audit.TypeText, 2)}, nil)
	if render(empty.Lines) != "-\n+x\n" {
		t.Errorf("from empty: %q", render(empty.Lines))
	}
}

func TestDiffNotesContentTypeChange(t *testing.T) {
	v := viewChange(audit.Change{Key: "k", Old: kv("1", audit.TypeText, 1), New: kv("1", audit.TypeJSON, 2)}, nil)
	if len(v.Notes) == 0 || v.Notes[0] != "content type: text/plain → application/json" {
		t.Errorf("notes = %q", v.Notes)
	}
}

func TestDiffOfBinaryValuesShowsSizes(t *testing.T) {
	v := viewChange(audit.Change{Key: "k", Old: kv("\xff\x00", audit.TypeBinary, 1), New: kv("\xfe", audit.TypeBinary, 2)}, nil)
	got := render(v.Lines)
	if !strings.Contains(got, "-binary, 2 bytes") || !strings.Contains(got, "+binary, 1 bytes") {
		t.Errorf("binary diff: %q", got)
	}
}

func TestDiffNeverShowsSecrets(t *testing.T) {
	secret := func(key string) bool { return strings.HasPrefix(key, "secret/") }
	v := viewChange(audit.Change{Key: "secret/db", Old: kv("hunter2", audit.TypeText, 4), New: kv("hunter3", audit.TypeText, 9)}, secret)
	got := render(v.Lines)
	if strings.Contains(got, "hunter") {
		t.Fatalf("secret diff shows the value: %q", got)
	}
	if got != "-•••• (rev 4)\n+•••• (rev 9)\n" {
		t.Errorf("secret diff = %q", got)
	}
}

func TestDiffFoldsLongUnchangedRuns(t *testing.T) {
	var a, b []string
	for i := 0; i < 100; i++ {
		a = append(a, fmt.Sprintf("line %d", i))
	}
	b = append(b, a...)
	b[50] = "changed"
	v := viewChange(audit.Change{Key: "k", Old: kv(strings.Join(a, "\n"), audit.TypeText, 1), New: kv(strings.Join(b, "\n"), audit.TypeText, 2)}, nil)
	if len(v.Notes) != 0 {
		t.Fatal(v.Notes)
	}
	lines := v.Lines
	got := render(lines)
	want := "…47 unchanged lines\n line 47\n line 48\n line 49\n-line 50\n+changed\n line 51\n line 52\n line 53\n…46 unchanged lines\n"
	if got != want {
		t.Errorf("folded diff:\n%s\nwant:\n%s", got, want)
	}
	// Line numbers are those of the old and new text.
	for _, l := range lines {
		if l.Kind == lineDel && l.Old != 51 || l.Kind == lineAdd && l.New != 51 {
			t.Errorf("line %+v: want line number 51", l)
		}
	}
}

func TestDiffOfHugeValuesStaysBounded(t *testing.T) {
	var a, b []string
	for i := 0; i < 20000; i++ {
		a = append(a, fmt.Sprintf("a%d", i))
		b = append(b, fmt.Sprintf("b%d", i))
	}
	v := viewChange(audit.Change{Key: "k", Old: kv(strings.Join(a, "\n"), audit.TypeText, 1), New: kv(strings.Join(b, "\n"), audit.TypeText, 2)}, nil)
	if len(v.Lines) != textdiff.MaxOutputLines {
		t.Errorf("%d lines; want %d", len(v.Lines), textdiff.MaxOutputLines)
	}
	if want := fmt.Sprintf("diff cut after %d lines (%d more)", textdiff.MaxOutputLines, 40000-textdiff.MaxOutputLines); len(v.Notes) == 0 || !strings.Contains(v.Notes[len(v.Notes)-1], want) {
		t.Errorf("notes = %q, want a note that the diff was cut", v.Notes)
	}
}

// TestDiffShowsTheGoldenHunks: the UI's diff of each golden change shows
// exactly its hunks, as configctl diff does (internal/cli's
// TestDiffPrintsTheGoldenHunks checks the same files).
func TestDiffShowsTheGoldenHunks(t *testing.T) {
	for _, c := range textdifftest.HunkCases(t) {
		ch := audit.Change{Key: "k", New: kv(c.New, "text/plain", 2)}
		if c.OldExists {
			ch.Old = kv(c.Old, "text/plain", 1)
		}
		var b strings.Builder
		for _, l := range newChangeViews(nil).view(ch).Lines {
			switch l.Kind {
			case lineDel:
				fmt.Fprintf(&b, "-%d %s\n", l.Old, l.Text)
			case lineAdd:
				fmt.Fprintf(&b, "+%d %s\n", l.New, l.Text)
			}
		}
		if b.String() != c.Hunks {
			t.Errorf("%s: the UI shows\n%s\nwant\n%s", c.Name, b.String(), c.Hunks)
		}
	}
}
