package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/internal/textdiff"
	"github.com/configd/configd/internal/textdiff/textdifftest"
	"github.com/configd/configd/sdk/go/apiclient"
)

// TestDiffOfHostileValuesIsBounded runs configctl diff over values built
// to be costly to show (textdifftest.Values): each prints a small diff, or
// a note that the values are too large to diff; and printing the diff of
// values already fetched allocates little, whatever they hold.
func TestDiffOfHostileValuesIsBounded(t *testing.T) {
	const (
		// The output of one diff: its lines and its notes.
		maxOutput = textdiff.MaxOutputBytes + 16<<10
		// What printing one diff may allocate, beyond the values.
		perPrint = 4 << 20
		prints   = 10
	)
	d := newConfigd(t)
	for _, hv := range textdifftest.Values() {
		t.Run(hv.Name, func(t *testing.T) {
			key := "hostile/" + hv.Name
			r1 := d.run(hv.Old, "set", key, "-", "--type", hv.ContentType)
			r2 := d.run(hv.New, "set", key, "-")
			if r1.code != 0 || r2.code != 0 {
				t.Fatalf("set: %q %q", r1.stderr, r2.stderr)
			}
			from, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(r1.stdout, "rev ")), 10, 64)
			to, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(r2.stdout, "rev ")), 10, 64)

			start := time.Now()
			r := d.run("", "diff", strconv.FormatInt(from, 10), strconv.FormatInt(to, 10), "--key", key)
			t.Logf("configctl diff: %d bytes in %v", len(r.stdout), time.Since(start).Round(time.Millisecond))
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if len(r.stdout) > maxOutput {
				t.Errorf("%d bytes of diff, want at most %d", len(r.stdout), maxOutput)
			}
			wantHead := fmt.Sprintf("--- %s (rev %d)\n+++ %s (rev %d)\n", key, from, key, to)
			if !strings.HasPrefix(r.stdout, wantHead) {
				t.Errorf("diff starts %.200q, want %q", r.stdout, wantHead)
			}
			if strings.Count(hv.New, "\n") > textdiff.MaxDiffLines {
				want := fmt.Sprintf("# values differ; too large to diff: %d → %d bytes", len(hv.Old), len(hv.New))
				if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "-o json prints the whole values\n") {
					t.Errorf("diff %.500q: want the note %q", r.stdout, want)
				}
			}

			dr, err := d.c.Diff(context.Background(), from, to, apiclient.Key(key))
			if err != nil || len(dr.Changes) != 1 {
				t.Fatalf("diff: %+v, %v", dr, err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range prints {
				printKeyDiff(io.Discard, dr.Changes[0], from, to)
			}
			runtime.ReadMemStats(&after)
			alloc := (after.TotalAlloc - before.TotalAlloc) / prints
			t.Logf("printing the diff: %d KiB allocated", alloc>>10)
			if alloc > perPrint {
				t.Errorf("printing the diff allocated %d MiB, want at most %d", alloc>>20, perPrint>>20)
			}
		})
	}
}

// TestDiffSaysWhatItLeavesOut: a diff past the edit search's cap, or past
// the output cap, and two long values that differ only in a final newline,
// each get a "# " note instead of every line.
func TestDiffSaysWhatItLeavesOut(t *testing.T) {
	d := newConfigd(t)
	var old, new strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&old, "old line %d\n", i)
		fmt.Fprintf(&new, "new line %d\n", i)
	}
	d.run(old.String(), "set", "long", "-").want(t, 0, "rev 1\n", "")
	d.run(new.String(), "set", "long", "-").want(t, 0, "rev 2\n", "")
	r := d.run("", "diff", "1", "2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	wantHead := []string{
		"--- long (rev 1)", "+++ long (rev 2)",
		"# more than 1000 lines changed: the changed lines are shown removed, then added",
		"# diff cut after 2000 lines (4000 more): -o json prints the whole values",
		"- old line 0",
	}
	if len(lines) != 2+2+textdiff.MaxOutputLines || strings.Join(lines[:5], "\n") != strings.Join(wantHead, "\n") {
		t.Errorf("%d lines, starting %q; want %d, starting %q", len(lines), lines[:min(5, len(lines))], 4+textdiff.MaxOutputLines, wantHead)
	}

	long := strings.Repeat("x", textdiff.MaxOutputBytes)
	d.run(long, "set", "nl", "-").want(t, 0, "rev 3\n", "")
	d.run(long+"\n", "set", "nl", "-").want(t, 0, "rev 4\n", "")
	d.run("", "diff", "3", "4").want(t, 0, "--- nl (rev 3)\n+++ nl (rev 4)\n# the values differ only in a final newline\n", "")
	// Short ones are quoted, as before.
	d.run("x", "set", "short", "-").want(t, 0, "rev 5\n", "")
	d.run("x\n", "set", "short", "-").want(t, 0, "rev 6\n", "")
	d.run("", "diff", "5", "6").want(t, 0, "--- short (rev 5)\n+++ short (rev 6)\n- \"x\"\n+ \"x\\n\"\n", "")
}
