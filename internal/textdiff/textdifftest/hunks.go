package textdifftest

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// HunkCase is a change of a text value and the hunks its line diff must
// show, from internal/textdiff/testdata/hunks: NAME.old (absent: the value
// was created), NAME.new and NAME.hunks, one changed line per line, "-N
// text" for line N of the old value, "+N text" for line N of the new one.
// configctl diff and the web UI are both checked against them, so that they
// show the same hunks of the same change.
type HunkCase struct {
	Name       string
	Old        string
	OldExists  bool
	New, Hunks string
}

// HunkCases returns the golden hunk cases.
func HunkCases(t testing.TB) []HunkCase {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "testdata", "hunks")
	news, err := filepath.Glob(filepath.Join(dir, "*.new"))
	if err != nil || len(news) == 0 {
		t.Fatalf("no golden hunks in %s: %v", dir, err)
	}
	var out []HunkCase
	for _, n := range news {
		base := strings.TrimSuffix(n, ".new")
		c := HunkCase{Name: filepath.Base(base), New: read(t, n), Hunks: read(t, base+".hunks")}
		if _, err := os.Stat(base + ".old"); err == nil {
			c.Old, c.OldExists = read(t, base+".old"), true
		}
		out = append(out, c)
	}
	return out
}

func read(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
